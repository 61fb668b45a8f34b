package scalemodel

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bench/pfsbench"
)

// N daemons starting at once on the host: their measured CPU adds up on
// its cores (spread over the threads one start used alone), then each
// waits the rest of its N=1 wall time; without a measured CPU the wall
// time is charged as CPU, as before.
func TestDaemonStartsCompeteForTheHost(t *testing.T) {
	for _, tc := range []struct {
		name             string
		nodes, cores     int
		wall, cpu, setup float64
	}{
		{"one start is its wall time", 1, 2, 0.010, 0.004, 0.010},
		{"starts of one thread fill both cores", 8, 2, 0.010, 0.004, 4*0.004 + 0.006},
		{"a start over its wall time uses two threads", 8, 2, 0.010, 0.020, 8*0.020/2 + 0},
		// CPU 1.05 × the wall: about one thread, so no wait beyond it
		// (rounded up to two threads it left half the wall as a wait).
		{"a start just over its wall time: its parallelism, not two threads", 1, 2, 0.010, 0.0105, 0.010},
		{"eight such starts share both cores", 8, 2, 0.010, 0.0105, 8 * 0.0105 / 2},
		{"unmeasured CPU: the wall time as CPU", 8, 2, 0.010, 0, 4 * 0.010},
		{"one core", 4, 1, 0.010, 0.005, 4*0.005 + 0.005},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cal := toyCal(toyWorkload())
			cal.HostCores, cal.HostAvailable = tc.cores, float64(tc.cores)
			cal.Costs.NodeStart, cal.Costs.NodeStartCPU = tc.wall, tc.cpu
			// One tree per node: no readiness round trips, starts alone.
			r, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: tc.nodes, Trees: tc.nodes, Procs: 1, Host: true})
			require.NoError(t, err)
			assert.InDelta(t, tc.setup, r.SetupS, 1e-12)
		})
	}
}

// The hop's CPU fitted on the largest copper cold row recovers the hop
// that produced that row's CPU, never goes below the in-process floor,
// and is left alone without such a row.
func TestFitHopCPURecoversTheHop(t *testing.T) {
	base := toyCal(toyWorkload())
	base.HostCores, base.HostAvailable = 2, 2
	base.Costs.HopCPU, base.Costs.DaemonReq, base.Costs.ClientReq = 50e-6, 10e-6, 20e-6
	cpuWith := func(h float64, nodes int) float64 {
		c := *base
		c.Costs.HopCPU = h
		r, err := Run(&c, Scenario{Mode: ModeCopper, Nodes: nodes, Procs: 1, Host: true})
		require.NoError(t, err)
		return r.ColdCPUS
	}
	for _, tc := range []struct {
		name string
		rows []MeasuredRow
		want float64
	}{
		{"true hop 4× the floor", []MeasuredRow{{Mode: ModeCopper, Phase: "cold", Nodes: 4, CPUS: 1}, {Mode: ModeCopper, Phase: "cold", Nodes: 8, CPUS: cpuWith(200e-6, 8)}}, 200e-6},
		{"measured below the floor", []MeasuredRow{{Mode: ModeCopper, Phase: "cold", Nodes: 8, CPUS: cpuWith(10e-6, 8)}}, 50e-6},
		{"no copper row beyond N=1", []MeasuredRow{{Mode: ModeCopper, Phase: "cold", Nodes: 1, CPUS: 5}, {Mode: ModeDirect, Phase: "cold", Nodes: 8, CPUS: 5}}, 50e-6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cal := *base
			cal.Sources = map[string]string{}
			cal.Measured = tc.rows
			require.NoError(t, cal.fitHopCPU())
			assert.InDelta(t, tc.want, cal.Costs.HopCPU, 1e-9)
		})
	}
}

// The run's own setup CPU replaces the timed tar's and the wall time's
// CPU share; rows without it leave the calibration as it was.
func TestFitSetupCPU(t *testing.T) {
	row := func(mode string, n int, sc *pfsbench.SetupCPU) pfsbench.Row {
		return pfsbench.Row{Workload: pfsbench.WorkReplay, Mode: mode, Nodes: n, Phase: "cold", SetupCPU: sc}
	}
	for _, tc := range []struct {
		name                  string
		runs                  []pfsbench.Row
		startCPU, xCPU, xWall float64
	}{
		{"both recorded", []pfsbench.Row{row(pfsbench.ModeCopper, 1, &pfsbench.SetupCPU{DaemonStartS: 0.03}), row(pfsbench.ModeStaging, 1, &pfsbench.SetupCPU{ExtractS: 0.5})}, 0.03, 0.5, 0.6},
		{"only N>1 rows", []pfsbench.Row{row(pfsbench.ModeCopper, 4, &pfsbench.SetupCPU{DaemonStartS: 0.3})}, 0, 1.2, 1.3},
		{"old results", []pfsbench.Row{row(pfsbench.ModeCopper, 1, nil)}, 0, 1.2, 1.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cal := toyCal(toyWorkload())
			cal.Sources = map[string]string{}
			cal.Costs.TarExtract, cal.Costs.TarExtractCPU = 1.3, 1.2 // timed after the run: 0.1 s of disk wait
			fitSetupCPU(cal, &pfsbench.Results{Runs: tc.runs})
			assert.InDelta(t, tc.startCPU, cal.Costs.NodeStartCPU, 1e-12)
			assert.InDelta(t, tc.xCPU, cal.Costs.TarExtractCPU, 1e-12)
			assert.InDelta(t, tc.xWall, cal.Costs.TarExtract, 1e-12)
		})
	}
}

func TestWithinNoise(t *testing.T) {
	for _, tc := range []struct {
		v    ValidationRow
		want bool
	}{
		{ValidationRow{Measured: 0.05, Modelled: 0.08, Scatter: 0.04}, true},
		{ValidationRow{Measured: 0.05, Modelled: 0.08, Scatter: 0.02}, false},
		{ValidationRow{Measured: 0.05, Modelled: 0.02, Scatter: 0.031}, true},
		{ValidationRow{Measured: 0.05, Modelled: 0.05}, false}, // no scatter recorded: nothing to be within
	} {
		assert.Equal(t, tc.want, tc.v.WithinNoise(), "%+v", tc.v)
	}
}

// The worker's start-up CPU is measured on the real pfsbench binary (built
// here) up to its ready, and a binary that never says ready is an error
// naming it.
func TestMeasureWorkerStart(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pfsbench")
	build := exec.Command("go", "build", "-o", bin, "github.com/hpc-copper/copper/bench/cmd/pfsbench")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	trace := filepath.Join(dir, "import.strace")
	require.NoError(t, os.WriteFile(trace, []byte(`open("/x/site/pkg/__init__.py", O_RDONLY|O_CLOEXEC) = 3
read(3, ""..., 4096) = 6
close(3) = 0
`), 0o644))
	cal := toyCal(toyWorkload())
	cal.Sources = map[string]string{}
	require.NoError(t, cal.measureWorkerStart(context.Background(), bin, trace))
	assert.Greater(t, cal.Costs.WorkerStartCPU, 0.0)
	assert.Less(t, cal.Costs.WorkerStartCPU, 1.0, "a Go start and a three-line parse")
	assert.Contains(t, cal.Sources["costs.worker_start_cpu_s"], "replay-worker")

	err = cal.measureWorkerStart(context.Background(), "/bin/true", trace)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/bin/true")
}

// A worker's start-up CPU is in the run's rusage once per node and phase,
// never in its time.
func TestWorkerStartInCPUNotTime(t *testing.T) {
	for _, nodes := range []int{1, 4, 32} {
		cal := toyCal(toyWorkload())
		base, err := Run(cal, Scenario{Mode: ModeStaging, Nodes: nodes, Procs: 2, Host: true})
		require.NoError(t, err)
		cal.Costs.WorkerStartCPU = 0.005
		r, err := Run(cal, Scenario{Mode: ModeStaging, Nodes: nodes, Procs: 2, Host: true})
		require.NoError(t, err)
		assert.InDelta(t, base.ColdCPUS+float64(nodes)*0.005, r.ColdCPUS, 1e-12)
		assert.InDelta(t, base.WarmCPUS+float64(nodes)*0.005, r.WarmCPUS, 1e-12)
		assert.Equal(t, base.ColdS, r.ColdS)
		assert.Equal(t, base.WarmS, r.WarmS)
		p, err := Run(cal, Scenario{Mode: ModeStaging, Nodes: nodes, Procs: 2})
		require.NoError(t, err)
		assert.Zero(t, p.WarmCPUS, "the projection reports no host CPU")
	}
}

// The N=1 fits take the worker's start-up CPU off each clients' figure
// before dividing by the operations (one worker at N=1).
func TestFitCostsTakesOffTheWorkerStart(t *testing.T) {
	w := toyWorkload()
	ops := func(n int64) *pfsbench.Backend {
		return &pfsbench.Backend{Ops: map[string]int64{"lookup": n}, DataBytes: 1000}
	}
	row := func(mode, phase string, clients float64, b *pfsbench.Backend) pfsbench.Row {
		return pfsbench.Row{Workload: pfsbench.WorkReplay, Mode: mode, Nodes: 1, Phase: phase, CPUClientsS: clients, Backend: b}
	}
	res := &pfsbench.Results{Runs: []pfsbench.Row{
		row(pfsbench.ModeLocal, "cold", 0.010, nil),
		row(pfsbench.ModeDirect, "cold", 0.050, ops(20)),
		row(pfsbench.ModeDirect, "warm", 0.030, ops(10)),
		row(pfsbench.ModeCopper, "cold", 0.040, ops(5)),
		row(pfsbench.ModeCopper, "warm", 0.014, nil),
	}}
	res.Settings.Procs = 2
	procOps := float64(2 * len(w.Ops))
	for _, start := range []float64{0, 0.002, 0.006} {
		cal := toyCal(w)
		cal.Sources = map[string]string{}
		cal.Costs.WorkerStartCPU = start
		require.NoError(t, fitCosts(cal, res, w))
		assert.InDelta(t, (0.010-start)/procOps, cal.Costs.ClientOpNative, 1e-12, "start %v", start)
		assert.InDelta(t, (0.014-start)/procOps, cal.Costs.ClientOpMount, 1e-12, "start %v", start)
		// What a request costs the client is the same either way: the
		// start comes off both its row and the mount's syscalls.
		assert.InDelta(t, (0.030-0.014)/10, cal.Costs.ClientReq, 1e-12, "start %v", start)
	}
}

// A run without its N=1 copper cold row is refused by name, not a
// nil dereference.
func TestFitCostsNamesAMissingCopperColdRow(t *testing.T) {
	w := toyWorkload()
	ops := &pfsbench.Backend{Ops: map[string]int64{"lookup": 10}, DataBytes: 1000}
	row := func(mode, phase string, b *pfsbench.Backend) pfsbench.Row {
		return pfsbench.Row{Workload: pfsbench.WorkReplay, Mode: mode, Nodes: 1, Phase: phase, CPUClientsS: 0.01, Backend: b}
	}
	res := &pfsbench.Results{Runs: []pfsbench.Row{
		row(pfsbench.ModeLocal, "cold", nil),
		row(pfsbench.ModeDirect, "cold", ops),
		row(pfsbench.ModeDirect, "warm", ops),
		row(pfsbench.ModeCopper, "warm", nil),
	}}
	res.Settings.Procs = 2
	cal := toyCal(w)
	cal.Sources = map[string]string{}
	err := fitCosts(cal, res, w)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no N=1 copper cold replay row")
}

// Staging's tarball reads cost the emulator its measured CPU per tarball
// byte when the run recorded it (fitSetupCPU from the N=1 row), instead
// of the per-request and per-byte costs fitted on the trace's small files.
func TestEmulatorTarballCPU(t *testing.T) {
	w := toyWorkload()
	w.Tree = TreeSize{Files: 2, Dirs: 1, Bytes: 1010}
	cal := toyCal(w)
	cal.Sources = map[string]string{}
	cal.HostCores, cal.HostAvailable = 2, 2
	cal.Costs.EmulatorOp, cal.Costs.EmulatorByte = 0.001, 1e-6
	setupCPU := func(nodes int) float64 {
		r, err := Run(cal, Scenario{Mode: ModeStaging, Nodes: nodes, Procs: 1, Host: true})
		require.NoError(t, err)
		return r.SetupCPUS
	}
	cal.Costs.TarExtract, cal.Costs.TarExtractCPU = 0.2, 0.2
	before1, before4 := setupCPU(1), setupCPU(4)
	row := pfsbench.Row{Workload: pfsbench.WorkReplay, Mode: pfsbench.ModeStaging, Nodes: 1, Phase: "cold",
		SetupCPU: &pfsbench.SetupCPU{ExtractS: 0.2, ExtractEmulatorS: 0.5}}
	fitSetupCPU(cal, &pfsbench.Results{Runs: []pfsbench.Row{row}})
	require.InDelta(t, 0.5/float64(w.TarBytes()), cal.Costs.EmulatorTar, 1e-15)
	assert.Contains(t, cal.Sources["costs.emulator_tarbyte_s"], "schedstat")
	// Per node: one tarball read's charge is now 0.5 s, whatever it was.
	old := 0.001*float64(chunks(w.TarBytes())) + 1e-6*float64(w.TarBytes())
	assert.InDelta(t, before1-old+0.5, setupCPU(1), 1e-9)
	assert.InDelta(t, before4+4*(0.5-old), setupCPU(4), 1e-9)
}

// The emulator's extraction CPU on this host: the line through the
// setups' (N, CPU) below the held-out N, a part per node and one per
// setup; one count or a falling line: the mean per node.
func TestFitEmulatorTar(t *testing.T) {
	row := func(n int, cpu float64) pfsbench.Row {
		return pfsbench.Row{Workload: pfsbench.WorkReplay, Mode: pfsbench.ModeStaging, Nodes: n, Phase: "cold",
			SetupCPU: &pfsbench.SetupCPU{ExtractS: 1, ExtractEmulatorS: cpu}}
	}
	for _, tc := range []struct {
		name           string
		runs           []pfsbench.Row
		fit            []int
		perNode, setup float64
	}{
		{"a line: 0.3 s per setup, 0.045 s per node", []pfsbench.Row{row(4, 0.48), row(8, 0.66), row(32, 9)}, []int{4, 8}, 0.045, 0.3},
		{"one count: its mean per node", []pfsbench.Row{row(4, 0.48)}, []int{4}, 0.12, 0},
		{"a falling line: the mean per node", []pfsbench.Row{row(4, 0.8), row(8, 0.4)}, []int{4, 8}, 1.2 / 12, 0},
		{"nothing recorded", []pfsbench.Row{row(4, 0)}, []int{4}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			perByte, setup := fitEmulatorTar(&pfsbench.Results{Runs: tc.runs}, tc.fit, 1000)
			assert.InDelta(t, tc.perNode, perByte*1000, 1e-12)
			assert.InDelta(t, tc.setup, setup, 1e-12)
		})
	}
}
