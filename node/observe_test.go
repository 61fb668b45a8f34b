package node

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/op"
)

// observations records what Config.Observe is handed.
type observations struct {
	mu   sync.Mutex
	seen []Observation
}

func (o *observations) add(ob Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, ob)
}

func (o *observations) all() []Observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Observation(nil), o.seen...)
}

func TestObserveReportsEveryOutcome(t *testing.T) {
	var obs observations
	n, _ := rootOver(t, backend.Config{Target: sourceDir(t), Parallel: 4, MaxCacheable: 1 << 20}, obs.add)
	ctx := context.Background()

	steps := []struct {
		o    op.Op
		path string
		want Observation
	}{
		{op.Getattr, "/pkg", Observation{Op: op.Getattr, Path: "/pkg", Outcome: OutcomeMiss}},
		{op.Getattr, "/pkg", Observation{Op: op.Getattr, Path: "/pkg", Outcome: OutcomeHit}},
		{op.Read, "/pkg/__init__.py", Observation{Op: op.Read, Path: "/pkg/__init__.py", Outcome: OutcomeMiss, Bytes: 6}},
		{op.Read, "/pkg/__init__.py", Observation{Op: op.Read, Path: "/pkg/__init__.py", Outcome: OutcomeHit, Bytes: 6}},
		// The getattr of /pkg fetched the listing of "/": a name absent
		// from it is a cached negative, for every operation.
		{op.Getattr, "/gone", Observation{Op: op.Getattr, Path: "/gone", Outcome: OutcomeListed, Errno: syscall.ENOENT}},
		{op.Readdir, "/gone", Observation{Op: op.Readdir, Path: "/gone", Outcome: OutcomeListed, Errno: syscall.ENOENT}},
		// Below an unlisted directory, the getattr fetches its dirplus.
		{op.Getattr, "/pkg/sub/x", Observation{Op: op.Getattr, Path: "/pkg/sub/x", Outcome: OutcomeMiss, Errno: syscall.ENOENT}},
		{op.DirPlus, "/pkg", Observation{Op: op.DirPlus, Path: "/pkg", Outcome: OutcomeMiss}},
		{op.DirPlusNext, "/pkg/__init__.py", Observation{Op: op.DirPlusNext, Path: "/pkg", Outcome: OutcomeHit}},
	}
	for i, s := range steps {
		n.Get(ctx, s.o, s.path)
		got := obs.all()
		require.Len(t, got, i+1, "step %d (%s %s)", i, s.o, s.path)
		assert.Equal(t, s.want, got[i], "step %d", i)
	}

	// Requests that never reach the cache are not observed.
	n.Get(ctx, op.IsReady, "/")
	n.Get(ctx, op.Getattr, "relative")
	n.Get(ctx, op.Op(99), "/")
	assert.Len(t, obs.all(), len(steps))
}

func TestObserveCoalescedAndCancelled(t *testing.T) {
	root := newRoot(t, sourceDir(t))
	up := &direct{n: root}
	var obs observations
	child, err := New(Config{Rank: 1, Cache: newCache(), Parent: up, Observe: obs.add,
		ReadyProbeInitial: time.Millisecond, ReadyProbeMax: 5 * time.Millisecond, ReadyTimeout: 5 * time.Second})
	require.NoError(t, err)
	child.MarkRegistered()
	require.NoError(t, child.AwaitParent(context.Background()))
	up.gate = make(chan struct{})

	const askers = 3
	var wg sync.WaitGroup
	for range askers {
		wg.Go(func() { child.Get(context.Background(), op.Readlink, "/pkg/link") })
	}
	// The leader is one of them: its request is held at the parent.
	require.Eventually(t, func() bool { return child.Stats().Op(op.Readlink).Misses == askers && up.calls.Load() == 1 },
		10*time.Second, time.Millisecond)
	cctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan op.Result, 1)
	go func() { cancelled <- child.Get(cctx, op.Readlink, "/pkg/link") }()
	require.Eventually(t, func() bool { return child.Stats().Op(op.Readlink).Misses == askers+1 },
		10*time.Second, time.Millisecond)
	cancel()
	require.Equal(t, syscall.EINTR, (<-cancelled).Errno)
	close(up.gate)
	wg.Wait()

	count := map[Outcome]int{}
	for _, ob := range obs.all() {
		count[ob.Outcome]++
		if ob.Errno == 0 {
			assert.Equal(t, Observation{Op: op.Readlink, Path: "/pkg/link", Outcome: ob.Outcome}, ob)
		}
	}
	// One leader, the other askers waited on it, the cancelled one gave up.
	assert.Equal(t, map[Outcome]int{OutcomeMiss: 2, OutcomeCoalesced: askers - 1}, count)
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{OutcomeHit: "hit", OutcomeNegative: "negative",
		OutcomeMiss: "miss", OutcomeCoalesced: "coalesced", 0: "outcome(0)"} {
		assert.Equal(t, want, o.String())
	}
}
