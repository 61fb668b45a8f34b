package net

import (
	"context"
	"errors"
	"io"
	stdnet "net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// freezer is a TCP proxy in front of a server that can stop forwarding
// in both directions, as a SIGSTOPped server does: the connection stays
// up, bytes are accepted by the kernel, nothing is answered. Its server
// must name the proxy's address as its Endpoint: the handshake refuses a
// relay to a server that does not (TestHandshakeRefusesRelay).
type freezer struct {
	ln     stdnet.Listener
	mu     sync.Mutex
	target string        // the server forwarded to (setTarget)
	frozen chan struct{} // nil: forwarding; else closed on thaw
	wg     sync.WaitGroup
}

func newFreezer(t *testing.T) *freezer {
	t.Helper()
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &freezer{ln: ln}
	var conns []stdnet.Conn
	var cmu sync.Mutex
	f.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			target := f.target
			f.mu.Unlock()
			out, err := stdnet.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			cmu.Lock()
			conns = append(conns, in, out)
			cmu.Unlock()
			f.wg.Go(func() { f.pipe(out, in) })
			f.wg.Go(func() { f.pipe(in, out) })
		}
	})
	t.Cleanup(func() {
		f.thaw()
		_ = ln.Close()
		cmu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		cmu.Unlock()
		f.wg.Wait()
	})
	return f
}

// setTarget names the server connections are forwarded to.
func (f *freezer) setTarget(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.target = addr
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen == nil {
		f.frozen = make(chan struct{})
	}
}

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.frozen != nil {
		close(f.frozen)
		f.frozen = nil
	}
}

// pipe copies src to dst, holding each chunk while frozen.
// pipe copies src to dst until src ends, then ends dst's direction too,
// so that a side closing its connection is seen through the proxy.
func (f *freezer) pipe(dst, src stdnet.Conn) {
	defer func() {
		if tc, ok := dst.(*stdnet.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		f.mu.Lock()
		gate := f.frozen
		f.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A call to a server that stops answering (no frame at all) fails with
// ErrHeartbeat and ErrClosed long before the call's own deadline.
func TestHeartbeatFailsCallsToAFrozenServer(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	fr := newFreezer(t)
	s := startServer(t, b.handle, Config{Endpoint: fr.addr()})
	fr.setTarget(s.Addr())
	c := dial(t, fr.addr(), Config{HeartbeatTimeout: 200 * time.Millisecond})

	// The connection works through the proxy.
	_, err := c.Call(callCtx(t), op.Getattr, "/warm")
	require.NoError(t, err)

	fr.freeze()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	_, err = c.Call(ctx, op.Getattr, "/while-frozen")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrHeartbeat)
	assert.ErrorIs(t, err, ErrClosed, "the connection is gone: the caller fails over")
	assert.NoError(t, ctx.Err(), "the heartbeat, not the call's deadline, ended the call")
}

// A handler that takes many heartbeat timeouts does not cost its
// connection: the server's reader answers pings while the handler works.
func TestHeartbeatKeepsSlowCallsAlive(t *testing.T) {
	const timeout = 250 * time.Millisecond
	b := newBlocker()
	s := startServer(t, b.handle, Config{})
	c := dial(t, s.Addr(), Config{HeartbeatTimeout: timeout})

	slow := callAsync(c, callCtx(t), op.Read, "/block/slow")
	b.waitStarted(t, "/block/slow")
	time.Sleep(5 * timeout) // a correctness bound: longer than the timeout, nothing timed
	close(b.release)
	r := await(t, slow)
	require.NoError(t, r.err)
	assert.Equal(t, echo(nil, op.Read, "/block/slow"), r.res)
}

// An idle connection is never declared dead, however long it is quiet.
func TestHeartbeatIgnoresIdleConnections(t *testing.T) {
	// Long enough that a loaded host's scheduling delays after the idle
	// spell are not silence.
	const timeout = 500 * time.Millisecond
	fr := newFreezer(t)
	s := startServer(t, echo, Config{Endpoint: fr.addr()})
	fr.setTarget(s.Addr())
	c := dial(t, fr.addr(), Config{HeartbeatTimeout: timeout})
	fr.freeze()
	time.Sleep(4 * timeout)
	fr.thaw()
	res, err := c.Call(callCtx(t), op.Getattr, "/after-idle")
	require.NoError(t, err)
	assert.Equal(t, echo(nil, op.Getattr, "/after-idle"), res)
}

// Pings are answered only on authenticated connections, and a pong is
// never a valid frame for a server.
func TestHeartbeatFramesOutOfTurnCloseTheConnection(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
	}{
		{"ping before auth", AppendPing(nil, 1)},
		{"pong to a server", AppendHeader(nil, Header{Kind: KindPong, ID: 1})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, echo, Config{})
			conn, err := stdnet.Dial("tcp", s.Addr())
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.Write(tc.frame)
			require.NoError(t, err)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(hangGuard)))
			_, err = io.Copy(io.Discard, conn) // hello, then the close
			require.NoError(t, err, "the server must close the connection")
			var ne stdnet.Error
			assert.False(t, errors.As(err, &ne) && ne.Timeout())
		})
	}
}

// The silence count: ticks of real silence add up to the timeout; a
// frame resets it; a long gap between ticks (this process was not
// running) counts as one interval only; idle time never counts.
func TestQuietTicks(t *testing.T) {
	const iv = 250 * time.Millisecond
	t0 := time.Unix(1000, 0)
	type tk struct {
		at          time.Duration // tick time after t0
		heard       time.Duration // last frame after t0
		outstanding bool
		ping, dead  bool
	}
	tests := []struct {
		name  string
		ticks []tk
	}{
		{"silence adds up to the timeout", []tk{
			{iv, 0, true, true, false}, {2 * iv, 0, true, true, false}, {3 * iv, 0, true, true, false}, {4 * iv, 0, true, true, true}}},
		{"a frame resets the count", []tk{
			{iv, 0, true, true, false}, {2 * iv, 0, true, true, false}, {3 * iv, 3*iv - time.Millisecond, true, false, false},
			{4 * iv, 3*iv - time.Millisecond, true, true, false}, {5 * iv, 3*iv - time.Millisecond, true, true, false}}},
		{"a stall of this process counts one interval", []tk{
			{iv, 0, true, true, false}, {iv + 10*time.Second, 0, true, true, false}, {2*iv + 10*time.Second, 0, true, true, false},
			{3*iv + 10*time.Second, 0, true, true, true}}},
		{"idle never counts", []tk{
			{iv, 0, false, false, false}, {time.Hour, 0, false, false, false}, {time.Hour + iv, time.Hour + iv/2, true, false, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := quiet{interval: iv, timeout: 4 * iv, lastTick: t0, lastHeard: t0.UnixNano()}
			for i, k := range tc.ticks {
				ping, dead := q.tick(t0.Add(k.at), t0.Add(k.heard).UnixNano(), k.outstanding)
				assert.Equal(t, k.ping, ping, "tick %d ping", i)
				assert.Equal(t, k.dead, dead, "tick %d dead", i)
			}
		})
	}
}

// A relay — a process that a child dials in its parent's place, passing
// the handshake on to another node — gets no authenticated connection:
// both proofs name the endpoint the child dialed, which is not the
// server's. A server told that peers reach it at the relay's address
// (Config.Endpoint: a port forward the site declares) is reached through it.
func TestHandshakeRefusesRelay(t *testing.T) {
	tests := []struct {
		name     string
		endpoint func(relay string) string
		wantErr  bool
	}{
		{"server names its own address", func(string) string { return "" }, true},
		{"server names the relay's address", func(relay string) string { return relay }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := newFreezer(t)
			s := startServer(t, echo, Config{Endpoint: tt.endpoint(relay.addr())})
			relay.setTarget(s.Addr())
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			c, err := Dial(ctx, relay.addr(), tok(Config{}))
			if !tt.wantErr {
				require.NoError(t, err)
				defer c.Close()
				_, err = c.Call(callCtx(t), op.Getattr, "/through")
				require.NoError(t, err)
				return
			}
			if c != nil {
				_ = c.Close()
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrAuthFailed)
			// Direct, the same server is fine.
			direct := dial(t, s.Addr(), Config{})
			_, err = direct.Call(callCtx(t), op.Getattr, "/direct")
			require.NoError(t, err)
		})
	}
}
