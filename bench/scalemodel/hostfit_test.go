package scalemodel

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bench/pfsbench"
)

// A row's window says what the other jobs left the run; windows too
// short for /proc/stat's ticks say nothing, and the run's windows
// together give its mean.
func TestHostWindowAvailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    *HostWindow
		want float64
		ok   bool
	}{
		{"none", nil, 0, false},
		{"too short", &HostWindow{WallS: 0.05, BusyS: 0.1, OwnS: 0.05}, 0, false},
		{"others took one core", &HostWindow{WallS: 1, BusyS: 2, OwnS: 1}, 1, true},
		{"idle but us", &HostWindow{WallS: 1, BusyS: 0.5, OwnS: 0.6}, 2, true},
		{"others took all: the floor", &HostWindow{WallS: 1, BusyS: 2, OwnS: 0}, 0.25, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := tc.h.Available(2)
			assert.Equal(t, tc.ok, ok)
			assert.InDelta(t, tc.want, a, 1e-12)
		})
	}
	cal := &Calibration{HostCores: 2, Measured: []MeasuredRow{
		{Host: &HostWindow{WallS: 0.05, BusyS: 0.1, OwnS: 0}},
		{Host: &HostWindow{WallS: 0.95, BusyS: 1.9, OwnS: 1.4}, SetupHost: &HostWindow{WallS: 1, BusyS: 2, OwnS: 1.5}},
	}}
	a, ok := cal.RunAvailable()
	require.True(t, ok)
	assert.InDelta(t, 2-(0.1+0.5+0.5)/2, a, 1e-12)
	_, ok = (&Calibration{HostCores: 2}).RunAvailable()
	assert.False(t, ok)
}

// The host's per-operation costs come from the rows below the largest
// N pooled (sums of CPU and operations), N=1 (one worker alone, on its
// own costs) and the largest N (held out) left out; the cluster node's
// stay N=1's.
func TestHostCostsPooledBelowTheHeldOutN(t *testing.T) {
	w := toyWorkload()
	procOps := float64(2 * len(w.Ops))
	row := func(mode, phase string, n int, clients float64, reqs int64) pfsbench.Row {
		r := pfsbench.Row{Workload: pfsbench.WorkReplay, Mode: mode, Nodes: n, Phase: phase, CPUClientsS: clients}
		if reqs > 0 {
			r.Backend = &pfsbench.Backend{Ops: map[string]int64{"lookup": reqs}, DataBytes: 1000 * int64(n)}
		}
		return r
	}
	var runs []pfsbench.Row
	// Per node: 0.004 s of start-up, and the syscalls 3 ms at N=1, 2 ms beyond.
	for _, n := range []int{1, 4, 8} {
		per := 0.002
		if n == 1 {
			per = 0.003
		}
		clients := float64(n) * (0.004 + per*procOps)
		runs = append(runs, row(pfsbench.ModeLocal, "cold", n, clients, 0), row(pfsbench.ModeCopper, "warm", n, clients, 0),
			row(pfsbench.ModeDirect, "warm", n, clients+float64(n)*0.01, 10*int64(n)), row(pfsbench.ModeDirect, "cold", n, clients+float64(n)*0.01, 10*int64(n)))
	}
	// Daemon starts: 20 ms alone, 12 ms each of four.
	for n, cpu := range map[int]float64{1: 0.020, 4: 0.048, 32: 9} {
		r := row(pfsbench.ModeCopper, "cold", n, 0, 0)
		r.SetupCPU = &pfsbench.SetupCPU{DaemonStartS: cpu}
		runs = append(runs, r)
	}
	runs = append(runs, row(pfsbench.ModeLocal, "cold", 32, 99, 0)) // held out: must not move the fit
	res := &pfsbench.Results{Runs: runs}
	res.Settings.Procs = 2
	cal := toyCal(w)
	cal.Sources = map[string]string{}
	cal.Costs.WorkerStartCPU, cal.Costs.NodeStartCPU = 0.004, 0.020
	require.NoError(t, cal.fitHostCosts(res, w))
	assert.InDelta(t, 0.048/4, cal.HostCosts.NodeStartCPU, 1e-12)
	assert.Equal(t, 32, cal.HeldOutNodes)
	assert.Equal(t, []int{4, 8}, cal.FitNodes)
	wantOp := (4*0.002 + 8*0.002) / 12 // Σ per-op CPU × nodes / Σ nodes
	assert.InDelta(t, wantOp, cal.HostCosts.ClientOpNative, 1e-12)
	assert.InDelta(t, wantOp, cal.HostCosts.ClientOpMount, 1e-12)
	assert.InDelta(t, 0.001, cal.HostCosts.ClientReq, 1e-12) // 0.01 s over 10 requests per node
	host := cal.Costs.onHost(cal.HostCosts)
	assert.InDelta(t, wantOp, host.ClientOpMount, 1e-12)
	assert.InDelta(t, cal.Costs.NodeStart, host.NodeStart, 0, "the rest stays the cluster node's")
}

// A run that keeps fewer cores busy than the other jobs left it is not
// slowed; one that wants more gets what is left.
func TestSpeedShare(t *testing.T) {
	for _, tc := range []struct {
		name             string
		avail, want, got float64
	}{
		{"wants less than it is left", 1.2, 0.7, 2},
		{"wants exactly what it is left", 0.7, 0.7, 2},
		{"one thread, half a core left", 0.5, 1, 1},
		{"saturating, one core left", 1, 5, 1},
		{"wants both cores, 1.5 left", 1.5, 2, 1.5},
		{"unknown demand: not slowed", 0.5, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.got, SpeedShare(2, tc.avail, tc.want), 1e-12)
		})
	}
}

// The call between two processes is measured against the real
// `scalemodel hop-server` (built here); a binary that is not one is an
// error naming it.
func TestMeasureHopProcesses(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "scalemodel")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/hpc-copper/copper/bench/cmd/scalemodel").CombinedOutput()
	require.NoError(t, err, "%s", out)
	perCall, perByte, err := measureHopProcesses(context.Background(), bin)
	require.NoError(t, err)
	assert.Greater(t, perCall, 0.0)
	assert.Less(t, perCall, 0.1, "one small round trip")
	assert.GreaterOrEqual(t, perByte, 0.0)
	_, _, err = measureHopProcesses(context.Background(), "/bin/true")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/bin/true")
}

// With this host's costs fitted, the hop fitted on a measured row is
// this host's; a cluster node keeps the measured call.
func TestFitHopCPUOnTheHostOnly(t *testing.T) {
	base := toyCal(toyWorkload())
	base.HostCores, base.HostAvailable = 2, 2
	base.Costs.HopCPU, base.Costs.DaemonReq, base.Costs.ClientReq = 50e-6, 10e-6, 20e-6
	host := base.Costs
	base.HostCosts = &host
	c := *base
	hc := host
	hc.HopCPU = 200e-6
	c.HostCosts = &hc
	r, err := Run(&c, Scenario{Mode: ModeCopper, Nodes: 8, Procs: 1, Host: true})
	require.NoError(t, err)
	cal := *base
	cal.Sources = map[string]string{}
	cal.Measured = []MeasuredRow{{Mode: ModeCopper, Phase: "cold", Nodes: 8, CPUS: r.ColdCPUS}}
	require.NoError(t, cal.fitHopCPU())
	assert.InDelta(t, 200e-6, cal.HostCosts.HopCPU, 1e-9)
	assert.InDelta(t, 50e-6, cal.Costs.HopCPU, 0)
	assert.InDelta(t, 50e-6, base.HostCosts.HopCPU, 0, "the fit copies, never writes through")
	assert.Contains(t, cal.Sources["host_costs.hop_cpu_s"], "fitted")
}

// On the host, a row of one node runs on the N=1 costs it was fitted on
// (one worker alone); rows of several nodes on the host's pooled costs.
func TestOneNodeOnItsOwnCosts(t *testing.T) {
	cal := toyCal(toyWorkload())
	cal.HostCores, cal.HostAvailable = 2, 2
	host := cal.Costs
	host.ClientOpNative, host.ClientOpMount = 0.0005, 0.0005
	cal.HostCosts = &host
	perNode := func(nodes int) float64 {
		r, err := Run(cal, Scenario{Mode: ModeStaging, Nodes: nodes, Procs: 1, Host: true})
		require.NoError(t, err)
		return r.WarmCPUS / float64(nodes)
	}
	ops := float64(len(toyWorkload().Ops))
	assert.InDelta(t, ops*0.001, perNode(1), 1e-12, "N=1: the cluster node's 1 ms per syscall")
	assert.InDelta(t, ops*0.0005, perNode(4), 1e-12, "N=4: the host's 0.5 ms")
}

// A run of N=1 and one larger N only pools N=1 (nothing else below it).
func TestHoldOutKeepsNOneWhenAlone(t *testing.T) {
	res := &pfsbench.Results{Runs: []pfsbench.Row{{Workload: pfsbench.WorkReplay, Nodes: 1}, {Workload: pfsbench.WorkReplay, Nodes: 32}}}
	held, fit := holdOut(res)
	assert.Equal(t, 32, held)
	assert.Equal(t, []int{1}, fit)
	res.Runs = append(res.Runs, pfsbench.Row{Workload: pfsbench.WorkReplay, Nodes: 8})
	held, fit = holdOut(res)
	assert.Equal(t, 32, held)
	assert.Equal(t, []int{8}, fit)
}
