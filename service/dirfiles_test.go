package service_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// Small files ride with their directory's dirplus (dir_files_max_bytes):
// through a leaf mount, the first read of each needs no request to the
// parent (the leaf's own counters), the bytes are the source's, the root
// reads each once for the whole tree, and a file over the limit is not
// shipped (its read is a request of its own).
func TestMountSmallFilesRideWithTheirDirectory(t *testing.T) {
	src := t.TempDir()
	const limit = 16 << 10
	want := map[string][]byte{}
	for i := range 12 {
		name := fmt.Sprintf("m%02d.pyc", i)
		want[name] = bytes.Repeat([]byte{byte('a' + i)}, 100+i*1000)
	}
	want["edge.bin"] = bytes.Repeat([]byte{'e'}, limit)
	want["empty.py"] = []byte{}
	big := bytes.Repeat([]byte{'B'}, limit+1)
	require.NoError(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	for name, data := range want {
		require.NoError(t, os.WriteFile(filepath.Join(src, "d", name), data, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(src, "d", "big.so"), big, 0o644))
	s := clusterSettings(t, src)
	s.Fanout = 2 // 0 → 1, 2; 1 → 3, 4
	s.DirFilesMaxBytes = limit
	c, mounts := startMountedCluster(t, s, 5)
	leaf, other := 3, 4
	root := c.nodes[0].Node()

	// The directory, cold: one dirplus.
	require.NoError(t, within(t, "stat", func() error { _, err := os.Stat(filepath.Join(mounts[leaf], "d", "m00.pyc")); return err }))
	before := opCounts(c.nodes[leaf].Node().Stats(), fwdOf)
	for name, data := range want {
		var got []byte
		require.NoError(t, within(t, "read "+name, func() (err error) { got, err = os.ReadFile(filepath.Join(mounts[leaf], "d", name)); return err }))
		assert.Equal(t, data, got, name)
	}
	assert.Empty(t, delta(before, opCounts(c.nodes[leaf].Node().Stats(), fwdOf)), "no request for a file that came with its directory")
	st := c.nodes[leaf].Node().Stats().Cache.DirFiles
	assert.EqualValues(t, len(want)-1, st.Read, "every small file read from what came with the listing (the kernel reads nothing of empty.py)")
	assert.EqualValues(t, st.Stored, st.Read+st.Unread)

	var got []byte
	require.NoError(t, within(t, "read big.so", func() (err error) { got, err = os.ReadFile(filepath.Join(mounts[leaf], "d", "big.so")); return err }))
	assert.Equal(t, big, got)
	assert.Equal(t, map[op.Op]int64{op.Read: 1}, delta(before, opCounts(c.nodes[leaf].Node().Stats(), fwdOf)), "a file over the limit is read on its own")

	// The other leaf under rank 1: the files come from rank 1's cache, the
	// root reads none again.
	rootReads := root.Stats().Op(op.Read).BackendOps
	for name, data := range want {
		require.NoError(t, within(t, "read "+name, func() (err error) { got, err = os.ReadFile(filepath.Join(mounts[other], "d", name)); return err }))
		assert.Equal(t, data, got, name)
	}
	assert.Equal(t, rootReads, root.Stats().Op(op.Read).BackendOps, "each file read once per tree")
	assert.EqualValues(t, len(want)+1, rootReads, "the shipped files and big.so")
}

// A file rewritten after its directory travelled is served as the
// version the view's stat shows, whole: never bytes of another version
// under that stat, never a mix.
func TestMountShippedFileNeverStaleOrTorn(t *testing.T) {
	src := t.TempDir()
	p := filepath.Join(src, "d", "f.py")
	old, updated := bytes.Repeat([]byte{'o'}, 3000), bytes.Repeat([]byte{'n'}, 5000)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, old, 0o644))
	s := clusterSettings(t, src)
	s.Fanout = 2
	s.DirFilesMaxBytes = 16 << 10
	_, mounts := startMountedCluster(t, s, 4)
	// Rank 3 fetches d (through 1), then the file changes, then rank 2
	// fetches d: the root's cache answers, the snapshot rank 3 has too.
	fi, err := os.Stat(filepath.Join(mounts[3], "d", "f.py"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, updated, 0o644))
	for _, r := range []int{3, 2} {
		var got []byte
		require.NoError(t, within(t, "read", func() (err error) { got, err = os.ReadFile(filepath.Join(mounts[r], "d", "f.py")); return err }))
		st, err := os.Stat(filepath.Join(mounts[r], "d", "f.py"))
		require.NoError(t, err)
		assert.EqualValues(t, st.Size(), len(got), "rank %d: bytes and stat of one version", r)
		assert.True(t, bytes.Equal(got, old) || bytes.Equal(got, updated), "rank %d: one whole version", r)
		assert.Equal(t, fi.Size(), st.Size(), "rank %d: the tree's snapshot", r)
	}
}

// A directory listed through a leaf mount (READDIRPLUS) hands the kernel
// the small files that came with it: reading them afterwards reaches the
// node zero times (no FUSE READ or LOOKUP, no Read of its cache), and
// the bytes are the source's.
func TestMountListedSmallFilesNeverReachTheNode(t *testing.T) {
	src := t.TempDir()
	want := map[string][]byte{}
	for i := range 20 {
		want[fmt.Sprintf("m%02d.pyc", i)] = bytes.Repeat([]byte{byte('a' + i)}, 100+i*700)
	}
	require.NoError(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	for name, data := range want {
		require.NoError(t, os.WriteFile(filepath.Join(src, "d", name), data, 0o644))
	}
	s := clusterSettings(t, src)
	s.DirFilesMaxBytes = 16 << 10
	c, mounts := startMountedCluster(t, s, 3)
	leaf := c.nodes[2]

	require.NoError(t, within(t, "list", func() error { _, err := os.ReadDir(filepath.Join(mounts[2], "d")); return err }))
	deadline := time.Now().Add(20 * time.Second)
	for leaf.KernelPushes().Pushed < uint64(len(want)) {
		require.True(t, time.Now().Before(deadline), "pushes %+v, want %d", leaf.KernelPushes(), len(want))
		time.Sleep(5 * time.Millisecond)
	}
	calls := func() map[string]int64 {
		m := map[string]int64{}
		for _, r := range leaf.Profile().Ops() {
			m[r.Op] = r.Calls
		}
		return m
	}
	before, reads := calls(), leaf.Node().Stats().Op(op.Read)
	for name, data := range want {
		var got []byte
		require.NoError(t, within(t, "read "+name, func() (err error) { got, err = os.ReadFile(filepath.Join(mounts[2], "d", name)); return err }))
		assert.Equal(t, data, got, name)
	}
	after := calls()
	assert.Equal(t, before[op.FuseRead], after[op.FuseRead], "FUSE READs")
	assert.Equal(t, before[op.FuseLookup], after[op.FuseLookup], "FUSE LOOKUPs")
	assert.Equal(t, reads, leaf.Node().Stats().Op(op.Read), "the node's reads")
}
