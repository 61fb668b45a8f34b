package pfsbench

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Several runs of one mode at one N keep one whole row per phase: the
// median by setup + cold run (cold) or run (warm), failed runs left out
// of the ranking but not of the values.
func TestKeepMedians(t *testing.T) {
	run := func(cold, setup, warm float64, failed bool) []Row {
		c := Row{Phase: "cold", RunS: cold, SetupS: setup, TotalS: cold + setup, CPUClientsS: cold * 2}
		w := Row{Phase: "warm", RunS: warm, CPUClientsS: warm * 2}
		if failed {
			c.Error, w.Error = "boom", "boom"
		}
		return []Row{c, w}
	}
	for _, tc := range []struct {
		name               string
		runs               [][]Row
		wantCold, wantWarm float64 // the kept rows' RunS
		wantKeptCold       int
	}{
		{"odd count: the middle", [][]Row{run(0.3, 0, 0.01, false), run(0.1, 0, 0.05, false), run(0.2, 0, 0.03, false)}, 0.2, 0.03, 2},
		{"even count: the lower middle", [][]Row{run(0.4, 0, 0.04, false), run(0.1, 0, 0.01, false), run(0.3, 0, 0.03, false), run(0.2, 0, 0.02, false)}, 0.2, 0.02, 3},
		{"cold ranked with its setup", [][]Row{run(0.1, 2.0, 0.01, false), run(0.3, 0.1, 0.01, false), run(0.2, 0.1, 0.01, false)}, 0.3, 0.01, 1},
		{"a failed run is not kept", [][]Row{run(0.2, 0, 0.02, true), run(0.1, 0, 0.01, false), run(0.3, 0, 0.03, false)}, 0.1, 0.01, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rows []Row
			for _, r := range tc.runs {
				rows = append(rows, r...)
			}
			got := keepMedians(rows)
			require.Len(t, got, 2)
			assert.Equal(t, "cold", got[0].Phase)
			assert.InDelta(t, tc.wantCold, got[0].RunS, 1e-12)
			assert.InDelta(t, 2*tc.wantCold, got[0].CPUClientsS, 1e-12, "the kept row is one whole run")
			assert.InDelta(t, tc.wantWarm, got[1].RunS, 1e-12)
			require.NotNil(t, got[0].Repeat)
			assert.Equal(t, len(tc.runs), got[0].Repeat.Runs)
			assert.Len(t, got[0].Repeat.Values, len(tc.runs))
			assert.Equal(t, tc.wantKeptCold, got[0].Repeat.Kept)
			assert.Equal(t, "total_s", got[0].Repeat.Key)
			assert.Equal(t, "run_s", got[1].Repeat.Key)
		})
	}
}

// Every run failed: the phase keeps its first row, error and all.
func TestKeepMediansAllFailed(t *testing.T) {
	rows := []Row{{Phase: "cold", Error: "a"}, {Phase: "warm", Error: "a"}, {Phase: "cold", Error: "b"}, {Phase: "warm", Error: "b"}}
	got := keepMedians(rows)
	require.Len(t, got, 2)
	assert.Equal(t, "a", got[0].Error)
	assert.Nil(t, got[0].Repeat)
}

func TestRepeatNote(t *testing.T) {
	assert.Empty(t, repeatNote([]Row{{Nodes: 1}, {Nodes: 4}}))
	note := repeatNote([]Row{{Nodes: 1, Repeat: &Repeat{Runs: 5}}, {Nodes: 1, Repeat: &Repeat{Runs: 5}}, {Nodes: 4}})
	assert.Contains(t, note, "N = 1 are each the median of 5 runs")
}
