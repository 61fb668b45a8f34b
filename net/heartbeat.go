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

// watch is the client's heartbeat loop, running from the end of the
// handshake until the connection is gone. Silence is measured only while
// calls are outstanding: an idle connection is never declared dead.
func (c *Client) watch(timeout time.Duration) {
	interval := max(timeout/4, time.Millisecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var seq uint64
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		outstanding := len(c.pending)
		c.mu.Unlock()
		if outstanding == 0 {
			continue
		}
		silent := time.Since(time.Unix(0, c.lastHeard.Load()))
		switch {
		case silent >= timeout:
			c.fail(fmt.Errorf("%w: no frame for %v with %d calls outstanding", ErrHeartbeat, silent.Round(time.Millisecond), outstanding))
			return
		case silent >= interval:
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
