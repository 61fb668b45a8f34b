package scalemodel

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bench/replay"
)

// toy is a one-file tree: /a.py (1,000 bytes) and /b.py, and a trace
// that stats, opens, reads and closes /a.py.
func toyWorkload() *Workload {
	return &Workload{
		Trace: "toy",
		Ops: []replay.Op{
			{Kind: replay.Stat, Path: "/a.py"},
			{Kind: replay.Open, Path: "/a.py", FD: 3},
			{Kind: replay.Read, Path: "/a.py", FD: 3, Size: 4096},
			{Kind: replay.Close, Path: "/a.py", FD: 3},
		},
		Dirs: map[string][]Entry{"/": {{Name: "a.py", Size: 1000}, {Name: "b.py", Size: 10}}},
	}
}

// toyCal charges 1 ms per traced syscall and 10 ms per metadata
// operation on one slot, and nothing else.
func toyCal(w *Workload) *Calibration {
	srv := Server{MetadataService: 0.010, Slots: 1, MDTs: 1, Bandwidth: 1e18, EntriesPerPage: 128}
	return &Calibration{
		HostCores: 1, HostAvailable: 1, Procs: 1,
		Costs:    Costs{ClientOpNative: 0.001, ClientOpMount: 0.001},
		Emulator: srv, Reference: srv,
		Machine:      Machine{DaemonCores: 1, NICBandwidth: 1e18},
		MaxCacheable: 10 << 20, BackendParallel: 64,
		Workload: w,
	}
}

func TestSingleNodeAnalytic(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mode       string
		host       bool
		cold, warm float64
		meta       int64
		why        string
	}{
		// 4 syscalls (4 ms); lookup of /a.py = dirplus of "/": opendir,
		// one readdir page, a stat of each of the 2 entries on parallel
		// slots (one slot: 20 ms) = 40 ms; the read: open 10 ms.
		{"copper", ModeCopper, false, 0.004 + 0.040 + 0.010, 0.004, 5, "dirplus of / then the file"},
		// lookup 10 ms, open 10 ms (release is free), read: bandwidth only.
		{"direct", ModeDirect, false, 0.004 + 0.020, 0.004 + 0.010, 2, "every open reaches the server"},
		{"staging run", ModeStaging, false, 0.004, 0.004, 0, "local disk"},
		{"copper on the host", ModeCopper, true, 0.004 + 0.040 + 0.010, 0.004, 5, "one core, nothing else running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := toyWorkload()
			r, err := Run(toyCal(w), Scenario{Mode: tc.mode, Nodes: 1, Procs: 1, Host: tc.host})
			require.NoError(t, err)
			assert.InDelta(t, tc.cold, r.ColdS, 1e-9, tc.why)
			assert.InDelta(t, tc.warm, r.WarmS, 1e-9, tc.why)
			if tc.mode != ModeStaging {
				assert.Equal(t, tc.meta, r.MetaOps, tc.why)
			}
		})
	}
}

// A burst of opens at one slot-pool server drains at its capacity: the
// makespan of W operations on c slots of s seconds is ⌈W/c⌉·s when they
// all arrive at once (M/D/c at utilisation 1 during the burst).
func TestServerQueueDrainsAtCapacity(t *testing.T) {
	for _, tc := range []struct {
		nodes, procs, slots int
	}{
		{1, 8, 2}, {64, 12, 8}, {100, 1, 3},
	} {
		w := toyWorkload()
		w.Ops = []replay.Op{{Kind: replay.Open, Path: "/a.py", FD: 3}}
		cal := toyCal(w)
		cal.Costs = Costs{}
		cal.Reference.Slots = tc.slots
		r, err := Run(cal, Scenario{Mode: ModeDirect, Nodes: tc.nodes, Procs: tc.procs})
		require.NoError(t, err)
		// one lookup per node, then one open per process: all work is
		// queued before the server runs dry.
		ops := tc.nodes + tc.nodes*tc.procs
		want := math.Ceil(float64(ops)/float64(tc.slots)) * cal.Reference.MetadataService
		assert.InDelta(t, want, r.ColdS, 1e-9, "N=%d P=%d c=%d", tc.nodes, tc.procs, tc.slots)
		assert.Equal(t, int64(ops), r.MetaOps)
		assert.InDelta(t, float64(tc.nodes*tc.procs)/float64(tc.slots)*cal.Reference.MetadataService, r.WarmS, cal.Reference.MetadataService,
			"warm: only the opens, still at capacity")
	}
}

// Copper's coalescing: however many nodes and processes, each (path,
// kind) reaches the filesystem once per tree, and the filesystem sees
// exactly T times what one node alone makes it do.
func TestCoalescingOncePerTree(t *testing.T) {
	w := toyWorkload()
	cal := toyCal(w)
	one, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: 1, Procs: 1})
	require.NoError(t, err)
	for _, tc := range []struct{ nodes, procs, trees, fanout int }{
		{2, 1, 1, 0}, {64, 12, 1, 0}, {64, 12, 4, 0}, {1000, 12, 1, 3}, {1000, 12, 7, 0}, {20000, 12, 16, 0},
	} {
		r, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: tc.nodes, Procs: tc.procs, Trees: tc.trees, Fanout: tc.fanout})
		require.NoError(t, err)
		assert.InDelta(t, float64(tc.trees), r.FetchesPerKey, 1e-9, "%+v", tc)
		assert.Equal(t, one.MetaOps*int64(tc.trees), r.MetaOps, "%+v", tc)
		assert.Zero(t, r.WarmMetaOps, "%+v: a warm run asks nothing", tc)
	}
	// Direct: lookups once per node, opens once per process.
	r, err := Run(cal, Scenario{Mode: ModeDirect, Nodes: 50, Procs: 12})
	require.NoError(t, err)
	assert.Equal(t, int64(50), r.OpsByKind["lookup"])
	assert.Equal(t, int64(50*12), r.OpsByKind["open"])
}

// On the host, CPU-bound work of N nodes adds up on its cores, and a
// host share below its cores slows it in proportion.
func TestHostCPUIsShared(t *testing.T) {
	for _, tc := range []struct {
		nodes, procs, cores int
		avail               float64
	}{
		{1, 1, 1, 1}, {4, 4, 2, 2}, {8, 4, 2, 0.5}, {32, 4, 2, 2}, {1, 1, 2, 1},
	} {
		w := toyWorkload()
		cal := toyCal(w)
		cal.HostCores, cal.HostAvailable = tc.cores, tc.avail
		r, err := Run(cal, Scenario{Mode: ModeStaging, Nodes: tc.nodes, Procs: tc.procs, Host: true})
		require.NoError(t, err)
		work := float64(tc.nodes*tc.procs*len(w.Ops)) * cal.Costs.ClientOpNative
		threads := float64(tc.nodes*(tc.procs+1) + 1)
		others := float64(tc.cores) * (float64(tc.cores)/tc.avail - 1) // the probe's threads got avail of cores
		slow := math.Max(1, (threads+others)/threads)
		one := float64(len(w.Ops)) * cal.Costs.ClientOpNative // a process runs on one core at a time
		assert.InDelta(t, math.Max(work/float64(tc.cores), one)*slow, r.WarmS, 1e-9, "%+v", tc)
		assert.InDelta(t, work, r.WarmCPUS, 1e-9, "%+v: CPU seconds are the work, whatever the share", tc)
	}
}

func TestDeterministic(t *testing.T) {
	w := toyWorkload()
	cal := toyCal(w)
	for _, sc := range []Scenario{{Mode: ModeCopper, Nodes: 300, Procs: 12, Trees: 2}, {Mode: ModeDirect, Nodes: 77, Procs: 3, Host: true}} {
		a, err := Run(cal, sc)
		require.NoError(t, err)
		b, err := Run(cal, sc)
		require.NoError(t, err)
		assert.Equal(t, a, b)
	}
}

// Tree depth and fan-out come from package tree.
func TestTreeShapeFromTreePackage(t *testing.T) {
	cal := toyCal(toyWorkload())
	for _, tc := range []struct{ nodes, trees, fanout, wantFan, wantDepth int }{
		{31, 1, 0, 2, 4}, {8300, 1, 0, 10, 4}, {20000, 1, 0, 12, 4}, {8300, 1, 32, 32, 3}, {8300, 16, 0, 5, 4},
	} {
		r, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: tc.nodes, Procs: 1, Trees: tc.trees, Fanout: tc.fanout})
		require.NoError(t, err)
		assert.Equal(t, tc.wantFan, r.TreeFanout, "%+v", tc)
		assert.Equal(t, tc.wantDepth, r.Depth, "%+v", tc)
	}
}

func TestLargeFilePaths(t *testing.T) {
	cal := toyCal(toyWorkload())
	cal.Reference.Bandwidth = 1 << 30
	const size = 1 << 30
	direct, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: 100, Procs: 2, LargeBytes: size, LargePath: LargeDirect})
	require.NoError(t, err)
	chunked, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: 100, Procs: 2, LargeBytes: size, LargePath: LargeChunked})
	require.NoError(t, err)
	assert.Equal(t, int64(100*size), direct.DataBytes-1000, "every node reads it")
	assert.Equal(t, int64(size), chunked.DataBytes-1000, "the root reads it once")
	assert.Greater(t, direct.ColdS, 99.0, "100 GiB through 1 GiB/s")
}

func TestRunRefusesBadScenarios(t *testing.T) {
	cal := toyCal(toyWorkload())
	for _, tc := range []struct {
		sc   Scenario
		want string
	}{
		{Scenario{Mode: "nfs", Nodes: 1, Procs: 1}, `mode "nfs"`},
		{Scenario{Mode: ModeCopper, Nodes: 0, Procs: 1}, "0 nodes"},
		{Scenario{Mode: ModeCopper, Nodes: 4, Procs: 1, Trees: 5}, "trees = 5 exceeds n = 4"},
		{Scenario{Mode: ModeCopper, Nodes: 4, Procs: 1, LargePath: "p2p"}, `large-file path "p2p"`},
	} {
		_, err := Run(cal, tc.sc)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	bad := toyCal(toyWorkload())
	bad.Costs.HopCPU = math.NaN()
	bad.Reference.Slots = 0
	_, err := Run(bad, Scenario{Mode: ModeCopper, Nodes: 1, Procs: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hop_cpu_s")
	assert.Contains(t, err.Error(), "reference server")
}

func TestBuildWorkloadFromADirectory(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "site", "pkg"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "site", "pkg", "__init__.py"), []byte("x = 1\n"), 0o644))
	trace := `open("` + root + `/site/pkg/__init__.py", O_RDONLY|O_CLOEXEC) = 3
read(3, ""..., 4096) = 6
close(3) = 0
stat("` + root + `/site/pkg/nope.py", 0x7ffd) = -1 ENOENT (No such file or directory)
`
	tr, err := replay.Parse(strings.NewReader(trace), "t.strace", root)
	require.NoError(t, err)
	w, err := BuildWorkload(tr, "t.strace", DirLister(root))
	require.NoError(t, err)
	assert.Equal(t, TreeSize{Files: 1, Dirs: 2, Bytes: 6}, w.Tree)
	assert.Contains(t, w.Dirs, "/site/pkg")
	acts := w.compile(128)
	var lookups []string
	for _, a := range acts {
		if a.kind == aLookup {
			lookups = append(lookups, a.path)
		}
	}
	assert.Equal(t, []string{"/site", "/site/pkg", "/site/pkg/__init__.py", "/site/pkg/nope.py"}, lookups)

	_, err = BuildWorkload(tr, "t.strace", func(string) ([]Entry, error) { return nil, os.ErrPermission })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "list /")
}

func TestHostShare(t *testing.T) {
	for _, tc := range []struct {
		cores   int
		probed  float64
		threads int
		want    float64
	}{
		{2, 2, 1, 2},        // nobody else: all of it
		{2, 1, 2, 1},        // the probe's own thread count gets what it got
		{2, 1, 1000, 1.996}, // many threads of ours: nearly all
		{2, 0.5, 2, 0.5},    // a crowded host
		{1, 0.25, 1, 0.25},  // one core
		{4, 8, 3, 4},        // a probe above the cores is capped
	} {
		assert.InDelta(t, tc.want, HostShare(tc.cores, tc.probed, tc.threads), 1e-3, "%+v", tc)
	}
}

// A directory listing read once by a PFS client is kept: processes that
// asked before it arrived each read it, a warm run reads nothing.
func TestDirectListingsKeptByTheClient(t *testing.T) {
	w := toyWorkload()
	w.Ops = []replay.Op{{Kind: replay.Open, Path: "/", FD: 3, Flags: 0o200000}, {Kind: replay.Getdents, Path: "/", FD: 3, Size: 32768}}
	cal := toyCal(w)
	r, err := Run(cal, Scenario{Mode: ModeDirect, Nodes: 3, Procs: 4})
	require.NoError(t, err)
	assert.Equal(t, int64(3*4), r.OpsByKind["readdir"], "cold: every process of every node")
	assert.Equal(t, int64(3*4), r.OpsByKind["opendir"])
	assert.Equal(t, int64(3*4), r.WarmMetaOps, "warm: the opendirs only")
}
