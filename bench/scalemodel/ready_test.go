package scalemodel

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A probe finds its parent ready when the parent was ready as it
// arrived. Otherwise, backing off, the node waits the backoff, doubling
// to its cap; waiting at the parent, a serving parent holds the probe and
// answers when ready (half a round trip back), or after its bound, and a
// refused probe is retried at the first interval.
func TestAwaitParent(t *testing.T) {
	backoff := ProbeSchedule{Initial: 0.010, Max: 0.040, Policy: PolicyBackoff}
	hold := ProbeSchedule{Initial: 0.010, Max: 0.040, Policy: PolicyHold, Hold: 0.040}
	short := hold
	short.Hold = 0.005
	for _, tc := range []struct {
		name                  string
		p                     ProbeSchedule
		start, up, ready, hop float64
		want                  float64
	}{
		{"backoff: parent ready before the probe", backoff, 1, 0, 0.5, 0.002, 1.002},
		{"backoff: parent ready as the probe arrives", backoff, 1, 0, 1.001, 0.002, 1.002},
		{"backoff: one not-ready answer: wait 10 ms", backoff, 1, 0, 1.005, 0.002, 1 + 0.002 + 0.010 + 0.002},
		{"backoff: two: 10 then 20 ms", backoff, 1, 0, 1.015, 0.002, 1 + 2*0.002 + 0.030 + 0.002},
		{"backoff: the wait stops doubling at its cap", backoff, 0, 0, 0.2, 0, 0.01 + 0.02 + 0.04 + 0.04 + 0.04 + 0.04 + 0.04},
		{"hold: parent ready before the probe", hold, 1, 0, 0.5, 0.002, 1.002},
		{"hold: held until the parent is ready", hold, 1, 0, 1.005, 0.002, 1.005 + 0.001},
		{"hold: refused twice (10, 20 ms from each start), then held", hold, 1, 1.015, 1.040, 0.002, 1.040 + 0.001},
		{"hold: refused, retried every 10 ms without doubling", hold, 1, 1.035, 1.036, 0.002, 1.040 + 0.002},
		{"backoff: refused, the wait doubles", backoff, 1, 1.035, 1.036, 0.002, 1 + 0.010 + 0.020 + 0.040 + 4*0.002},
		{"hold: the bound runs out twice, the next probe at once", short, 1, 0, 1.019, 0.002, 1.019 + 0.001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, awaitParent(tc.start, tc.up, tc.ready, tc.hop, tc.p), 1e-12)
		})
	}
}

// Nodes that start together become ready level by level: the root at
// its start, its children after one probe (a 2 ms round trip here), and
// each deeper level after the backoff's next wait (10, then 20 ms) when
// backing off, or half a round trip after its parent when the parent
// holds the probe. The projection's launch adds the all-gather, or the
// facility book's parse, before any of it.
func TestTreeReadyLevelsAndLaunch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy string
		nodes  int
		launch string
		want   float64
	}{
		{"one node: its start", PolicyBackoff, 1, "", 0.020},
		{"depth 1: one probe", PolicyBackoff, 3, "", 0.022},
		{"backoff, depth 2: one backoff", PolicyBackoff, 7, "", 0.020 + 0.002 + 0.010 + 0.002},
		{"backoff, depth 3: the second wait doubled", PolicyBackoff, 15, "", 0.020 + 0.002 + 0.010 + 0.002 + 0.020 + 0.002},
		{"backoff, depth 3 after the all-gather", PolicyBackoff, 15, LaunchDiscover, 0.015 + 0.056},
		{"hold, depth 1: one probe", PolicyHold, 3, "", 0.022},
		{"hold, depth 3: half a round trip per level below the first", PolicyHold, 15, "", 0.020 + 0.002 + 0.001 + 0.001},
		{"hold, depth 3 after the facility book", PolicyHold, 15, LaunchBook, 0.001 + 15*0.0001 + 0.024},
		{"default policy: backoff", "", 7, "", 0.034},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cal := toyCal(toyWorkload())
			cal.Costs.NodeStart, cal.Costs.HopCPU = 0.020, 0.002
			cal.Costs.BookBase, cal.Costs.BookPerRank = 0.001, 0.0001
			if tc.launch == LaunchDiscover {
				cal.Costs.GatherPerRank = 0.001
			}
			cal.Probe.Policy = tc.policy
			r, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: tc.nodes, Fanout: 2, Procs: 1, Launch: tc.launch})
			require.NoError(t, err)
			assert.InDelta(t, tc.want, r.SetupS, 1e-12)
			assert.InDelta(t, cal.Costs.GatherPerRank*float64(tc.nodes), r.GatherS, 1e-12)
			if tc.launch == LaunchBook {
				assert.InDelta(t, 0.001+float64(tc.nodes)*0.0001, r.BookS, 1e-12)
			}
		})
	}
}

// Starts share the cores alike among the runnable threads, from each
// one's arrival.
func TestStartsShared(t *testing.T) {
	for _, tc := range []struct {
		name         string
		arrive, work []float64
		threads      float64
		cores        float64
		want         []float64
	}{
		{"two at once on one core end together", []float64{0, 0}, []float64{1, 1}, 1, 1, []float64{2, 2}},
		{"a later one shares what is left", []float64{0, 0.5}, []float64{1, 1}, 1, 1, []float64{1.5, 2}},
		{"enough cores: no wait", []float64{0, 0.25}, []float64{1, 1}, 1, 2, []float64{1, 1.25}},
		{"two threads each on two cores", []float64{0, 0}, []float64{1, 1}, 2, 2, []float64{1, 1}},
		{"arrival order, not rank order", []float64{1, 0}, []float64{0.5, 2}, 1, 1, []float64{2, 2.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := startsShared(tc.arrive, tc.work, tc.threads, tc.cores)
			assert.InDeltaSlice(t, tc.want, got, 1e-9)
		})
	}
}

// On the host, a node spawned late starts late: its children wait for
// it through the backoff (rounded up to the next probe) or, when the
// parent holds probes, about half a round trip after it.
func TestHostSpawnAndPolicy(t *testing.T) {
	setup := func(policy string, spawn []float64) float64 {
		cal := toyCal(toyWorkload())
		cal.HostCores, cal.HostAvailable = 2, 2
		cal.Costs.NodeStart, cal.Costs.NodeStartCPU, cal.Costs.HopCPU = 0.010, 0.010, 0.001
		cal.Probe.Policy = policy
		r, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: 3, Fanout: 2, Procs: 1, Host: true, Spawn: spawn})
		require.NoError(t, err)
		return r.SetupS
	}
	// Three starts of 10 ms CPU on two cores at once: 15 ms each.
	assert.InDelta(t, 0.015+0.001, setup(PolicyBackoff, nil), 1e-9)
	assert.InDelta(t, 0.015+0.001, setup(PolicyHold, nil), 1e-9)
	// The root spawned 50 ms late: its children (done at 10 ms, alone on
	// the two cores) probe at 10, 21, 42, 83 ms; the root is up at 60 ms.
	assert.InDelta(t, 0.083+0.001, setup(PolicyBackoff, []float64{0.050, 0, 0}), 1e-9)
	// Waiting at the parent: refused at 10, 20, … 50 ms (every 10 ms,
	// from each probe's start); the probe sent at 60 ms finds the root
	// up and ready.
	assert.InDelta(t, 0.060+0.001, setup(PolicyHold, []float64{0.050, 0, 0}), 1e-9)
}
