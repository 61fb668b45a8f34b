package pfsbench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
)

// tinyPackage writes a small Python package: a module, a subpackage, a
// file that is never imported (so listings matter) and a probe for a
// missing module.
func tinyPackage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tinypkg")
	files := map[string]string{
		"__init__.py":      "from . import sub\nfrom .data import VALUE\ntry:\n    import tinypkg._absent\nexcept ImportError:\n    pass\n",
		"sub.py":           "X = 1\n",
		"unused.py":        "Y = 2\n",
		"data/__init__.py": "VALUE = 42\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	return dir
}

// requireTools fails (never skips) when the machine lacks what the
// benchmark needs.
func requireTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the benchmark mounts FUSE directly: run as root (euid %d)", os.Geteuid())
	}
	for _, tool := range []string{"strace", "tar", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v: run scripts/pfsbench.sh (or scripts/setup-test-deps.sh and apt-get install strace)", tool, err)
		}
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("/dev/fuse: %v", err)
	}
}

// TestRunEndToEnd runs every mode at N=1,2 × P=2 on a tiny package,
// through real slowpfs, copper-node, replay workers and python, and
// checks the results and that nothing is left running or mounted.
func TestRunEndToEnd(t *testing.T) {
	requireTools(t)
	require.NotEmpty(t, binDir)
	work, err := os.MkdirTemp("", "pfsbench-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() {
		// Run must already have left nothing; this only keeps a failed
		// run from leaking into other tests.
		_ = detachAll(work)
		_ = os.RemoveAll(work)
	})
	out := t.TempDir()
	var progress bytes.Buffer
	cfg := Quick()
	cfg.Out, cfg.Work, cfg.Bin, cfg.Self = out, work, binDir, filepath.Join(binDir, "pfsbench")
	cfg.Import = "tinypkg"
	cfg.Packages = []string{tinyPackage(t)}
	cfg.ReplayNodes, cfg.ImportNodes, cfg.Procs = []int{1, 2}, []int{2}, 2
	cfg.WarmImportRounds = 1
	// A small large-file workload: 3 nodes read 24 MiB in 1 MiB chunks.
	// Scale model: 3 of 6 reference nodes share a 128 MiB/s server.
	cfg.Large = LargeConfig{Bytes: 24 << 20, Nodes: 3, ChunkBytes: 1 << 20, CacheBytes: 16 << 20, WarmRounds: 1,
		ScaleBytes: 4 << 20, RefNodes: 6, RefServerBandwidth: 128 << 20}
	// A small scale model: 4 × 2 reference processes on the server
	// that 2 × 2 here share, so the scaled server has half the capacity.
	cfg.Scale = ScaleModel{Nodes: 2, RefNodes: 4, RefProcs: 2, Modes: []string{ModeDirect, ModeCopper}, StepTimeout: 40 * time.Second}
	cfg.StepTimeout = 40 * time.Second
	cfg.Progress = &progress
	// Cached misses outlive the whole run, so that what the warm and the
	// prefetched cold runs ask of the filesystem does not depend on how
	// long this machine takes between phases (the default is 2 s).
	// A 5 s heartbeat: this test counts fetches per (path, kind), which a
	// heartbeat false alarm on a loaded host (a node then reads for
	// itself as the successor root) would inflate.
	cfg.CopperFlags = []string{"--md-enoent-ttl-ms", "600000", "--heartbeat-timeout-ms", "5000"}

	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg, "pfsbench (test)")
	require.NoError(t, err, "progress:\n%s", progress.String())

	mounts, err := mountsUnder(work)
	require.NoError(t, err)
	assert.Empty(t, mounts, "everything is unmounted")
	assert.Empty(t, osutil.ProcessesMentioning(work), "every helper is gone")

	for _, work := range []string{WorkReplay, WorkImport} {
		for _, mode := range []string{ModeLocal, ModeDirect, ModeCopper, ModeStaging, ModePrefetch} {
			for _, phase := range []string{"cold", "warm"} {
				row := res.find(work, mode, 2, phase)
				require.NotNil(t, row, "%s %s N=2 %s", work, mode, phase)
				assert.Positive(t, row.RunS)
				assert.Zero(t, row.Divergences, "%s %s %s", work, mode, phase)
				assert.Positive(t, row.CPUClientsS+row.CPUDaemonsS+row.CPUEmulatorS)
			}
		}
	}
	assert.Empty(t, res.Skipped, "every mode runs")

	copper := res.find(WorkReplay, ModeCopper, 2, "cold")
	assert.InDelta(t, 1.0, copper.Backend.Fetches.PerKey, 1e-9, "copper fetches each (path, kind) once")
	assert.InDelta(t, 1.0, copper.Backend.Fetches.DataRatio, 1e-9)
	assert.Positive(t, copper.SetupS, "tree-ready time is the setup")
	require.NotNil(t, copper.SetupCPU, "copper's setup CPU is recorded")
	assert.Positive(t, copper.SetupCPU.DaemonStartS, "the daemons' start CPU (the scale model charges it)")
	stagingCold := res.find(WorkReplay, ModeStaging, 2, "cold")
	require.NotNil(t, stagingCold.SetupCPU, "staging's setup CPU is recorded")
	assert.Positive(t, stagingCold.SetupCPU.ExtractS, "the extractions' CPU (the scale model charges it)")
	assert.Zero(t, res.find(WorkReplay, ModeCopper, 2, "warm").Backend.MetadataOps, "warm copper never asks the filesystem")
	direct := res.find(WorkReplay, ModeDirect, 2, "cold")
	assert.Greater(t, direct.Backend.Fetches.PerKey, 1.5, "two nodes' clients fetch separately")
	assert.Len(t, res.find(WorkReplay, ModeCopper, 2, "warm").Memory, 2)
	staging := res.find(WorkReplay, ModeStaging, 2, "cold")
	require.NotNil(t, staging.SetupBackend)
	assert.Positive(t, staging.SetupBackend.Ops["open"], "the tar and the extractions read through the emulator")
	for _, n := range []int{1, 2} {
		pre := res.find(WorkReplay, ModePrefetch, n, "cold")
		require.NotNil(t, pre, "copper+prefetch N=%d", n)
		require.NotNil(t, pre.SetupBackend)
		assert.Positive(t, pre.PrefetchS)
		assert.Greater(t, pre.SetupS, pre.PrefetchS, "setup is tree-ready plus the prefetch")
		require.Len(t, pre.Prefetch, n, "one summary per node")
		for _, sum := range pre.Prefetch {
			assert.Contains(t, sum, ": done,")
		}
		assert.Positive(t, pre.SetupBackend.Ops["open"], "the prefetch reads the files during setup")
		assert.InDelta(t, 1.0, pre.SetupBackend.Fetches.PerKey, 1e-9, "every node's prefetch shares one fetch per (path, kind)")
		assert.Zero(t, pre.Backend.MetadataOps, "the cold run finds everything prefetched")
		assert.Zero(t, pre.Backend.DataBytes)
	}
	require.NotNil(t, res.WarmImport)
	assert.Len(t, res.WarmImport.MountS, 1)

	for _, mode := range []string{ModeDirect, ModeCopper} {
		for _, phase := range []string{"cold", "warm"} {
			row := res.find(WorkScale, mode, 2, phase)
			require.NotNil(t, row, "scale model %s N=2 %s", mode, phase)
			assert.Positive(t, row.RunS)
			assert.Zero(t, row.Divergences, "scale model %s %s", mode, phase)
			assert.Len(t, row.CPUClientPerNodeS, 2, "one client CPU figure per node")
			if mode == ModeCopper {
				assert.Len(t, row.CPUDaemonPerNodeS, 2, "one copper-node CPU figure per node")
			}
		}
	}
	require.NotNil(t, res.Settings.Scale)
	assert.Equal(t, 4, res.Settings.Scale.Params.Slots, "8 slots over a ratio of 2")
	assert.InDelta(t, 1.0, res.find(WorkScale, ModeCopper, 2, "cold").Backend.Fetches.PerKey, 1e-9)

	require.NotNil(t, res.Large)
	assert.Empty(t, res.Large.Error)
	assert.Equal(t, res.Large.FileBytes, res.Large.CopperBackendBytes, "copper reads the large file once")
	assert.Equal(t, 3*res.Large.FileBytes, res.Large.DirectBackendBytes, "each direct node reads it whole")
	assert.Len(t, res.Large.Memory, 3)
	for _, m := range res.Large.Memory {
		assert.Equal(t, "disk", m.SpillMode)
		assert.LessOrEqual(t, m.SpillBytes, m.SpillBudget)
	}
	assert.True(t, strings.HasPrefix(res.Large.KernelPath, "page_cache ("), res.Large.KernelPath)
	assert.Positive(t, res.Large.ServedColdMiBs)
	assert.Positive(t, res.Large.ServedSpillMiBs)
	assert.Positive(t, res.Large.WarmMmapFaults)
	assert.Positive(t, res.Large.NativeMmapFaults)
	require.Len(t, res.Large.Passes, 4)
	for _, p := range res.Large.Passes {
		assert.NotEmpty(t, p.Verdict, "%+v", p)
		assert.Positive(t, p.CPUFloorS, "%+v", p)
		assert.Positive(t, p.ServerS, "%+v", p)
	}
	scale := res.Large.pass("scale", ModeDirect)
	require.NotNil(t, scale)
	assert.EqualValues(t, 64<<20, scale.Bandwidth, "128 MiB/s × 3 / 6 nodes")
	assert.Equal(t, 3*scale.FileBytes, scale.BackendBytes)
	assert.Equal(t, res.Large.pass("scale", ModeCopper).FileBytes, res.Large.pass("scale", ModeCopper).BackendBytes)

	// Every node mapped and dlopened the library; the root read it once
	// (scripts/setup-test-deps.sh installs it).
	require.NotNil(t, res.Large.Dlopen)
	require.Empty(t, res.Large.Dlopen.Skipped)
	assert.Equal(t, 3, res.Large.Dlopen.Nodes)
	assert.Equal(t, res.Large.Dlopen.Bytes, res.Large.Dlopen.BackendBytes)

	assert.Len(t, res.Targets, 15)
	for _, tg := range res.Targets {
		assert.True(t, tg.Measured, "target %q: %s", tg.Name, tg.Result)
	}

	for _, f := range []string{"results.json", "results.csv", FragmentFile, PlotFile, "import.strace"} {
		info, err := os.Stat(filepath.Join(out, f))
		require.NoError(t, err)
		assert.Positive(t, info.Size(), f)
	}
	var decoded Results
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &decoded))
	assert.Equal(t, len(res.Runs), len(decoded.Runs))
	md, err := os.ReadFile(filepath.Join(out, FragmentFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| copper | 2 |")
	assert.Contains(t, string(md), "| copper+prefetch | 2 |")
	assert.Contains(t, string(md), "| copper+prefetch setup | 2 |")
	assert.Contains(t, string(md), "### Scale model: N=2 in the regime of 4 nodes × 2 processes")
	assert.Contains(t, string(md), "### Reading the results (computed from this run)")
	assert.Contains(t, string(md), "### Large files through the tree (issue #10)")
	assert.Contains(t, string(md), "| scale | direct | 3 | 4 | 64.0 |")
	assert.Contains(t, string(md), "One reader on rank 2's mount")
	assert.Contains(t, string(md), "Scale model: on the reference machine, 6 nodes")
	assert.Contains(t, progress.String(), "copper N=2 replay cold")
	assert.True(t, strings.HasPrefix(string(md), "## "), "a fragment to include under the document's title")
}
