package scalemodel

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bench/pfsbench"
)

// The calibration takes the readiness policy the measured copper
// reported, and this code's (backing off) from a run that did not.
func TestReadinessOf(t *testing.T) {
	for _, tc := range []struct {
		name, recorded, want string
	}{
		{"held probes reported", pfsbench.ReadyHold, PolicyHold},
		{"no held probes", pfsbench.ReadyBackoff, PolicyBackoff},
		{"not recorded", "", PolicyBackoff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cal := &Calibration{Sources: map[string]string{}}
			res := &pfsbench.Results{Runs: []pfsbench.Row{
				{Workload: pfsbench.WorkReplay, Mode: pfsbench.ModeDirect, Nodes: 1, Phase: "cold"},
				{Workload: pfsbench.WorkReplay, Mode: pfsbench.ModeCopper, Nodes: 4, Phase: "cold", ReadyPolicy: tc.recorded},
			}}
			cal.readinessOf(res)
			assert.Equal(t, tc.want, cal.Probe.Policy)
			assert.Equal(t, tc.want, cal.ReadyProbe().Policy)
			assert.NotEmpty(t, cal.Sources["ready_probe.policy"])
			assert.Positive(t, cal.ReadyProbe().Hold)
		})
	}
}

// The wake-up wait per request is what a measured round trip took
// beyond the model's (service time and CPU), never negative.
func TestWake(t *testing.T) {
	cal := &Calibration{Emulator: Server{MetadataService: 300e-6}, Costs: Costs{ClientReq: 50e-6, EmulatorOp: 50e-6}}
	assert.Zero(t, cal.Wake(), "no round trip measured")
	// 100 opens, 200 requests: modelled 100 × 300 µs + 200 × 100 µs = 50 ms.
	cal.RoundTrip = &RoundTrip{Opens: 100, Requests: 200, WallS: 0.070}
	assert.InDelta(t, 0.050, cal.RoundTrip.Modelled(cal), 1e-12)
	assert.InDelta(t, 100e-6, cal.Wake(), 1e-12)
	cal.RoundTrip.WallS = 0.040
	assert.Zero(t, cal.Wake(), "faster than modelled: no wait added")
}

// The N=1 start's wait for a CPU (the host's other jobs) is not part of
// a node's start.
func TestFitNodeStart(t *testing.T) {
	cal := &Calibration{Sources: map[string]string{}, Costs: Costs{NodeStart: 0.100}}
	r := pfsbench.Row{SetupS: 0.100, SetupCPU: &pfsbench.SetupCPU{DaemonStartS: 0.016},
		Daemons: []pfsbench.DaemonStart{{DaemonCPUS: 0.009, DaemonWaitS: 0.070}}}
	fitNodeStart(cal, r)
	assert.InDelta(t, 0.030, cal.Costs.NodeStart, 1e-12)
	r.Daemons[0].DaemonWaitS = 0.095
	fitNodeStart(cal, r)
	assert.InDelta(t, 0.016, cal.Costs.NodeStart, 1e-12, "never below its CPU")
	r.Daemons[0].DaemonWaitS = 0
	cal.Costs.NodeStart = 0.100
	fitNodeStart(cal, r)
	assert.InDelta(t, 0.100, cal.Costs.NodeStart, 1e-12, "no wait recorded: as measured")
}

// Reading a facility's book costs a node more with more entries.
func TestMeasureBook(t *testing.T) {
	cal := &Calibration{Sources: map[string]string{}}
	require.NoError(t, cal.measureBook(context.Background()))
	assert.Positive(t, cal.Costs.BookPerRank)
	assert.GreaterOrEqual(t, cal.Costs.BookBase, 0.0)
	assert.Contains(t, cal.Sources["costs.book_per_rank_s"], "8300 entries")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.Error(t, cal.measureBook(ctx), "a cancelled calibration stops")
}
