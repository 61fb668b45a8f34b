package scalemodel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEvaluateWritesAReport(t *testing.T) {
	cal := toyCal(toyWorkload())
	cal.Sources = map[string]string{"costs.client_op_mount_s": "measured: toy"}
	cal.Measured = []MeasuredRow{
		{Mode: ModeCopper, Nodes: 1, Phase: "cold", SetupS: 0.001, RunS: 0.05, Command: "pfsbench toy"},
		{Mode: ModeCopper, Nodes: 1, Phase: "warm", RunS: 0.004},
		{Mode: ModeDirect, Nodes: 2, Phase: "cold", RunS: 0.03},
		{Mode: "local", Nodes: 1, Phase: "cold", RunS: 1}, // not modelled: left out
	}
	plan := Plan{Nodes: []int{32, 8300}, Procs: 12, TreeCounts: []int{1, 2}, Fanouts: []int{0}, VariantNodes: []int{64}, LargeBytes: 1 << 20, LargeNodes: []int{16},
		Capacity: []float64{2}, SensitivityNodes: 8}
	rep, err := Evaluate(cal, plan)
	require.NoError(t, err)
	require.Len(t, rep.Validation, 4)
	assert.Len(t, rep.Projection, 6)
	assert.Len(t, rep.Variants, 1)
	assert.Len(t, rep.Large, 3)
	require.Len(t, rep.Sensitivity, 2)
	assert.Equal(t, ModeDirect, rep.Sensitivity[0].Mode)
	worst, _ := rep.MaxAbsError("")
	assert.GreaterOrEqual(t, worst, 0.0)

	dir := t.TempDir()
	rep.Command = "scalemodel run --calibration toy.json --out DIR"
	require.NoError(t, rep.WriteAll(dir))
	md, err := os.ReadFile(filepath.Join(dir, "model.md"))
	require.NoError(t, err)
	for _, want := range []string{"## Scale model", "| copper | 1 | cold run |", "| 8300 | copper |", "copper first import at 8,300 nodes", "pfsbench toy", "scalemodel.svg", "measured: toy"} {
		assert.Contains(t, string(md), want)
	}
	assert.NotContains(t, string(md), "NaN")
	assert.NotContains(t, string(md), "%!")
	svg, err := os.ReadFile(filepath.Join(dir, "scalemodel.svg"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(svg), "<svg"))
	assert.NotContains(t, string(svg), "NaN")
	var back Report
	b, err := os.ReadFile(filepath.Join(dir, "model.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, rep.Projection[0].ColdS, back.Projection[0].ColdS)
}

func TestCalibrationRoundTrip(t *testing.T) {
	cal := toyCal(toyWorkload())
	file := filepath.Join(t.TempDir(), "cal.json")
	require.NoError(t, cal.Write(file))
	back, err := ReadCalibration(file)
	require.NoError(t, err)
	assert.Equal(t, cal.Costs, back.Costs)
	assert.Equal(t, cal.Workload.Dirs, back.Workload.Dirs)

	_, err = ParseCalibration([]byte(`{"host_cores": 2}`), "bad.json")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.json")
	assert.Contains(t, err.Error(), "no workload")
}

func FuzzParseCalibration(f *testing.F) {
	b, err := json.Marshal(toyCal(toyWorkload()))
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cal, err := ParseCalibration(data, "fuzz")
		if err != nil {
			return
		}
		// What parses must run without panicking on a small scenario.
		if len(cal.Workload.Ops) > 64 {
			return
		}
		for _, mode := range Modes {
			_, _ = Run(cal, Scenario{Mode: mode, Nodes: 3, Procs: 2})
		}
	})
}
