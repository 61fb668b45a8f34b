package pfsbench

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bench/slowpfs"
)

// synthetic is a finished run with the rows the targets read.
func synthetic() *Results {
	scaled, err := slowpfs.DefaultParams().ScaleCapacity(192)
	if err != nil {
		panic(err)
	}
	be := func(perKey float64, metadata int64) *Backend {
		return &Backend{Ops: map[string]int64{"lookup": metadata}, MetadataOps: metadata,
			Fetches: slowpfs.FetchSummary{PerKey: perKey, DataRatio: perKey}}
	}
	return &Results{
		Label: "quick", Command: "pfsbench --quick --out x",
		Machine: Machine{Cores: 2, Commit: "abc1234"},
		Settings: Settings{Procs: 4, ReplayNodes: []int{1, 32}, ImportNodes: []int{1}, Params: slowpfs.DefaultParams(),
			Scale: &ScaleSettings{Nodes: 32, RefNodes: 2048, RefProcs: 12, Ratio: 192, Params: scaled, MetadataOpsSec: scaled.MetadataOpsPerSecond()}},
		Runs: []Row{
			{Workload: WorkReplay, Mode: ModeCopper, Nodes: 1, Phase: "cold", RunS: 0.4, SetupS: 0.02, TotalS: 0.42, Backend: be(1, 300)},
			{Workload: WorkReplay, Mode: ModeCopper, Nodes: 32, Phase: "cold", RunS: 0.5, SetupS: 1.5, TotalS: 2, Backend: be(1, 300),
				CPUClientPerNodeS: []float64{0.1, 0.3}, CPUDaemonPerNodeS: []float64{0.5, 0.25}},
			{Workload: WorkReplay, Mode: ModeCopper, Nodes: 32, Phase: "warm", RunS: 0.1, TotalS: 0.1, Backend: be(0, 0),
				Memory: []NodeMemory{{Rank: 0, RSSBytes: 30 << 20, CacheBytes: 10 << 20, LimitBytes: memoryLimit(10 << 20)},
					{Rank: 1, RSSBytes: 60 << 20, CacheBytes: 10 << 20, LimitBytes: memoryLimit(10 << 20)}}},
			{Workload: WorkReplay, Mode: ModeDirect, Nodes: 32, Phase: "cold", RunS: 5, TotalS: 5, Backend: be(60, 20000)},
			{Workload: WorkReplay, Mode: ModeDirect, Nodes: 1, Phase: "cold", Error: "boom"},
			{Workload: WorkImport, Mode: ModeLocal, Nodes: 1, Phase: "cold", RunS: 0.2, TotalS: 0.2},
			{Workload: WorkScale, Mode: ModeDirect, Nodes: 32, Phase: "cold", RunS: 150, TotalS: 150, CPUFloorS: 5,
				Backend: &Backend{MetadataOps: 20000, MeanQueueUs: 90000, Ops: map[string]int64{}}},
			{Workload: WorkScale, Mode: ModeCopper, Nodes: 32, Phase: "cold", RunS: 3, SetupS: 1, TotalS: 4, CPUFloorS: 2.8,
				Backend: &Backend{MetadataOps: 340, MeanQueueUs: 100, Ops: map[string]int64{}}},
		},
		WarmImport: &WarmImport{Rounds: 3, LocalMedS: 0.1, MountMedS: 0.105, Ratio: 1.05,
			LocalS: []float64{0.1, 0.1, 0.1}, MountS: []float64{0.1, 0.105, 0.12}},
	}
}

func TestComputeTargets(t *testing.T) {
	res := synthetic()
	res.computeTargets()
	require.Len(t, res.Targets, 7)
	byName := map[string]Target{}
	for _, tg := range res.Targets {
		byName[tg.Name] = tg
		assert.True(t, tg.Measured, tg.Name)
	}
	tests := []struct {
		name    string
		met     bool
		value   float64
		verdict string
	}{
		{"server fetches per (path, kind) under copper, cold replay, N=32", true, 1, "met"},
		{"cold replay, copper N=32 vs copper N=1", true, 1.25, "met"},
		{"cold replay at N=32, direct vs copper", true, 10, "met"},
		{"cold replay at N=32, direct vs copper, scale model (2048×12 clients per server)", true, 50, "met"},
		{"warm real import through a non-root mount vs local disk", true, 1.05, "met"},
		{"32 local copper nodes tree-ready", true, 1.5, "met"},
		{"per-node memory vs cached bytes × 1.2 + 40 MiB", false, 60.0 / 52.0, "missed by 15%"},
	}
	for _, tt := range tests {
		tg, ok := byName[tt.name]
		require.True(t, ok, "target %q missing; have %v", tt.name, res.Targets)
		assert.Equal(t, tt.met, tg.Met, tt.name)
		assert.InDelta(t, tt.value, tg.Value, 1e-9, tt.name)
		assert.Equal(t, tt.verdict, tg.Verdict, tt.name)
	}
	assert.Contains(t, byName["server fetches per (path, kind) under copper, cold replay, N=32"].Result, "direct 60.00 (N×P = 128)")
}

func TestComputeTargetsSaysWhatWasNotMeasured(t *testing.T) {
	res := &Results{Settings: Settings{Procs: 4, ReplayNodes: []int{4}}}
	res.computeTargets()
	require.Len(t, res.Targets, 6)
	for _, tg := range res.Targets {
		assert.False(t, tg.Measured, tg.Name)
		assert.Equal(t, "not measured", tg.Verdict)
		assert.NotEmpty(t, tg.Result, "a reason is given")
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		value, limit float64
		atMost       bool
		want         string
	}{
		{1.0, 1.5, true, "met"},
		{1.5, 1.5, true, "met"},
		{3.0, 1.5, true, "missed by 100%"},
		{5, 5, false, "met"},
		{1.24, 5, false, "missed by 75%"},
	}
	for _, tt := range tests {
		tg := Target{Value: tt.value, Limit: tt.limit}
		tg.judge(tt.atMost)
		assert.Equal(t, tt.want, tg.Verdict, "%v vs %v", tt.value, tt.limit)
	}
}

func TestOutputsFromSyntheticResults(t *testing.T) {
	res := synthetic()
	res.computeTargets()
	dir := t.TempDir()
	require.NoError(t, res.writeJSON(dir))
	require.NoError(t, res.writeCSV(dir))
	require.NoError(t, res.writeMarkdown(dir))
	require.NoError(t, res.writeSVG(dir))

	csv, err := os.ReadFile(filepath.Join(dir, "results.csv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	require.Len(t, lines, 1+len(res.Runs))
	assert.Equal(t, strings.Join(csvHeader, ","), lines[0])
	for _, l := range lines[1:] {
		assert.Equal(t, len(csvHeader), len(strings.Split(l, ",")), "every row has every column: %s", l)
	}

	md, err := os.ReadFile(filepath.Join(dir, FragmentFile))
	require.NoError(t, err)
	for _, want := range []string{
		"| 32 | 5.00 | – | 1.50 + 0.50 | 0.10 |", // direct, copper cold with setup, copper warm
		"| 1 | failed | – | 0.02 + 0.40 | – |",
		"| N | local cold | local warm |", // only modes with runs get columns
		"| copper | 32 | 300 |",
		"![time against N per mode](pfsbench.svg)",
		"missed by 15%",
		"| copper | 32 | 0.50 | 0.20 / 0.30 | 0.38 / 0.50 | 0.10 | – | – |", // CPU per node next to wall time
		"| ratio | 192.0 | 24576 / 128 |",
		"| scaled capacity | 138.9 operations/s: 1 slot(s) × 7.2ms |",
		"warm: not measured",
		"cold: direct 150.00 s, copper 3.00 s (direct takes 50.0× copper's time)",
		"* direct, scale model, cold replay at N=32: 150.00 s; CPU floor 5.00 s, server time 144.00 s (20000 metadata operations; mean slot queue 90000 µs) — server-bound",
		"* copper, scale model, cold replay at N=32: 3.00 s; CPU floor 2.80 s, server time 2.45 s (340 metadata operations; mean slot queue 100 µs) — CPU-bound on this machine",
		"* copper, today's server, cold replay at N=32: 0.50 s; CPU floor 0.00 s, server time 0.01 s (300 metadata operations; mean slot queue 0 µs) — bound by neither",
		"| its capacity | 26667 operations/s (8 slots × 300µs) |",
		"ranged 1.00×–1.20×",
	} {
		assert.Contains(t, string(md), want)
	}

	svg, err := os.ReadFile(filepath.Join(dir, PlotFile))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(svg), "<svg"))
	assert.Equal(t, 4, strings.Count(string(svg), "<polyline"), "replay: copper cold and warm, direct cold; import: local cold")
	assert.Contains(t, string(svg), modeColors[ModeCopper])
}

func TestCleanupsRunInReverse(t *testing.T) {
	var c cleanups
	var order []string
	c.push("first", func() error { order = append(order, "first"); return nil })
	mark := c.mark()
	c.push("second", func() error { order = append(order, "second"); return errors.New("stuck") })
	c.push("third", func() error { order = append(order, "third"); return nil })
	err := c.popTo(mark)
	assert.ErrorContains(t, err, "second: stuck")
	assert.Equal(t, []string{"third", "second"}, order)
	require.NoError(t, c.popTo(0))
	assert.Equal(t, []string{"third", "second", "first"}, order)
	require.NoError(t, c.popTo(0), "nothing left")
}

func TestFirstErrors(t *testing.T) {
	e := errors.New("same")
	assert.NoError(t, firstErrors([]error{nil, nil}, 2))
	err := firstErrors([]error{e, nil, e, e, e}, 2)
	assert.Equal(t, "same\nsame\nand 2 more", err.Error())
}

func TestHelpers(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 4.13: 5, 7: 10, 14.7: 20} {
		assert.Equal(t, want, niceCeil(v), "niceCeil(%v)", v)
	}
	assert.Equal(t, []string{"plain", "'two words'", `'it'\''s'`, "''"}, quoteArgs([]string{"plain", "two words", "it's", ""}))
	assert.Equal(t, int64(52)<<20, memoryLimit(10<<20))
	env := environ("PFSBENCH_TEST_X=1", "PATH=/nowhere")
	assert.Contains(t, env, "PATH=/nowhere")
	assert.NotContains(t, env, "PATH="+os.Getenv("PATH"))
}

func TestStatCPU(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want time.Duration
	}{
		{"plain", "42 (copper-node) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0", 3250 * time.Millisecond},
		{"command with spaces and parens", "7 (a b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond},
		{"truncated", "7 (x) R 1 7", 0},
		{"no command", "garbage", 0},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 u s 0 0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, statCPU([]byte(tt.stat)))
		})
	}
	assert.Equal(t, []time.Duration{0}, cpuTimes([]int{-1}), "a missing process counts zero")
	assert.Equal(t, "–", meanMax(nil))
	assert.Equal(t, "1.50 / 2.00", meanMax([]float64{1, 2}))
}

func TestConfigCheck(t *testing.T) {
	bin := t.TempDir()
	for _, tool := range []string{"copper-node", "slowpfs"} {
		require.NoError(t, os.WriteFile(filepath.Join(bin, tool), nil, 0o755))
	}
	ok := Quick()
	ok.Out, ok.Bin, ok.Self = t.TempDir(), bin, "/bin/true"
	require.NoError(t, ok.check())

	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no output", func(c *Config) { c.Out = "" }, "no output directory"},
		{"bad procs", func(c *Config) { c.Procs = 0 }, "processes per node 0"},
		{"bad nodes", func(c *Config) { c.ReplayNodes = []int{0} }, "node count 0"},
		{"bad scale nodes", func(c *Config) { c.Scale.Nodes = 300 }, "scale-model node count 300"},
		{"bad scale reference", func(c *Config) { c.Scale.RefProcs = 0 }, "scale model reference"},
		{"bad scale mode", func(c *Config) { c.Scale.Modes = []string{ModeStaging} }, "scale-model mode"},
		{"scale beyond the model", func(c *Config) { c.Scale.RefNodes = 1 << 30 }, "scale model: capacity scaled"},
		{"bad mode", func(c *Config) { c.Modes = []string{"teleport"} }, `unknown mode "teleport"`},
		{"bad clients", func(c *Config) { c.DirectClients = "rack" }, `direct clients "rack"`},
		{"missing tools", func(c *Config) { c.Bin = t.TempDir() }, "copper-node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.modify(&c)
			assert.ErrorContains(t, c.check(), tt.want)
		})
	}
}

// FuzzStatCPU: any /proc/<pid>/stat content parses without panicking to
// a non-negative time.
func FuzzStatCPU(f *testing.F) {
	f.Add([]byte("42 (copper-node) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0"))
	f.Add([]byte("7 (a b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0"))
	f.Add([]byte(")"))
	f.Add([]byte("1 (x) R 1 1 1 0 -1 0 0 0 0 0 -5 9223372036854775807 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d := statCPU(b); d < 0 {
			t.Fatalf("statCPU(%q) = %v, negative", b, d)
		}
	})
}
