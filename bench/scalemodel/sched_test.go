package scalemodel

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A replay phase's schedstat says whether the host was saturated; if
// it was, the run was left what it got (its CPU less the start-up, over
// the run's time), at any window length.
func TestSchedAvailable(t *testing.T) {
	for _, tc := range []struct {
		name        string
		h           *HostWindow
		runS, start float64
		want        float64
		ok          bool
	}{
		{"none", nil, 1, 0, 0, false},
		{"no counters (old calibration, setups)", &HostWindow{WallS: 1, BusyS: 2, OwnS: 1}, 1, 0, 0, false},
		{"never waited: every core", &HostWindow{WallS: 0.03, OwnS: 0.02, ClientsRunS: 0.02}, 0.02, 0, 2, true},
		{"waited: what it got, short window", &HostWindow{WallS: 0.03, OwnS: 0.026, ClientsRunS: 0.02, ClientsWaitS: 0.01}, 0.02, 0.006, 1, true},
		{"got more than the cores: capped", &HostWindow{WallS: 1, OwnS: 3, ClientsRunS: 2, ClientsWaitS: 1}, 1, 0, 2, true},
		{"got almost nothing: the floor", &HostWindow{WallS: 1, OwnS: 0.01, ClientsRunS: 0.01, ClientsWaitS: 5}, 1, 0, 0.25, true},
		{"start-up beyond own: the replays' run time", &HostWindow{WallS: 1, OwnS: 0.5, ClientsRunS: 0.5, ClientsWaitS: 1}, 1, 0.4, 0.5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := tc.h.SchedAvailable(2, tc.runS, tc.start)
			assert.Equal(t, tc.ok, ok)
			assert.InDelta(t, tc.want, a, 1e-12)
		})
	}
}

// Check names the row whose schedstat counters are unusable.
func TestCheckRefusesBadSchedCounters(t *testing.T) {
	for _, h := range []*HostWindow{{WallS: 1, ClientsRunS: -1}, {WallS: 1, ClientsWaitS: -0.5}} {
		cal := toyCal(toyWorkload())
		cal.Measured = []MeasuredRow{{Mode: ModeDirect, Nodes: 4, Phase: "warm", Host: h}}
		err := cal.Check()
		require.Error(t, err)
		assert.True(t, strings.Contains(err.Error(), "measured row 0 (direct N=4 warm)"), err.Error())
	}
}

// Staging replays on each node's copy at its own measured syscall cost.
func TestStagedCopySyscallCost(t *testing.T) {
	for _, tc := range []struct {
		staged, want float64
	}{{0, 0.001}, {0.003, 0.003}} {
		w := toyWorkload()
		cal := toyCal(w)
		cal.Costs.ClientOpStaged = tc.staged
		r, err := Run(cal, Scenario{Mode: ModeStaging, Nodes: 1, Procs: 1})
		require.NoError(t, err)
		assert.InDelta(t, float64(len(w.Ops))*tc.want, r.WarmS, 1e-9, "staged %v", tc.staged)
	}
}

// Staging's tar -c is one thread: on a host the other jobs leave one
// core of two, it runs at full speed, where the extraction's N threads
// share what is left; its measured CPU beyond the requests is charged.
func TestTarCreateAtOneThreadsShare(t *testing.T) {
	w := toyWorkload()
	cal := toyCal(w)
	cal.HostCores, cal.HostAvailable = 2, 2
	cal.Costs.TarCreateCPU = 0.5
	run := func(avail, left float64) Result {
		r, err := Run(cal, Scenario{Mode: ModeStaging, Nodes: 1, Procs: 1, Host: true, Available: avail, Left: left})
		require.NoError(t, err)
		return r
	}
	idle, slowed, oneThread := run(2, 0), run(1, 0), run(1, 1)
	assert.Greater(t, slowed.SetupS, idle.SetupS+0.4, "the whole setup at half speed")
	assert.InDelta(t, idle.SetupS, oneThread.SetupS, 1e-9, "one thread on the core left: not slowed")
	assert.InDelta(t, idle.SetupCPUS, oneThread.SetupCPUS, 1e-9, "CPU seconds whatever the share")
	assert.InDelta(t, idle.SetupCPUS, slowed.SetupCPUS, 1e-9)
}
