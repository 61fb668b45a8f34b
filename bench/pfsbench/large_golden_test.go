package pfsbench

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bench/slowpfs"
)

// A name of its own: another test file of this package may add an
// -update flag, and two flags of one name panic.
var updateLarge = flag.Bool("update-large", false, "rewrite testdata/golden/large-*.md")

// largeFixture is a finished large-file workload that reaches every
// paragraph and table of largeSection and every target of largeTargets.
func largeFixture() *Results {
	params := slowpfs.DefaultParams()
	params.Bandwidth = 200 << 20
	machine := func(mode string, wall float64, backend int64) LargeModeRow {
		row := LargeModeRow{Model: "machine", Mode: mode, Nodes: 4, FileBytes: 256 << 20, Bandwidth: params.Bandwidth,
			WallS: wall, BackendBytes: backend, CPUReadersS: 0.9, CPUDaemonsS: 3.1, CPUEmulatorS: 0.4}
		row.judge(2)
		return row
	}
	scale := func(mode string, wall float64, backend int64) LargeModeRow {
		row := LargeModeRow{Model: "scale", Mode: mode, Nodes: 4, FileBytes: 64 << 20, Bandwidth: 9_765_625,
			WallS: wall, BackendBytes: backend, CPUReadersS: 0.2, CPUDaemonsS: 0.7, CPUEmulatorS: 0.1}
		row.judge(2)
		return row
	}
	mem := func(rank int, rss, spill int64) LargeNodeMemory {
		return LargeNodeMemory{Rank: rank, RSSBytes: rss, CacheBudget: 64 << 20, LimitBytes: 128 << 20, SpillMode: "disk",
			SpillBytes: spill, SpillBudget: 260 << 20, Fetched: 64, Served: int64(3 - rank)}
	}
	return &Results{
		Machine:  Machine{Cores: 2},
		Settings: Settings{Params: params},
		Large: &LargeResult{
			FileBytes: 256 << 20, Nodes: 4, ChunkBytes: 4 << 20,
			DirectS: 5.12, DirectBackendBytes: 4 * 256 << 20,
			CopperS: 2.5, CopperSetupS: 0.75, CopperBackendBytes: 256 << 20,
			WarmSeqMiBs: 2900, NativeSeqMiBs: 3400, WarmMmapMiBs: 1500, NativeMmapMiBs: 4100, WarmRounds: 3,
			WarmMmapFaults: 4096, NativeMmapFaults: 130,
			WarmFolios:     []FolioShare{{FolioBytes: 4096, Share: 1}},
			NativeFolios:   []FolioShare{{FolioBytes: 2 << 20, Share: 0.9}, {FolioBytes: 64 << 10, Share: 0.095}, {FolioBytes: 4096, Share: 0.005}},
			ServedColdMiBs: 410, ServedSpillMiBs: 960,
			Passes: []LargeModeRow{machine(ModeDirect, 5.12, 4*256<<20), machine(ModeCopper, 2.5, 256<<20),
				scale(ModeDirect, 27.6, 4*64<<20), scale(ModeCopper, 7.4, 64<<20)},
			RefNodes: 2048, RefServerBandwidth: 5_000_000_000,
			Dlopen:      &LargeDlopen{Library: "libLLVM-15.so.1", Bytes: 117308864, Nodes: 4, WallS: 6.5, BackendBytes: 117308864},
			Memory:      []LargeNodeMemory{mem(0, 90<<20, 256<<20), mem(1, 100<<20, 256<<20), mem(2, 140<<20, 270<<20)},
			KernelPath:  "page_cache (this kernel does not offer FUSE passthrough)",
			CopperFlags: "--large-files chunked --chunk-bytes 4194304",
		},
	}
}

// renderLarge is the large-file section and its targets as text.
func renderLarge(res *Results) string {
	var b strings.Builder
	res.largeSection(&b)
	b.WriteString("---- targets\n")
	for _, t := range res.largeTargets() {
		fmt.Fprintf(&b, "%s | %s | %s | %s | measured %v met %v | %.6g / %.6g\n",
			t.Name, t.Result, t.Goal, t.Verdict, t.Measured, t.Met, t.Value, t.Limit)
	}
	return b.String()
}

// TestLargeSectionGolden pins the large-file prose and targets byte for
// byte: a change to what they say shows here as a diff to review.
func TestLargeSectionGolden(t *testing.T) {
	noScale := largeFixture()
	l := noScale.Large
	l.Passes, l.RefNodes, l.RefServerBandwidth = l.Passes[:2], 0, 0
	l.ServedColdMiBs, l.WarmMmapFaults, l.KernelPath = 0, 0, "passthrough"
	l.Dlopen = &LargeDlopen{Skipped: "/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1 not installed (Debian package libllvm15)"}
	failed := largeFixture()
	failed.Large.Error = "copper: 4 readers not done after 10m0s"

	for _, tc := range []struct {
		file string
		res  *Results
	}{
		{"large-full.md", largeFixture()},
		{"large-noscale.md", noScale},
		{"large-failed.md", failed},
		{"large-notrun.md", &Results{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := renderLarge(tc.res)
			golden := filepath.Join("testdata", "golden", tc.file)
			if *updateLarge {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./bench/pfsbench -run TestLargeSectionGolden -update-large to create it")
			assert.Equal(t, string(want), got)
		})
	}
}
