package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failoverBound bounds a read through a tree with a dead or hung node: a
// correctness check that failover, not rpc_timeout_s (30 s here), ended
// the wait. It is no speed target.
const failoverBound = 15 * time.Second

// backendOps sums the backend operations of every op.
func (s status) backendOps() int64 {
	var n int64
	for _, o := range s.Node.Ops {
		n += o.BackendOps
	}
	return n
}

// walkWithin walks rank's mount in a child process bounded by d.
func (c *cluster) walkWithin(rank int, d time.Duration) (manifest, error) {
	self, err := os.Executable()
	require.NoError(c.t, err)
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), walkEnv+"="+c.mount(rank))
	r, err := runBounded(cmd, d)
	if err != nil {
		return nil, err
	}
	if r.code != 0 {
		return nil, fmt.Errorf("walk of rank %d: %s", rank, r)
	}
	var m manifest
	return m, json.Unmarshal([]byte(r.stdout), &m)
}

// TestHungParentFailsOverFast stops (SIGSTOP) rank 1 of 0 → 1,2; 1 → 3:
// rank 3's cold reads must be answered through the root by heartbeat
// failover, well before rpc_timeout_s, and the switch must be counted.
func TestHungParentFailsOverFast(t *testing.T) {
	src, want := makeFixture(t)
	c := newCluster(t, clusterConfig{nodes: 4, fanout: 2, target: src,
		flags: []string{"--rpc-timeout-s", "30", "--heartbeat-timeout-ms", "1000"}})
	nodes := c.startAll()

	pid := nodes[1].pid
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // before the cluster's stop

	got, err := c.walkWithin(3, failoverBound)
	require.NoError(t, err, "rank 3's mount while its parent is stopped")
	requireSameTree(t, "rank 3's mount with its parent stopped", want, got)

	st := c.stats(3)
	assert.EqualValues(t, 1, st.Node.Failovers, "the heartbeat-driven switch is counted")
	assert.Zero(t, st.Node.ForwardErrors)
	assert.Contains(t, st.Upstream, "rank 0", "rank 3 now asks the root")
	require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
}

// TestRootKilledSuccessorServes kills the root (SIGKILL) of 0 → 1,2;
// 1 → 3 before anything is read: ranks 2 and 3 still serve the whole
// tree, and only rank 1, the successor root, reads the filesystem.
func TestRootKilledSuccessorServes(t *testing.T) {
	src, want := makeFixture(t)
	c := newCluster(t, clusterConfig{nodes: 4, fanout: 2, target: src, flags: []string{"--rpc-timeout-s", "30"}})
	nodes := c.startAll()

	require.NoError(t, syscall.Kill(nodes[0].pid, syscall.SIGKILL))
	require.True(t, c.waitGone(nodes[0].pid, 10*time.Second), "root still alive after SIGKILL")

	for _, rank := range []int{2, 3} {
		got, err := c.walkWithin(rank, failoverBound)
		require.NoError(t, err, "rank %d's mount with the root dead", rank)
		requireSameTree(t, fmt.Sprintf("rank %d's mount with the root dead", rank), want, got)
	}
	succ, two, three := c.stats(1), c.stats(2), c.stats(3)
	assert.Positive(t, succ.backendOps(), "the successor reads the filesystem")
	assert.Zero(t, two.backendOps(), "rank 2 goes through the successor")
	assert.Zero(t, three.backendOps(), "rank 3 goes through its parent, the successor")
	assert.EqualValues(t, 1, succ.Node.Failovers, "successor: root → own backend")
	assert.EqualValues(t, 1, two.Node.Failovers, "rank 2: root → successor")
	assert.Zero(t, three.Node.Failovers)
	assert.Zero(t, two.Node.ForwardErrors+three.Node.ForwardErrors)
	assert.Contains(t, two.Upstream, "rank 1")
	// The dead root's own mount is dead (ENOTCONN) by design; the
	// scratch cleanup detaches it.
}
