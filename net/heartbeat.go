package net

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Heartbeat frames. A client with calls outstanding pings a server it has
// not heard from; the server's connection reader answers at once, never
// behind handler work, so a parent busy on a slow filesystem still
// answers while a hung (stopped, wedged) parent is noticed within
// Config.HeartbeatTimeout instead of at the call's deadline.
const (
	KindPing Kind = 6 // client→server; empty payload; id is the client's ping sequence
	KindPong Kind = 7 // server→client; empty payload; echoes the ping's id
)

// ErrHeartbeat is wrapped by the error of calls failed because the server
// sent no frame at all for Config.HeartbeatTimeout while they waited.
var ErrHeartbeat = errors.New("heartbeat timeout")

// checkHeartbeatHeader checks the fixed shape of ping and pong headers.
func checkHeartbeatHeader(h Header) error {
	if h.Op != 0 || h.Length != 0 {
		return fmt.Errorf("%w: %v frame with op %d and %d payload bytes, want 0 and 0", ErrProtocol, h.Kind, h.Op, h.Length)
	}
	return nil
}

// AppendPing appends a ping frame with sequence id to b.
func AppendPing(b []byte, id uint64) []byte {
	return AppendHeader(b, Header{Kind: KindPing, ID: id})
}

// answerPing writes the pong for a ping, from the connection reader.
func (sc *serverConn) answerPing(h Header) error {
	return sc.write(AppendHeader(make([]byte, 0, HeaderSize), Header{Kind: KindPong, ID: h.ID}))
}

// heard records that a frame arrived: the server is alive.
func (c *Client) heard() { c.lastHeard.Store(time.Now().UnixNano()) }

// quiet decides, tick by tick, whether a connection with calls
// outstanding is silent. It counts at most one ping interval per tick, so
// a stall of this process (GC, an overloaded host: the watcher and the
// reader were not running) is not taken for silence of the peer.
type quiet struct {
	interval, timeout time.Duration
	lastTick          time.Time
	lastHeard         int64 // the heard timestamp at the previous tick
	silent            time.Duration
}

// tick is called every interval: heard is the last frame's time (unix
// ns), outstanding whether calls wait. ping: send one; dead: give up.
func (q *quiet) tick(now time.Time, heard int64, outstanding bool) (ping, dead bool) {
	gap := now.Sub(q.lastTick)
	q.lastTick = now
	switch {
	case !outstanding:
		q.silent = 0
	case heard != q.lastHeard:
		q.silent = min(max(now.Sub(time.Unix(0, heard)), 0), q.interval)
	default:
		q.silent += min(gap, q.interval)
	}
	q.lastHeard = heard
	if !outstanding {
		return false, false
	}
	return q.silent >= q.interval, q.silent >= q.timeout
}

// watch is the client's heartbeat loop, running from the end of the
// handshake until the connection is gone. Silence is measured only while
// calls are outstanding: an idle connection is never declared dead.
func (c *Client) watch(timeout time.Duration) {
	interval := max(timeout/4, time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	q := quiet{interval: interval, timeout: timeout, lastTick: time.Now(), lastHeard: c.lastHeard.Load()}
	var seq uint64
	for {
		var now time.Time
		select {
		case <-c.done:
			return
		case now = <-tick.C:
		}
		c.mu.Lock()
		outstanding := len(c.pending)
		c.mu.Unlock()
		ping, dead := q.tick(now, c.lastHeard.Load(), outstanding > 0)
		switch {
		case dead:
			c.fail(fmt.Errorf("%w: no frame for %v with %d calls outstanding", ErrHeartbeat, q.silent.Round(time.Millisecond), outstanding))
			return
		case ping:
			seq++
			// A peer that stopped reading must not hold the loop: the
			// write is bounded by the ping interval.
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			err := c.send(ctx, AppendPing(make([]byte, 0, HeaderSize), seq))
			cancel()
			if err != nil {
				c.fail(fmt.Errorf("writing ping: %w", err))
				return
			}
		}
	}
}
