package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/op"
)

// hungConn is a connection whose calls never answer: they end with ctx,
// as a cnet.Client's do without a heartbeat.
type hungConn struct{}

func (hungConn) Call(ctx context.Context, _ op.Op, _ string) (op.Result, error) {
	<-ctx.Done()
	return op.Result{}, ctx.Err()
}
func (hungConn) Close() error { return nil }

// Many calls failing together on one connection switch hops once, and
// the switch is counted.
func TestUpstreamConcurrentFailuresSwitchOnce(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	parent, grand := &direct{n: root}, &direct{n: root}
	gate := make(chan struct{})
	parent.gate = gate
	conns := map[string]*direct{"parent:1": parent, "grand:1": grand}
	u, err := NewUpstream([]string{"parent:1", "grand:1"}, func(_ context.Context, addr string) (Conn, error) {
		if c := conns[addr]; !c.fail.Load() {
			return c, nil
		}
		return nil, errors.New("connection refused")
	}, time.Hour, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })

	parent.fail.Store(true) // every call on the open connection now fails
	close(gate)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			r, err := u.Call(t.Context(), op.Getattr, "/pkg")
			assert.NoError(t, err)
			assert.Zero(t, r.Errno)
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, u.Failovers(), "one switch, counted once")
	assert.Equal(t, "grand:1", u.Current())
}

// A hop whose call uses up its deadline (no heartbeat to end it sooner)
// is switched away from, and that switch is counted too.
func TestUpstreamDeadlineSwitchIsCounted(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	grand := &direct{n: root}
	u, err := NewUpstream([]string{"parent:1", "grand:1"}, func(_ context.Context, addr string) (Conn, error) {
		if addr == "parent:1" {
			return hungConn{}, nil
		}
		return grand, nil
	}, time.Hour, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err = u.Call(ctx, op.Getattr, "/pkg")
	require.Error(t, err)
	assert.EqualValues(t, 1, u.Failovers())
	assert.Equal(t, "grand:1", u.Current())

	r, err := u.Call(t.Context(), op.Getattr, "/pkg")
	require.NoError(t, err)
	assert.Zero(t, r.Errno)

	// An asker that gives up (cancel, not deadline) says nothing about the hop.
	u2, err := NewUpstream([]string{"parent:1", "grand:1"}, func(context.Context, string) (Conn, error) { return hungConn{}, nil }, time.Hour, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = u2.Close() })
	cctx, ccancel := context.WithCancel(t.Context())
	go func() { time.Sleep(10 * time.Millisecond); ccancel() }()
	_, err = u2.Call(cctx, op.Getattr, "/pkg")
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, u2.Failovers())
	assert.Equal(t, "parent:1", u2.Current())
}

// With heartbeats on, a hop that is alive but slow (the call used up its
// deadline; a hung hop would have failed by ErrHeartbeat first) keeps its
// subtree: the call fails, nothing switches.
func TestUpstreamSlowHopIsKeptWithHeartbeats(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	grand := &direct{n: root}
	u, err := NewUpstreamHops(UpstreamConfig{
		Hops: []Hop{{Addr: "parent:1"}, {Addr: "grand:1"}},
		Dial: func(_ context.Context, addr string) (Conn, error) {
			if addr == "parent:1" {
				return hungConn{}, nil
			}
			return grand, nil
		},
		RetryPrimary: time.Hour,
		Heartbeats:   true,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err = u.Call(ctx, op.Getattr, "/pkg")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Zero(t, u.Failovers())
	assert.Equal(t, "parent:1", u.Current())
}

// A dial that hangs holds no lock: calls to the hop in use go on while
// the parent is being re-dialed in the background.
func TestUpstreamDialsOutsideTheLock(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	grand := &direct{n: root}
	release := make(chan struct{})
	var dials sync.Map
	first := true
	var mu sync.Mutex
	clock := testkit.NewClock()
	u, err := NewUpstreamHops(UpstreamConfig{Hops: []Hop{{Addr: "parent:1"}, {Addr: "grand:1"}}, RetryPrimary: time.Millisecond, Now: clock.Now, Dial: func(ctx context.Context, addr string) (Conn, error) {
		if addr == "grand:1" {
			return grand, nil
		}
		mu.Lock()
		f := first
		first = false
		mu.Unlock()
		if f {
			return nil, errors.New("connection refused")
		}
		dials.Store("parent-redial", true)
		select { // hangs like a dial to a stopped process
		case <-release:
		case <-ctx.Done():
		}
		return nil, errors.New("handshake timed out")
	}})
	require.NoError(t, err)
	t.Cleanup(func() { close(release); _ = u.Close() })

	_, err = u.Call(t.Context(), op.Getattr, "/pkg")
	require.NoError(t, err)
	require.Equal(t, "grand:1", u.Current())
	clock.Advance(5 * time.Millisecond) // past RetryPrimary
	call := func(i int) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		r, err := u.Call(ctx, op.Getattr, "/pkg")
		require.NoError(t, err, "call %d while the parent's dial hangs", i)
		require.Zero(t, r.Errno)
	}
	call(0) // starts the background redial, which hangs
	require.Eventually(t, func() bool { _, ok := dials.Load("parent-redial"); return ok }, 10*time.Second, time.Millisecond,
		"the parent is re-dialed in the background")
	for i := range 20 {
		call(i)
	}
	assert.Equal(t, "grand:1", u.Current())
}

// After every ancestor, the local hop (the node's own backend) answers,
// and its operations are counted as backend operations.
func TestUpstreamFallsBackToLocalBackend(t *testing.T) {
	dir := sourceDir(t)
	local := NewLocalBackend(backend.Config{Target: dir, Parallel: 2, MaxCacheable: 1 << 20}, 0, "successor", nil)
	u, err := NewUpstreamHops(UpstreamConfig{
		Hops: []Hop{{Addr: "root:1"}, {Local: local, Name: "own backend"}},
		Dial: func(context.Context, string) (Conn, error) { return nil, errors.New("connection refused") },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })
	assert.False(t, local.Used(), "created lazily")

	r, err := u.Call(t.Context(), op.Read, "/pkg/__init__.py")
	require.NoError(t, err)
	assert.Equal(t, "x = 1\n", string(r.Data))
	assert.True(t, local.Used())
	assert.EqualValues(t, 1, u.BackendOps(op.Read))
	assert.EqualValues(t, 1, u.Failovers())
	assert.Equal(t, "own backend", u.Current())
}

func TestNewUpstreamHopsRejects(t *testing.T) {
	dial := func(context.Context, string) (Conn, error) { return nil, errors.New("x") }
	local := &direct{}
	tests := []struct {
		name string
		cfg  UpstreamConfig
	}{
		{"no hops", UpstreamConfig{Dial: dial}},
		{"local first", UpstreamConfig{Hops: []Hop{{Local: local}}, Dial: dial}},
		{"both", UpstreamConfig{Hops: []Hop{{Addr: "a:1"}, {Addr: "b:1", Local: local}}, Dial: dial}},
		{"neither", UpstreamConfig{Hops: []Hop{{Addr: "a:1"}, {}}, Dial: dial}},
		{"no dialer", UpstreamConfig{Hops: []Hop{{Addr: "a:1"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewUpstreamHops(tc.cfg)
			assert.Error(t, err)
		})
	}
}

func TestLimiterReserve(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name        string
		rate, burst float64
		at          []time.Duration // reservation times after t0
		want        []time.Duration
	}{
		{"burst then wait", 10, 2, []time.Duration{0, 0, 0, 0}, []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond}},
		{"refills at rate", 10, 1, []time.Duration{0, 100 * time.Millisecond, 150 * time.Millisecond}, []time.Duration{0, 0, 50 * time.Millisecond}},
		{"never above burst", 100, 1, []time.Duration{0, time.Hour, time.Hour}, []time.Duration{0, 0, 10 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimiter(tc.rate, tc.burst)
			var now time.Time
			l.now = func() time.Time { return now }
			for i, at := range tc.at {
				now = t0.Add(at)
				assert.InDelta(t, tc.want[i], l.reserve(), float64(time.Microsecond), "reservation %d", i)
			}
		})
	}
}

func TestLimiterWaitEndsWithContext(t *testing.T) {
	l := NewLimiter(0.001, 1) // one token, then one per 1000 s
	require.NoError(t, l.Wait(t.Context()))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, l.Wait(ctx), context.Canceled)
}

// A parent left on a false alarm is preferred over reading the
// filesystem when the grandparent then dies.
func TestUpstreamPrefersAnEarlierHopOverLocal(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	parent, grand := &direct{n: root}, &direct{n: root}
	local := &direct{n: root}
	refusedOnce := true
	var mu sync.Mutex
	u, err := NewUpstreamHops(UpstreamConfig{
		Hops: []Hop{{Addr: "parent:1"}, {Addr: "grand:1"}, {Local: local, Name: "direct"}},
		Dial: func(_ context.Context, addr string) (Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			if addr == "parent:1" && refusedOnce {
				refusedOnce = false
				return nil, errors.New("connection refused")
			}
			if addr == "grand:1" {
				if grand.fail.Load() {
					return nil, errors.New("connection refused")
				}
				return grand, nil
			}
			return parent, nil
		},
		RetryPrimary: time.Hour, // no background return: the order alone is under test
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })

	_, err = u.Call(t.Context(), op.Getattr, "/pkg")
	require.NoError(t, err)
	require.Equal(t, "grand:1", u.Current())

	grand.fail.Store(true)
	for i := range 3 {
		r, err := u.Call(t.Context(), op.Getattr, "/pkg")
		require.NoError(t, err, "call %d", i)
		require.Zero(t, r.Errno)
	}
	assert.Equal(t, "parent:1", u.Current())
	assert.Zero(t, local.calls.Load(), "the filesystem was not read directly")
	assert.EqualValues(t, 2, u.Failovers(), "parent → grand, grand → onwards")
}
