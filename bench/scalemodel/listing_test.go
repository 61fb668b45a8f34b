package scalemodel

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bench/pfsbench"
	"github.com/hpc-copper/copper/bench/replay"
	"github.com/hpc-copper/copper/config"
)

// pkgWorkload is a package as Python imports it: /pkg is listed
// (getdents), its module read by name; /pkg/__pycache__ is never listed,
// its .pyc looked up and read by name; big.so is over dir_files.
func pkgWorkload() *Workload {
	return &Workload{
		Trace: "pkg",
		Ops: []replay.Op{
			{Kind: replay.Open, Path: "/pkg", FD: 3, Flags: 0o200000},
			{Kind: replay.Getdents, Path: "/pkg", FD: 3},
			{Kind: replay.Close, Path: "/pkg", FD: 3},
			{Kind: replay.Stat, Path: "/pkg/mod.py"},
			{Kind: replay.Open, Path: "/pkg/__pycache__/mod.pyc", FD: 4},
			{Kind: replay.Read, Path: "/pkg/__pycache__/mod.pyc", FD: 4},
			{Kind: replay.Close, Path: "/pkg/__pycache__/mod.pyc", FD: 4},
			{Kind: replay.Open, Path: "/pkg/big.so", FD: 5},
			{Kind: replay.Read, Path: "/pkg/big.so", FD: 5},
			{Kind: replay.Open, Path: "/pkg/small.py", FD: 6},
			{Kind: replay.Read, Path: "/pkg/small.py", FD: 6},
			{Kind: replay.Open, Path: "/pkg/__init__.py", FD: 7},
			{Kind: replay.Read, Path: "/pkg/__init__.py", FD: 7},
		},
		Dirs: map[string][]Entry{
			"/":                {{Name: "pkg", Dir: true}},
			"/pkg":             {{Name: "__init__.py"}, {Name: "__pycache__", Dir: true}, {Name: "big.so", Size: 200 << 10}, {Name: "mod.py", Size: 3000}, {Name: "small.py", Size: 100}},
			"/pkg/__pycache__": {{Name: "mod.pyc", Size: 2000}, {Name: "other.pyc", Size: 500}},
		},
	}
}

func listingCal(w *Workload) *Calibration {
	c := toyCal(w)
	c.DirFiles, c.ReaddirplusPerListing = 64<<10, 2
	return c
}

// One node's FUSE requests, counted without the simulation and by it.
func TestListingFuseRequests(t *testing.T) {
	want := map[string]int{
		// /pkg's walk and the .pyc (__pycache__ is never listed);
		// nothing else: /pkg's listing made __pycache__, mod.py, big.so
		// and small.py dentries.
		fuseLookup:      2,
		fuseReaddirplus: 2,
		// big.so (200 KiB: two chunks, over dir_files, not pushed); the
		// .pyc, shipped with __pycache__'s dirplus but never listed.
		fuseRead: 3,
		// mod.py and small.py (big.so is not shipped; the empty
		// __init__.py has nothing to push, and its read asks nothing).
		fusePush: 2,
	}
	c := listingCal(pkgWorkload())
	nf := c.nodeFuse()
	assert.Equal(t, want, nf.ops)
	assert.Equal(t, int64(200<<10+2000+3000+100), nf.bytes, "read and pushed bytes")
	for _, n := range []int{1, 4} {
		r, err := Run(c, Scenario{Mode: ModeCopper, Nodes: n, Procs: 3, Host: true})
		require.NoError(t, err)
		got := map[string]int{}
		for op, v := range r.FusePerNode {
			got[op] = int(v)
		}
		assert.Equal(t, want, got, "N=%d: the simulation's requests per node", n)
	}
}

// The root reads each shipped file once per tree, at any N: its
// directory's dirplus opens and reads it, and no one's READ reaches the
// root for it.
func TestShippedFilesReadOncePerTree(t *testing.T) {
	c := listingCal(pkgWorkload())
	for _, n := range []int{1, 8} {
		r, err := Run(c, Scenario{Mode: ModeCopper, Nodes: n, Procs: 2, Host: true})
		require.NoError(t, err)
		// Shipped: __init__.py, mod.py, small.py (/pkg), mod.pyc,
		// other.pyc (__pycache__); big.so is opened on its own read.
		assert.Equal(t, int64(6), r.OpsByKind["open"], "N=%d", n)
		assert.Equal(t, int64(200<<10+3000+100+2000+500), r.DataBytes, "N=%d", n)
		assert.InDelta(t, 1.0, r.FetchesPerKey, 1e-9, "N=%d", n)
	}
}

// A calibration from before READDIRPLUS and shipping keeps the old
// structure: READDIR per listing, a LOOKUP per name, a READ per file.
func TestListingOldCopper(t *testing.T) {
	c := toyCal(pkgWorkload())
	nf := c.nodeFuse()
	assert.Equal(t, map[string]int{fuseLookup: 7, fuseReaddir: 1, fuseRead: 5}, nf.ops)
}

func TestShippedBudget(t *testing.T) {
	w := &Workload{Dirs: map[string][]Entry{"/d": {
		{Name: "a", Size: 3 << 20}, {Name: "b", Size: 2 << 20}, {Name: "c", Size: 1 << 20}, {Name: "l", Link: true}, {Name: "s", Dir: true},
	}}}
	c := &Calibration{Workload: w, DirFiles: 4 << 20, MaxCacheable: 10 << 20}
	files, bytes := c.shipped("/d")
	var names []string
	for _, e := range files {
		names = append(names, e.Name)
	}
	assert.Equal(t, []string{"a", "c"}, names, "b does not fit what a left of 4 MiB; c does")
	assert.Equal(t, int64(4<<20), bytes)
	c.MaxCacheable = 2 << 20
	files, _ = c.shipped("/d")
	assert.Len(t, files, 2, "capped by max_cacheable_bytes: b and c")
}

// A file looked up before its directory is listed already has an inode:
// the listing does not push it (only new inodes are), so its read READs.
func TestListingPushesNewInodesOnly(t *testing.T) {
	w := &Workload{
		Trace: "late listing",
		Ops: []replay.Op{
			{Kind: replay.Stat, Path: "/d/a.py"},
			{Kind: replay.Open, Path: "/d", FD: 3, Flags: 0o200000},
			{Kind: replay.Getdents, Path: "/d", FD: 3},
			{Kind: replay.Open, Path: "/d/a.py", FD: 4},
			{Kind: replay.Read, Path: "/d/a.py", FD: 4},
			{Kind: replay.Open, Path: "/d/b.py", FD: 5},
			{Kind: replay.Read, Path: "/d/b.py", FD: 5},
		},
		Dirs: map[string][]Entry{"/": {{Name: "d", Dir: true}}, "/d": {{Name: "a.py", Size: 10}, {Name: "b.py", Size: 20}}},
	}
	c := listingCal(w)
	want := map[string]int{fuseLookup: 2, fuseReaddirplus: 2, fuseRead: 1, fusePush: 1}
	assert.Equal(t, want, c.nodeFuse().ops)
	r, err := Run(c, Scenario{Mode: ModeCopper, Nodes: 2, Procs: 1, Host: true})
	require.NoError(t, err)
	got := map[string]int{}
	for name, v := range r.FusePerNode {
		got[name] = int(v)
	}
	assert.Equal(t, want, got)
}

// The listing's structure comes from the measured copper: READDIRPLUS
// requests over the directories the trace lists, on the N=1 cold row.
func TestFitListing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls []pfsbench.NodeCalls
		want  float64
	}{
		{"counted", []pfsbench.NodeCalls{{Fuse: map[string]int64{"readdir": 6, "lookup": 40}, Pushed: 3}}, 6},
		{"no counts: the older copper", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := toyCal(pkgWorkload()) // lists one directory, /pkg
			c.Sources = map[string]string{}
			c.fitListing(&pfsbench.Row{NodeCalls: tc.calls})
			assert.InDelta(t, tc.want, c.ReaddirplusPerListing, 1e-9)
			assert.Equal(t, config.Default().DirFilesMaxBytes, c.DirFiles)
			assert.NotEmpty(t, c.Sources["dir_files_max_bytes"])
		})
	}
}
