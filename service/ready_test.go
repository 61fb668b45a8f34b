package service_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/service"
)

// chainStarter starts ranks of a 4-rank job of fan-out 2 (0 → 1 → 3) one
// by one on loopback, logging at debug level into logs, and stops them at
// cleanup.
func chainStarter(t *testing.T, s config.Settings) (start func(rank int) *service.Service, logs *testkit.SyncBuffer) {
	t.Helper()
	s.Fanout = 2
	book := loopbackBook(t, 4)
	token := []byte("ready-test-job-secret")
	logs = &testkit.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var nodes []*service.Service
	t.Cleanup(func() {
		for _, svc := range nodes {
			assert.NoError(t, svc.Stop(context.Background()))
		}
		if t.Failed() {
			t.Logf("node logs:\n%s", logs.String())
		}
	})
	return func(r int) *service.Service {
		svc, err := service.Start(t.Context(), s, service.Identity{Rank: r, Book: book, Token: token}, service.Options{Logger: logger})
		require.NoError(t, err, "rank %d", r)
		nodes = append(nodes, svc)
		return svc
	}, logs
}

// TestClusterReadinessTakesOneHeldProbe: rank 3 probes rank 1 while rank
// 1's own parent, the root, is not even up; the root starts 300 ms later.
// Rank 1 holds rank 3's probe and answers it once it is tree-ready, so
// rank 3 needs one probe (two if a hold ran out on a slow host), where
// a backoff of 5 ms doubling sent about seven by then.
func TestClusterReadinessTakesOneHeldProbe(t *testing.T) {
	s := clusterSettings(t, t.TempDir())
	s.ReadyProbeMaxMs = 3000 // the hold: min(3 s, rpc_timeout_s/4 = 7.5 s)
	start, _ := chainStarter(t, s)
	mid, leaf := start(1), start(3)
	require.Equal(t, []int{1, 0}, leaf.Position.Ancestors)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var g errgroup.Group
	g.Go(func() error { return mid.AwaitTreeReady(ctx) })
	g.Go(func() error { return leaf.AwaitTreeReady(ctx) })
	require.Eventually(t, func() bool { return mid.Node().Stats().ReadyHeld == 1 }, 30*time.Second, time.Millisecond,
		"rank 1 holds rank 3's probe")
	time.Sleep(300 * time.Millisecond)
	start(0)
	require.NoError(t, g.Wait())

	leafProbes, midProbes := leaf.Node().Stats().ReadyProbes, mid.Node().Stats().ReadyProbes
	t.Logf("probes: rank 3 → rank 1: %d; rank 1 → root (not up at first): %d", leafProbes, midProbes)
	assert.LessOrEqual(t, leafProbes, int64(2), "rank 3's probes")
	assert.Greater(t, midProbes, int64(1), "rank 1 backs off while its parent refuses the dial")
	assert.Zero(t, mid.Node().Stats().ReadyHeld)
}

// heldProbe starts ranks 1 and 3 of a chain with no root, so rank 1 never
// becomes ready and holds rank 3's probe (for up to an hour), and returns
// once it does; done gets rank 3's AwaitTreeReady error after cancel.
func heldProbe(t *testing.T) (mid, leaf *service.Service, logs *testkit.SyncBuffer, done chan error, cancel context.CancelFunc) {
	t.Helper()
	s := clusterSettings(t, t.TempDir())
	s.RPCTimeoutS = 0                 // no deadline: the hold is ready_probe_max_ms
	s.ReadyProbeInitialMs = 3_600_000 // after the answer, the child waits its backoff:
	s.ReadyProbeMaxMs = 3_600_000     // an hour, so its last error stays the stop's
	s.ReadyTimeoutS = 0               // the test's context ends the wait
	start, logs := chainStarter(t, s)
	mid, leaf = start(1), start(3)

	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	done = make(chan error, 1)
	go func() { done <- leaf.AwaitTreeReady(ctx) }()
	require.Eventually(t, func() bool { return mid.Node().Stats().ReadyHeld == 1 }, 30*time.Second, time.Millisecond,
		"rank 1 holds rank 3's probe")
	return mid, leaf, logs, done, cancel
}

// TestClusterStoppingParentReleasesHeldProbe: a parent that stops while
// it holds a probe (here for up to an hour) answers it at once, so its
// server's drain does not wait for the hold, and the child learns why.
func TestClusterStoppingParentReleasesHeldProbe(t *testing.T) {
	mid, leaf, logs, done, cancel := heldProbe(t)

	stopCtx, stopCancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer stopCancel()
	require.NoError(t, mid.Stop(stopCtx), "a held probe must not keep the server draining")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "parent is stopping") }, 30*time.Second, time.Millisecond,
		"rank 3 got the stop's answer")
	cancel()
	err := <-done
	require.ErrorContains(t, err, "parent is stopping")
	require.ErrorContains(t, err, "rank 3")
	assert.EqualValues(t, 1, leaf.Node().Stats().ReadyProbes)
}

// TestClusterDeadChildReleasesHeldProbe: a child whose connection closes
// while its parent holds its probe (here for up to an hour) costs the
// parent nothing more: the hold ends with the connection.
func TestClusterDeadChildReleasesHeldProbe(t *testing.T) {
	mid, leaf, _, done, cancel := heldProbe(t)

	stopCtx, stopCancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer stopCancel()
	require.NoError(t, leaf.Stop(stopCtx)) // closes its connection to rank 1
	require.Eventually(t, func() bool { return mid.Node().Stats().ReadyHeld == 0 }, 10*time.Second, time.Millisecond,
		"rank 1 still holds the probe of a child that is gone")
	cancel()
	<-done
}

// TestClusterHeldProbeOutlivesHeartbeatTimeout: a probe held for several
// heartbeat timeouts is not taken for a hung parent (heartbeats are
// answered while it is held): the child sends one probe, fails over to
// no one, and is ready once its parent is.
func TestClusterHeldProbeOutlivesHeartbeatTimeout(t *testing.T) {
	s := clusterSettings(t, t.TempDir())
	s.HeartbeatTimeoutMs = 200
	s.RPCTimeoutS = 0 // no deadline: the hold is ready_probe_max_ms
	s.ReadyProbeMaxMs = 60_000
	start, _ := chainStarter(t, s)
	mid, leaf := start(1), start(3) // the root comes later

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var g errgroup.Group
	g.Go(func() error { return mid.AwaitTreeReady(ctx) })
	g.Go(func() error { return leaf.AwaitTreeReady(ctx) })
	require.Eventually(t, func() bool { return mid.Node().Stats().ReadyHeld == 1 }, 30*time.Second, time.Millisecond,
		"rank 1 holds rank 3's probe")
	time.Sleep(5 * time.Duration(s.HeartbeatTimeoutMs) * time.Millisecond)
	assert.EqualValues(t, 1, mid.Node().Stats().ReadyHeld, "the probe is still held")
	start(0)
	require.NoError(t, g.Wait())
	assert.EqualValues(t, 1, leaf.Node().Stats().ReadyProbes, "rank 3's probes")
	assert.Zero(t, leaf.Node().Stats().Failovers, "rank 3 took its held parent for a hung one")
}
