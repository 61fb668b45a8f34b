package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLargeFileParentKilledMidStream streams a large file (chunked
// through the tree) on rank 3 of 0 → 1,2; 1 → 3, kills its parent
// (SIGKILL) halfway, and reads the rest: rank 3 fails over to the root
// and every byte is right.
func TestLargeFileParentKilledMidStream(t *testing.T) {
	src := t.TempDir()
	data := make([]byte, 24<<20+13)
	for i := range data {
		data[i] = byte(i/4096) ^ byte(i%251)
	}
	require.NoError(t, os.WriteFile(filepath.Join(src, "lib.so"), data, 0o644))
	c := newCluster(t, clusterConfig{nodes: 4, fanout: 2, target: src, flags: []string{
		"--large-files", "chunked", "--chunk-bytes", "1048576", "--readahead-chunks", "2",
		"--spill-dir", filepath.Join(t.TempDir(), "spill"), "--max-readahead-bytes", "131072",
		"--rpc-timeout-s", "30", "--heartbeat-timeout-ms", "1000",
	}})
	nodes := c.startAll()

	f, err := os.Open(filepath.Join(c.mount(3), "lib.so"))
	require.NoError(t, err)
	defer f.Close()
	half := len(data) / 2
	buf := make([]byte, half)
	require.NoError(t, within(t, fsTimeout, "read the first half", func() error {
		_, err := f.ReadAt(buf, 0)
		return err
	}))
	require.True(t, bytes.Equal(data[:half], buf), "the first half")

	require.NoError(t, syscall.Kill(nodes[1].pid, syscall.SIGKILL))
	require.True(t, c.waitGone(nodes[1].pid, 10*time.Second), "rank 1 still alive after SIGKILL")

	rest := make([]byte, len(data)-half)
	require.NoError(t, within(t, failoverBound, "read the rest with the parent dead", func() error {
		_, err := f.ReadAt(rest, int64(half))
		return err
	}))
	require.True(t, bytes.Equal(data[half:], rest), "the second half, through the root")
	st := c.stats(3)
	assert.EqualValues(t, 1, st.Node.Failovers, "rank 3 left its dead parent")
	assert.Contains(t, st.Upstream, "rank 0")
}
