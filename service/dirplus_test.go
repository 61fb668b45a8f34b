package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/service"
)

// opCounts is one counter of every operation of a node's stats.
func opCounts(st node.Stats, counter func(node.OpStats) int64) map[op.Op]int64 {
	out := map[op.Op]int64{}
	for _, o := range op.All[1:] {
		out[o] = counter(st.Op(o))
	}
	return out
}

func fwdOf(st node.OpStats) int64     { return st.Forwarded }
func backendOf(st node.OpStats) int64 { return st.BackendOps }

// delta is after - before, per operation, without the zeros.
func delta(before, after map[op.Op]int64) map[op.Op]int64 {
	out := map[op.Op]int64{}
	for o, n := range after {
		if d := n - before[o]; d != 0 {
			out[o] = d
		}
	}
	return out
}

// writeDir makes dir under root with the given files (small) and links.
func writeDir(t *testing.T, root, dir string, files, links []string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(root, dir), 0o755))
	for _, f := range files {
		require.NoError(t, os.WriteFile(filepath.Join(root, dir, f), []byte("content of "+f+"\n"), 0o644))
	}
	for _, l := range links {
		require.NoError(t, os.Symlink("target-of-"+l, filepath.Join(root, dir, l)))
	}
}

// A directory listed once (a readdir on a leaf) answers every later
// getattr and readlink of its entries, and any name it lacks, on that leaf
// with no request to its parent, and the root stats each entry once: with
// the same attributes a getattr gives. The ENOENTs need no TTL (it is off).
func TestClusterListedDirectoryAnswersLocally(t *testing.T) {
	src := t.TempDir()
	files := []string{"__init__.py", "a.py", "b.py", "c.cpython-312-x86_64-linux-gnu.so", "data.json"}
	writeDir(t, src, "pkg", files, []string{"lib", "alias.py"})
	require.NoError(t, os.Mkdir(filepath.Join(src, "pkg", "sub"), 0o755))
	s := clusterSettings(t, src)
	s.Fanout = 2
	s.MdEnoentTTLMs = 0 // no negative TTL: absent names come from the listing alone
	c := startReadyCluster(t, s, 7)
	leaf, mid, root := c.nodes[6].Node(), c.nodes[2].Node(), c.nodes[0].Node() // 0 → 2 → 6
	ctx := t.Context()

	// "/" first, so that the counts below are those of /pkg alone.
	require.True(t, leaf.Get(ctx, op.Getattr, "/pkg").OK())
	leafBefore, midBefore := opCounts(leaf.Stats(), fwdOf), opCounts(mid.Stats(), fwdOf)
	rootBefore := opCounts(root.Stats(), backendOf)

	r := leaf.Get(ctx, op.Readdir, "/pkg")
	require.True(t, r.OK())
	names := make([]string, len(r.Entries))
	for i, e := range r.Entries {
		names[i] = e.Name
	}
	assert.Equal(t, []string{"__init__.py", "a.py", "alias.py", "b.py", "c.cpython-312-x86_64-linux-gnu.so", "data.json", "lib", "sub"}, names)
	assert.Equal(t, map[op.Op]int64{op.DirPlus: 1}, delta(leafBefore, opCounts(leaf.Stats(), fwdOf)), "leaf: one dirplus")
	assert.Equal(t, map[op.Op]int64{op.DirPlus: 1}, delta(midBefore, opCounts(mid.Stats(), fwdOf)), "mid: one dirplus")
	assert.Equal(t, map[op.Op]int64{op.DirPlus: 1, op.Getattr: 8, op.Readlink: 2},
		delta(rootBefore, opCounts(root.Stats(), backendOf)), "root: one getdents, a stat per entry, a readlink per link")

	be, err := backend.New(backend.Config{Target: src, Parallel: 1, MaxCacheable: 1 << 20})
	require.NoError(t, err)
	defer be.Close()
	leafListed := opCounts(leaf.Stats(), fwdOf)
	rootListed := opCounts(root.Stats(), backendOf)
	servesBefore := leaf.Stats().Cache.ListingServes
	tests := []struct {
		name string
		o    op.Op
		path string
	}{
		{"getattr of a file", op.Getattr, "/pkg/a.py"},
		{"getattr of a directory", op.Getattr, "/pkg/sub"},
		{"getattr of a link", op.Getattr, "/pkg/lib"},
		{"readlink", op.Readlink, "/pkg/lib"},
		{"readlink of a .py link", op.Readlink, "/pkg/alias.py"},
		{"absent module", op.Getattr, "/pkg/missing.py"},
		{"absent extension", op.Getattr, "/pkg/a.cpython-312-x86_64-linux-gnu.so"},
		{"absent package", op.Getattr, "/pkg/__pycache__"},
		{"read of an absent name", op.Read, "/pkg/nothing.py"},
		{"readlink of an absent name", op.Readlink, "/pkg/nolink"},
		{"readdir of an absent name", op.Readdir, "/pkg/nodir"},
	}
	var absent uint64
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := be.Do(ctx, tc.o, tc.path)
			got := leaf.Get(ctx, tc.o, tc.path)
			assert.Empty(t, resultDiff(want, got), "the same answer as the source's own %v", tc.o)
			if want.Errno == syscall.ENOENT {
				absent++
			}
		})
	}
	assert.Empty(t, delta(leafListed, opCounts(leaf.Stats(), fwdOf)), "leaf requests after the listing")
	assert.Empty(t, delta(rootListed, opCounts(root.Stats(), backendOf)), "root file system operations after the listing")
	assert.Equal(t, absent, leaf.Stats().Cache.ListingServes-servesBefore, "every ENOENT from the listing")
	assert.Zero(t, leaf.Stats().Cache.NegativeStores, "and none from the TTL table")
}

// A cold getattr storm on one directory, every name on every node at
// once, fetches the directory once per node: one dirplus forwarded by each
// non-root node, one getdents at the root, each entry stat'ed once.
func TestClusterDirPlusCoalesces(t *testing.T) {
	src := t.TempDir()
	var files []string
	for i := range 40 {
		files = append(files, fmt.Sprintf("m%02d.py", i))
	}
	writeDir(t, src, "d", files, nil)
	s := clusterSettings(t, src)
	s.Fanout = 2
	c := startReadyCluster(t, s, 15)
	ctx := t.Context()
	for _, svc := range c.nodes {
		require.True(t, svc.Node().Get(ctx, op.Getattr, "/d").OK()) // "/" out of the way
	}
	before := make([]map[op.Op]int64, len(c.nodes))
	for r, svc := range c.nodes {
		before[r] = opCounts(svc.Node().Stats(), fwdOf)
	}
	rootBefore := opCounts(c.nodes[0].Node().Stats(), backendOf)

	var wg sync.WaitGroup
	var bad sync.Map
	for r, svc := range c.nodes {
		for _, name := range append(slices.Clone(files), "absent.py", "absent.so") {
			wg.Go(func() {
				got := svc.Node().Get(ctx, op.Getattr, "/d/"+name)
				if strings.HasPrefix(name, "absent") != (got.Errno == syscall.ENOENT) || (got.Errno != 0 && got.Errno != syscall.ENOENT) {
					bad.Store(fmt.Sprintf("rank %d %s", r, name), got.Errno)
				}
			})
		}
	}
	wg.Wait()
	bad.Range(func(k, v any) bool { t.Errorf("%s: errno %v", k, v); return true })
	for r, svc := range c.nodes[1:] {
		assert.Equal(t, map[op.Op]int64{op.DirPlus: 1}, delta(before[r+1], opCounts(svc.Node().Stats(), fwdOf)), "rank %d", r+1)
	}
	assert.Equal(t, map[op.Op]int64{op.DirPlus: 1, op.Getattr: 40}, delta(rootBefore, opCounts(c.nodes[0].Node().Stats(), backendOf)))
}

// A directory whose dirplus is larger than a frame travels in pages
// (dirplus_next), asked by each hop on the way, and arrives whole.
func TestClusterDirPlusPages(t *testing.T) {
	src := t.TempDir()
	const n = 1000
	var files []string
	for i := range n {
		files = append(files, fmt.Sprintf("%04d-%s.py", i, strings.Repeat("x", 120)))
	}
	writeDir(t, src, "big", files, nil)
	s := clusterSettings(t, src)
	s.Fanout = 2
	s.MaxCacheableBytes = 32 << 10
	s.MaxFrameBytes = 64 << 10 // pages of at most 64 KiB: about 300 of these entries
	s.LargeFiles = "direct"    // a chunk could not fit such a frame
	c := startReadyCluster(t, s, 7)
	leaf, mid := c.nodes[6].Node(), c.nodes[2].Node()
	ctx := t.Context()

	r := leaf.Get(ctx, op.Readdir, "/big")
	require.True(t, r.OK(), "%v", r.Errno)
	require.Len(t, r.Entries, n)
	for i, e := range r.Entries {
		require.Equal(t, files[i], e.Name)
	}
	got := leaf.Get(ctx, op.Getattr, "/big/"+files[n-1])
	require.True(t, got.OK())
	assert.EqualValues(t, len("content of "+files[n-1]+"\n"), got.Attr.Size)

	// Each hop asked one dirplus, continued by dirplus_next pages that
	// its parent answered from its own copy of the whole listing.
	assert.EqualValues(t, 1, leaf.Stats().Op(op.DirPlus).Forwarded)
	assert.EqualValues(t, 1, mid.Stats().Op(op.DirPlus).Forwarded)
	pages := mid.Stats().Op(op.DirPlusNext)
	assert.GreaterOrEqual(t, pages.Hits, int64(3), "mid served the leaf at least 4 pages")
	assert.Zero(t, pages.Misses, "from the listing it holds")
	assert.Equal(t, pages.Hits, c.nodes[0].Node().Stats().Op(op.DirPlusNext).Hits, "the root served mid as many")
	assert.EqualValues(t, 1, c.nodes[0].Node().Stats().Op(op.DirPlus).BackendOps)
}

// mountedCluster starts n mounted nodes (each Start returns once its node
// is tree-ready and mounted, so parents first) and stops them at cleanup.
func startMountedCluster(t *testing.T, s config.Settings, n int) (*cluster, []string) {
	t.Helper()
	testkit.RequireFuse(t)
	dir := t.TempDir()
	s.Mount = filepath.Join(dir, "m{rank}")
	book := loopbackBook(t, n)
	c := &cluster{nodes: make([]*service.Service, n), logs: &testkit.SyncBuffer{}}
	logger := slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for r := len(c.nodes) - 1; r >= 0; r-- {
			if c.nodes[r] != nil {
				assert.NoError(t, c.nodes[r].Stop(ctx))
			}
		}
		if err := testkit.DetachMountsUnder(dir); err != nil {
			t.Errorf("after stop: %v", err)
		}
		if t.Failed() {
			t.Logf("node logs (warn and above):\n%s", c.logs.String())
		}
	})
	mounts := make([]string, n)
	for r := range n {
		svc, err := service.Start(t.Context(), s, service.Identity{Rank: r, Book: book, Token: []byte("dirplus-mount-secret")},
			service.Options{Mount: true, Logger: logger})
		require.NoError(t, err, "start rank %d", r)
		c.nodes[r] = svc
		mounts[r] = filepath.Join(dir, fmt.Sprintf("m%d", r))
	}
	return c, mounts
}

// `ls -l` of a cold directory on a leaf mount is one dirplus per hop:
// the listing and every entry's attributes and link text in one request,
// the lstats of ls answered on the leaf.
func TestMountLsLColdDirectoryIsOneDirPlusPerHop(t *testing.T) {
	src := t.TempDir()
	var files []string
	for i := range 30 {
		files = append(files, fmt.Sprintf("f%02d.txt", i))
	}
	writeDir(t, src, "d", files, []string{"l1", "l2"})
	s := clusterSettings(t, src)
	s.Fanout = 2 // 0 → 1, 2; 1 → 3
	c, mounts := startMountedCluster(t, s, 4)
	hops := []int{3, 1} // the leaf, its parent; then the root
	leaf := mounts[3]

	require.NoError(t, within(t, "stat d", func() error { _, err := os.Stat(filepath.Join(leaf, "d")); return err }))
	before := make([]map[op.Op]int64, len(c.nodes))
	for r, svc := range c.nodes {
		before[r] = opCounts(svc.Node().Stats(), fwdOf)
	}
	rootBefore := opCounts(c.nodes[0].Node().Stats(), backendOf)

	var out []byte
	require.NoError(t, within(t, "ls -l", func() (err error) {
		out, err = exec.Command("ls", "-l", filepath.Join(leaf, "d")).CombinedOutput()
		return err
	}), "%s", out)
	for _, f := range append(files, "l1 -> target-of-l1", "l2 -> target-of-l2") {
		assert.Contains(t, string(out), f)
	}
	for _, r := range hops {
		assert.Equal(t, map[op.Op]int64{op.DirPlus: 1}, delta(before[r], opCounts(c.nodes[r].Node().Stats(), fwdOf)),
			"rank %d: one request for ls -l", r)
	}
	assert.Equal(t, map[op.Op]int64{op.DirPlus: 1, op.Getattr: 32, op.Readlink: 2},
		delta(rootBefore, opCounts(c.nodes[0].Node().Stats(), backendOf)))
}

// Python imports a small package tree through a leaf mount: the probes of
// absent names (extension suffixes, __pycache__) are answered on the leaf
// from the listings; only directories travel, the module bytes with them.
func TestMountPythonImportThroughLeaf(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s: %v: install the test dependencies with `make test` or scripts/setup-test-deps.sh", python, err)
	}
	src := t.TempDir()
	writeDir(t, src, "pkgs/mypkg/sub", nil, nil)
	for p, text := range map[string]string{
		"pkgs/mypkg/__init__.py":     "from . import a\nfrom .sub import b\nVALUE = a.X + b.Y\n",
		"pkgs/mypkg/a.py":            "X = 40\n",
		"pkgs/mypkg/sub/__init__.py": "",
		"pkgs/mypkg/sub/b.py":        "Y = 2\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(src, p), []byte(text), 0o644))
	}
	s := clusterSettings(t, src)
	s.Fanout = 2
	s.DirFilesMaxBytes = config.Default().DirFilesMaxBytes // the modules ride with their directories
	c, mounts := startMountedCluster(t, s, 4)
	const leaf = 3 // → 1 → 0
	leafBefore := opCounts(c.nodes[leaf].Node().Stats(), fwdOf)

	var out []byte
	require.NoError(t, within(t, "python import", func() (err error) {
		cmd := exec.Command(python, "-B", "-c", "import mypkg; print(mypkg.VALUE, mypkg.__file__)")
		cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(mounts[leaf], "pkgs"), "PYTHONDONTWRITEBYTECODE=1")
		out, err = cmd.CombinedOutput()
		return err
	}), "%s", out)
	assert.Equal(t, "42 "+filepath.Join(mounts[leaf], "pkgs/mypkg/__init__.py")+"\n", string(out))

	d := delta(leafBefore, opCounts(c.nodes[leaf].Node().Stats(), fwdOf))
	assert.Zero(t, d[op.Getattr], "no name looked up on its own")
	assert.Zero(t, d[op.Readdir])
	assert.LessOrEqual(t, d[op.DirPlus], int64(4), "at most one per directory: /, pkgs, mypkg, sub")
	assert.Zero(t, d[op.Read], "the modules' bytes came with their directories")
	// and reached the kernel from there: read from the leaf's cache, or
	// pushed into the kernel's page cache when Python listed their
	// directory (sub/__init__.py is empty: nothing to read or push).
	read, pushed := c.nodes[leaf].Node().Stats().Cache.DirFiles.Read, c.nodes[leaf].KernelPushes()
	assert.GreaterOrEqual(t, read+pushed.Pushed, uint64(3), "read %d, pushes %+v", read, pushed)
}
