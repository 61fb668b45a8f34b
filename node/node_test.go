package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/op"
)

func newCache() *cache.Cache {
	return cache.New(cache.Config{BudgetBytes: 64 << 20, NegativeTTL: time.Hour})
}

func newRoot(t *testing.T, dir string) *Node {
	t.Helper()
	n, _ := rootOver(t, backend.Config{Target: dir, Parallel: 4, MaxCacheable: 1 << 20}, nil)
	return n
}

// rootOver is a registered root over a backend of bcfg (closed at the
// test's end), its observations going to observe (nil: none).
func rootOver(t *testing.T, bcfg backend.Config, observe func(Observation)) (*Node, *backend.Backend) {
	t.Helper()
	be, err := backend.New(bcfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = be.Close() })
	n, err := New(Config{Rank: 0, Cache: newCache(), Backend: be, Observe: observe})
	require.NoError(t, err)
	n.MarkRegistered()
	return n, be
}

// direct is an in-process Parent: a child calling its parent's Get, as the
// network would, counting requests and optionally holding them.
type direct struct {
	n     *Node
	calls atomic.Int64
	gate  chan struct{} // when set, requests wait for it to close
	fail  atomic.Bool
}

func (d *direct) Call(ctx context.Context, o op.Op, path string) (op.Result, error) {
	if d.fail.Load() {
		return op.Result{}, errors.New("connection refused")
	}
	if o != op.IsReady {
		d.calls.Add(1)
		if d.gate != nil {
			<-d.gate
		}
	}
	return d.n.Get(ctx, o, path), nil
}
func (d *direct) Close() error { return nil }

func newChild(t *testing.T, rank int, p Parent) *Node {
	t.Helper()
	n, err := New(Config{Rank: rank, Cache: newCache(), Parent: p, ReadyProbeInitial: time.Millisecond, ReadyProbeMax: 5 * time.Millisecond, ReadyTimeout: 5 * time.Second})
	require.NoError(t, err)
	n.MarkRegistered()
	require.NoError(t, n.AwaitParent(context.Background()))
	return n
}

func sourceDir(t *testing.T) string {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "pkg/sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pkg/__init__.py"), []byte("x = 1\n"), 0o644))
	require.NoError(t, os.Symlink("__init__.py", filepath.Join(dir, "pkg/link")))
	return dir
}

func TestNewRejectsBadWiring(t *testing.T) {
	_, err := New(Config{Cache: newCache()})
	require.ErrorContains(t, err, "exactly one")
	_, err = New(Config{})
	require.ErrorContains(t, err, "no cache")
}

// 1,000 concurrent askers for one path make exactly one parent request.
func TestCoalescing(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	up := &direct{n: root}
	child := newChild(t, 1, up)
	up.gate = make(chan struct{})

	const askers = 1000
	var wg sync.WaitGroup
	results := make([]op.Result, askers)
	for i := range askers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = child.Get(context.Background(), op.Read, "/pkg/__init__.py")
		}()
	}
	// Hold the one request until every asker has missed the cache.
	require.Eventually(t, func() bool { return child.Stats().Op(op.Read).Misses == askers }, 10*time.Second, time.Millisecond)
	close(up.gate)
	wg.Wait()

	assert.EqualValues(t, 1, up.calls.Load(), "parent requests")
	for _, r := range results {
		require.Zero(t, r.Errno)
		require.Equal(t, "x = 1\n", string(r.Data))
	}
	st := child.Stats().Op(op.Read)
	assert.EqualValues(t, askers-1, st.Coalesced)
	assert.EqualValues(t, 1, st.Forwarded)
	assert.EqualValues(t, 1, root.Stats().Op(op.Read).BackendOps)
}

// An answer is cached at every hop: a second leaf under the same middle
// node is served without reaching the root's backend again.
func TestChainCachesAtEveryHop(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	toRoot := &direct{n: root}
	mid := newChild(t, 1, toRoot)
	toMid := &direct{n: mid}
	leafA := newChild(t, 2, toMid)
	leafB := newChild(t, 3, toMid)
	ctx := context.Background()

	for _, tc := range []struct {
		o     op.Op
		path  string
		errno syscall.Errno
	}{
		{op.Getattr, "/pkg/__init__.py", 0},
		{op.Readdir, "/pkg", 0},
		{op.Readlink, "/pkg/link", 0},
		{op.Read, "/pkg/__init__.py", 0},
		{op.Getattr, "/pkg/missing.py", syscall.ENOENT},
		{op.Getattr, "/pkg/__init__.py/x", syscall.ENOTDIR},
	} {
		a := leafA.Get(ctx, tc.o, tc.path)
		b := leafB.Get(ctx, tc.o, tc.path)
		require.Equal(t, tc.errno, a.Errno, "%s %s", tc.o, tc.path)
		require.Equal(t, a, b, "%s %s: leaves disagree", tc.o, tc.path)
		direct := root.cfg.Backend.Do(ctx, tc.o, tc.path)
		// Listings come sorted by name; the source's order is getdents'.
		slices.SortFunc(direct.Entries, func(x, y op.DirEntry) int { return strings.Compare(x.Name, y.Name) })
		require.Equal(t, direct, a, "%s %s differs from the source", tc.o, tc.path)
	}
	// The first getattr in /pkg fetches its dirplus, which answers the
	// readdir, the readlink and the missing name at each leaf; the read is
	// asked for on its own; ENOTDIR (the dirplus of a file) is not cached.
	// Each leaf asks mid for the dirplus, the read and the ENOTDIR; mid
	// asks the root once each, and twice for the ENOTDIR.
	assert.EqualValues(t, 6, toMid.calls.Load(), "requests reaching mid")
	assert.EqualValues(t, 2+2, toRoot.calls.Load(), "requests reaching the root")
	var midHits int64
	for _, st := range mid.Stats().Ops {
		midHits += st.Hits
	}
	assert.EqualValues(t, 2, midHits, "mid served the second leaf's dirplus and read from its cache")
	assert.EqualValues(t, 1+2, mid.Stats().Op(op.DirPlus).Forwarded, "/pkg once, the file twice (ENOTDIR)")
}

func TestAwaitParentWaitsForRegistration(t *testing.T) {
	be, err := backend.New(backend.Config{Target: t.TempDir(), Parallel: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = be.Close() })
	rootNode, err := New(Config{Cache: newCache(), Backend: be})
	require.NoError(t, err)
	child, err := New(Config{Rank: 1, Cache: newCache(), Parent: &direct{n: rootNode}, ReadyProbeInitial: time.Millisecond, ReadyProbeMax: 4 * time.Millisecond, ReadyTimeout: 10 * time.Second})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- child.AwaitParent(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("child ready before its parent registered: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	assert.False(t, child.TreeReady())
	rootNode.MarkRegistered()
	require.NoError(t, <-done)
	assert.True(t, child.TreeReady())
}

func TestAwaitParentTimeoutNamesRank(t *testing.T) {
	d := &direct{}
	d.fail.Store(true)
	child, err := New(Config{Rank: 7, Cache: newCache(), Parent: d, ReadyProbeInitial: time.Millisecond, ReadyProbeMax: 2 * time.Millisecond, ReadyTimeout: 30 * time.Millisecond})
	require.NoError(t, err)
	err = child.AwaitParent(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rank 7")
	assert.Contains(t, err.Error(), "connection refused")
}

func TestUpstreamFailsOverAndReturns(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	parent := &direct{n: root}
	grand := &direct{n: root}
	conns := map[string]*direct{"parent:1": parent, "grand:1": grand}
	dial := func(ctx context.Context, addr string) (Conn, error) {
		c := conns[addr]
		if c.fail.Load() {
			return nil, errors.New("connection refused")
		}
		return c, nil
	}
	clock := testkit.NewClock()
	u, err := NewUpstreamHops(UpstreamConfig{Hops: []Hop{{Addr: "parent:1"}, {Addr: "grand:1"}}, Dial: dial, RetryPrimary: 20 * time.Millisecond, Now: clock.Now})
	require.NoError(t, err)
	ctx := context.Background()

	r, err := u.Call(ctx, op.Getattr, "/pkg")
	require.NoError(t, err)
	require.Zero(t, r.Errno)
	assert.Equal(t, "parent:1", u.Current())

	parent.fail.Store(true)
	r, err = u.Call(ctx, op.Getattr, "/pkg")
	require.NoError(t, err)
	require.Zero(t, r.Errno)
	assert.Equal(t, "grand:1", u.Current())
	assert.EqualValues(t, 1, u.Failovers())

	// Readiness is asked of the parent alone.
	_, err = u.Probe(ctx)
	require.Error(t, err)

	// Before the retry interval, the parent is not asked again.
	parent.fail.Store(false)
	_, err = u.Call(ctx, op.Getattr, "/pkg")
	require.NoError(t, err)
	assert.Equal(t, "grand:1", u.Current(), "the parent is retried only after RetryPrimary")

	clock.Advance(30 * time.Millisecond)
	_, err = u.Call(ctx, op.Getattr, "/pkg") // answered by grand; the parent is retried in the background
	require.NoError(t, err)
	require.Eventually(t, func() bool { return u.Current() == "parent:1" }, 10*time.Second, time.Millisecond,
		"back on the parent after the retry interval")

	parent.fail.Store(true)
	grand.fail.Store(true)
	_, err = u.Call(ctx, op.Getattr, "/pkg")
	require.ErrorContains(t, err, "no ancestor answered")
}

func TestGetRejectsBadInput(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	ctx := context.Background()
	assert.Equal(t, syscall.EINVAL, root.Get(ctx, op.Getattr, "relative").Errno)
	assert.Equal(t, syscall.ENOSYS, root.Get(ctx, op.Op(99), "/").Errno)
	assert.True(t, root.Get(ctx, op.IsReady, "/").Ready)
}

func TestCancelledAskerGetsEINTR(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	up := &direct{n: root}
	child := newChild(t, 1, up)
	up.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan op.Result)
	go func() { done <- child.Get(ctx, op.Getattr, "/pkg") }()
	require.Eventually(t, func() bool { return up.calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	assert.Equal(t, syscall.EINTR, (<-done).Errno)
	close(up.gate)
	// The fetch finished for whoever asks next.
	require.Eventually(t, func() bool {
		return child.Get(context.Background(), op.Getattr, "/pkg").Errno == 0
	}, 5*time.Second, time.Millisecond)
	assert.EqualValues(t, 1, up.calls.Load())
}

// errSeq is a Parent whose probes fail with the given errors in turn, the
// last one repeating. errAfterDeadline stands for a probe that hangs until
// its deadline and then fails as netpoll's dial does: a bare "i/o timeout"
// that neither errors.Is nor net.Error recognise as a timeout.
type errSeq struct {
	errs []error
	i    int
}

var errAfterDeadline = errors.New("i/o timeout")

func (e *errSeq) Call(ctx context.Context, _ op.Op, _ string) (op.Result, error) {
	err := e.errs[min(e.i, len(e.errs)-1)]
	e.i++
	if err == errAfterDeadline {
		<-ctx.Done()
	}
	return op.Result{}, err
}

// A probe cut short by the deadline must not hide why earlier probes were
// refused, however the cut-short probe words its error.
func TestAwaitParentKeepsTheTellingError(t *testing.T) {
	tests := []struct {
		name  string
		later error
	}{
		{"context deadline", context.DeadlineExceeded},
		{"bare i/o timeout after the probe's deadline", errAfterDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &errSeq{errs: []error{errors.New("authentication failed"), tt.later}}
			child, err := New(Config{Rank: 3, Cache: newCache(), Parent: p, ReadyProbeInitial: time.Millisecond,
				ReadyProbeMax: 2 * time.Millisecond, ReadyTimeout: 60 * time.Millisecond, RPCTimeout: 5 * time.Millisecond})
			require.NoError(t, err)
			err = child.AwaitParent(context.Background())
			require.ErrorContains(t, err, "authentication failed")
		})
	}
}

// TestColdGetCountsOneMiss: on a cold get, the cache counts the misses
// the node counts, per operation (the leader's re-check inside the
// singleflight is part of the same request, not a second miss).
func TestColdGetCountsOneMiss(t *testing.T) {
	gets := []struct {
		o    op.Op
		path string
	}{
		{op.Getattr, "/pkg/__init__.py"},
		{op.Getattr, "/missing"},
		{op.Readdir, "/pkg/sub"},
		{op.Readlink, "/pkg/link"},
		{op.Read, "/pkg/__init__.py"},
		{op.DirPlus, "/pkg"},
	}
	root := newRoot(t, sourceDir(t))
	child := newChild(t, 1, &direct{n: root})
	for _, n := range []*Node{root, child} {
		for _, g := range gets {
			n.Get(context.Background(), g.o, g.path)
		}
		st := n.Stats()
		var total uint64
		for _, o := range op.All {
			if o == op.IsReady {
				continue
			}
			assert.EqualValues(t, st.Op(o).Misses, st.Cache.Misses[o], "rank %d %s: node misses vs cache misses", st.Rank, o)
			total += st.Cache.Misses[o]
		}
		assert.NotZero(t, total, "rank %d: the gets were cold", st.Rank)
	}
}

// TestFetchWaitForReadinessIsBounded: on a child whose parent never
// becomes tree-ready, a request fails with EIO once ready_timeout passes
// (or the asker's deadline, if sooner) instead of blocking forever, and
// leaves no fetch behind.
func TestFetchWaitForReadinessIsBounded(t *testing.T) {
	tests := []struct {
		name         string
		readyTimeout time.Duration
		askerTimeout time.Duration   // 0: no deadline
		want         []syscall.Errno // the asker's deadline ends its wait and the fetch's at once: either answers
	}{
		{"ready_timeout bounds an asker without deadline", 50 * time.Millisecond, 0, []syscall.Errno{syscall.EIO}},
		{"the asker's deadline, ready_timeout forever", 0, 50 * time.Millisecond, []syscall.Errno{syscall.EINTR, syscall.EIO}},
		{"the asker's deadline before ready_timeout", time.Hour, 50 * time.Millisecond, []syscall.Errno{syscall.EINTR, syscall.EIO}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &direct{}
			d.fail.Store(true) // the parent never answers "ready"
			child, err := New(Config{Rank: 5, Cache: newCache(), Parent: d, ReadyTimeout: tt.readyTimeout})
			require.NoError(t, err)
			child.MarkRegistered()
			ctx := context.Background()
			if tt.askerTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.askerTimeout)
				defer cancel()
			}
			done := make(chan op.Result, 1)
			go func() { done <- child.Get(ctx, op.Getattr, "/x") }()
			select {
			case r := <-done:
				assert.Contains(t, tt.want, r.Errno)
			case <-time.After(10 * time.Second):
				t.Fatal("Get still blocked on a parent that never becomes ready")
			}
			// The flight's fetch ends too: nothing stays in flight.
			require.Eventually(t, func() bool { return child.Stats().InFlight == 0 }, 10*time.Second, time.Millisecond)
			assert.EqualValues(t, 0, d.calls.Load(), "nothing was forwarded to a parent that is not ready")
		})
	}
}
