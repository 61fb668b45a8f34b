package pfsbench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIssue9Targets(t *testing.T) {
	res := synthetic()
	res.computeTargets()
	res.Settings.ReplayNodes = []int{1, 8, 32}
	res.Runs = append(res.Runs,
		Row{Workload: WorkReplay, Mode: ModeDirect, Nodes: 8, Phase: "cold", RunS: 1.2},
		Row{Workload: WorkReplay, Mode: ModeCopper, Nodes: 8, Phase: "cold", RunS: 0.6})
	tests := []struct {
		name    string
		value   float64
		verdict string
	}{
		{"warm real `import numpy` through a non-root mount vs local disk", 1.05, "met"},
		{"cold replay over the emulated slow filesystem, N=8 × 4 processes, direct vs copper", 2, "missed by 33%"},
		{"cold replay, scale model (2048×12 clients per server) at N=32, direct vs copper", 50, "met"},
		{"unchanged: server operations per (path, kind) under copper, cold replay, N=32", 1, "met"},
		{"unchanged: per-node memory vs cached bytes × 1.2 + 40 MiB", 60.0 / 52.0, "missed by 15%"},
	}
	got := res.issue9Targets()
	require.Len(t, got, len(tests))
	for i, tt := range tests {
		assert.Equal(t, tt.name, got[i].Name)
		assert.InDelta(t, tt.value, got[i].Value, 1e-9, tt.name)
		assert.Equal(t, tt.verdict, got[i].Verdict, tt.name)
	}

	dir := t.TempDir()
	require.NoError(t, res.writeIssue9(dir))
	b, err := os.ReadFile(filepath.Join(dir, Issue9File))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, len(tests))
	assert.Equal(t, "| cold replay over the emulated slow filesystem, N=8 × 4 processes, direct vs copper | 2.00× (direct 1.200 s, copper 0.600 s) | ≥ 3× faster | missed by 33% |", lines[1])
}

func TestIssue9TargetsSayWhatWasNotMeasured(t *testing.T) {
	res := &Results{Settings: Settings{Procs: 4, ReplayNodes: []int{4}}}
	for _, tg := range res.issue9Targets() {
		assert.False(t, tg.Measured, tg.Name)
		assert.Equal(t, "not measured", tg.Verdict, tg.Name)
		assert.NotEmpty(t, tg.Result, "a reason is given: %s", tg.Name)
	}
}
