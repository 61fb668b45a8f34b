package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

func TestHoldBound(t *testing.T) {
	tests := []struct {
		name          string
		probeMax, rpc time.Duration
		want          time.Duration
	}{
		{"ready_probe_max under a quarter of rpc_timeout", time.Second, 60 * time.Second, time.Second},
		{"a quarter of a short rpc_timeout", time.Second, 2 * time.Second, 500 * time.Millisecond},
		{"no rpc_timeout", 3 * time.Second, 0, 3 * time.Second},
		{"never under a millisecond", time.Second, time.Millisecond, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, HoldBound(tt.probeMax, tt.rpc))
		})
	}
}

// notReadyNode is a non-root node whose parent refuses every probe: it is
// not tree-ready until the test says so.
func notReadyNode(t *testing.T, hold time.Duration) *Node {
	t.Helper()
	d := &direct{}
	d.fail.Store(true)
	n, err := New(Config{Rank: 1, Cache: newCache(), Parent: d, ReadyHold: hold})
	require.NoError(t, err)
	n.MarkRegistered()
	return n
}

// TestAnswerReadyHolds: a readiness probe is answered at once by a
// tree-ready node, and held by one that is not until it becomes ready,
// stops, the asker leaves or the hold's bound passes.
func TestAnswerReadyHolds(t *testing.T) {
	tests := []struct {
		name  string
		hold  time.Duration
		event func(n *Node, cancel context.CancelFunc) // nil: nothing happens during the hold
		want  op.Result
	}{
		{"becomes tree-ready", time.Hour, func(n *Node, _ context.CancelFunc) { n.setTreeReady() }, op.Result{Ready: true}},
		{"stops", time.Hour, func(n *Node, _ context.CancelFunc) { n.Stopping() }, op.Fail(syscall.ESHUTDOWN)},
		{"the asker leaves", time.Hour, func(_ *Node, cancel context.CancelFunc) { cancel() }, op.Result{}},
		{"the bound passes", 20 * time.Millisecond, nil, op.Result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := notReadyNode(t, tt.hold)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan op.Result, 1)
			go func() { done <- n.Get(ctx, op.IsReady, "/") }()
			if tt.event != nil {
				require.Eventually(t, func() bool { return n.Stats().ReadyHeld == 1 }, 10*time.Second, time.Millisecond, "probe held")
				tt.event(n, cancel)
			}
			select {
			case got := <-done:
				assert.Equal(t, tt.want, got)
			case <-time.After(10 * time.Second):
				t.Fatal("probe still held")
			}
			assert.Zero(t, n.Stats().ReadyHeld)
		})
	}
}

func TestAnswerReadyAtOnce(t *testing.T) {
	tests := []struct {
		name  string
		setup func(n *Node)
		want  op.Result
	}{
		{"tree-ready", func(n *Node) { n.setTreeReady() }, op.Result{Ready: true}},
		{"tree-ready and stopping", func(n *Node) { n.setTreeReady(); n.Stopping() }, op.Result{Ready: true}},
		{"stopping, not ready", func(n *Node) { n.Stopping() }, op.Fail(syscall.ESHUTDOWN)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := notReadyNode(t, time.Hour) // a held probe would hang the test
			tt.setup(n)
			assert.Equal(t, tt.want, n.Get(t.Context(), op.IsReady, "/"))
		})
	}
}

// TestHeldProbeReachingItsBoundIsRepeated: a parent that stays not ready
// answers each held probe "not ready" at the bound, and the child probes
// again at once — whether its backoff interval is shorter than the hold
// or longer (a short rpc_timeout caps the hold below ready_probe_max);
// when the parent becomes ready, the probe it holds answers.
func TestHeldProbeReachingItsBoundIsRepeated(t *testing.T) {
	tests := []struct {
		name                 string
		initial, probeMax    time.Duration
		rpcTimeout, wantHold time.Duration
	}{
		{"interval under the hold", time.Millisecond, 2 * time.Millisecond, 0, 2 * time.Millisecond},
		{"interval over the hold", time.Hour, time.Hour, 80 * time.Millisecond, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := notReadyNode(t, 20*time.Millisecond)
			child, err := New(Config{Rank: 2, Cache: newCache(), Parent: &direct{n: parent},
				ReadyProbeInitial: tt.initial, ReadyProbeMax: tt.probeMax, RPCTimeout: tt.rpcTimeout})
			require.NoError(t, err)
			assert.Equal(t, tt.wantHold, child.cfg.ReadyHold)
			done := make(chan error, 1)
			go func() { done <- child.AwaitParent(t.Context()) }()
			require.Eventually(t, func() bool { return child.Stats().ReadyProbes >= 3 }, 10*time.Second, time.Millisecond)
			assert.False(t, child.TreeReady())
			require.Eventually(t, func() bool { return parent.Stats().ReadyHeld == 1 }, 10*time.Second, time.Millisecond)
			parent.setTreeReady()
			require.NoError(t, <-done)
			assert.True(t, child.TreeReady())
		})
	}
}

// TestStoppingParentNamesItself: a probe released because the parent
// stops tells the child why.
func TestStoppingParentNamesItself(t *testing.T) {
	parent := notReadyNode(t, time.Hour)
	child, err := New(Config{Rank: 2, Cache: newCache(), Parent: &direct{n: parent},
		ReadyProbeInitial: time.Hour, ReadyProbeMax: time.Hour, ReadyTimeout: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- child.AwaitParent(ctx) }()
	require.Eventually(t, func() bool { return parent.Stats().ReadyHeld == 1 }, 10*time.Second, time.Millisecond)
	parent.Stopping()
	require.Eventually(t, func() bool { return parent.Stats().ReadyHeld == 0 }, 10*time.Second, time.Millisecond)
	cancel() // the child now waits its (hour-long) backoff
	err = <-done
	require.ErrorContains(t, err, "parent is stopping")
	assert.EqualValues(t, 1, child.Stats().ReadyProbes)
}

// notUpYet refuses the first n probes as a parent not yet listening
// would, or with another error, then answers ready.
type notUpYet struct {
	refusals int64
	err      error
	probes   atomic.Int64
}

func (p *notUpYet) Call(_ context.Context, o op.Op, _ string) (op.Result, error) {
	if p.probes.Add(1) <= p.refusals {
		return op.Result{}, p.err
	}
	return op.Result{Ready: true}, nil
}

// TestNotListeningParentIsProbedAtTheFirstInterval: a refused connect
// does not double the interval (a parent that starts late is probed within
// ready_probe_initial of coming up), while other errors still back off.
// Twenty refusals at a doubling 1 ms would take 2^20 ms, past the budget.
func TestNotListeningParentIsProbedAtTheFirstInterval(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantReady bool
	}{
		{"refused connect", fmt.Errorf("dial: %w: connection refused", ErrNotListening), true},
		{"other error", errors.New("authentication failed"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := &notUpYet{refusals: 20, err: tt.err}
			child, err := New(Config{Rank: 2, Cache: newCache(), Parent: parent,
				ReadyProbeInitial: time.Millisecond, ReadyProbeMax: time.Hour, ReadyTimeout: 3 * time.Second})
			require.NoError(t, err)
			err = child.AwaitParent(t.Context())
			if tt.wantReady {
				require.NoError(t, err)
				assert.Equal(t, int64(21), parent.probes.Load())
				return
			}
			require.Error(t, err)
			assert.Less(t, parent.probes.Load(), int64(20), "backed off")
		})
	}
}
