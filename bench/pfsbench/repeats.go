package pfsbench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// Repeat says that a row is the median of several runs of its mode at its
// N, each from a fresh setup (a new emulator, new daemons or copies):
// the rows at N ≤ Config.RepeatMaxNodes, whose phases last tens of
// milliseconds, where one run on a shared host is mostly its noise (the
// scale model fits a cluster node's costs on the N=1 rows). The row kept
// is one whole run (its time, CPU and counters belong together), the one
// whose key is the median; the others' keys are kept here.
type Repeat struct {
	Runs int `json:"runs"`
	// Key names what was ranked: "total_s" for a cold row (its setup and
	// cold run: the setup is measured there too), "run_s" for a warm one.
	Key string `json:"key"`
	// Values are every run's key in run order; Kept is the kept run's index.
	Values []float64 `json:"values"`
	Kept   int       `json:"kept"`
}

// runRepeated runs mode at n nodes once, or Config.Repeats times for a
// replay at n ≤ Config.RepeatMaxNodes, and then keeps each phase's
// median run.
func (r *runner) runRepeated(ctx context.Context, work, mode string, n int) {
	runs := 1
	if work == WorkReplay && n <= r.cfg.RepeatMaxNodes {
		runs = max(1, r.cfg.Repeats)
	}
	start := len(r.res.Runs)
	for i := range runs {
		if i > 0 && ctx.Err() != nil {
			break
		}
		if i > 0 {
			r.progress("%s N=%d %s: run %d of %d (each phase keeps its median run)", mode, n, work, i+1, runs)
		}
		r.runMode(ctx, work, mode, n)
	}
	if runs > 1 {
		r.res.Runs = append(r.res.Runs[:start], keepMedians(r.res.Runs[start:])...)
	}
}

// keepMedians reduces the rows of several runs of one mode at one N to
// one row per phase, in the phases' first order: the successful run whose
// key is the median (the lower of the two middle ones for an even count),
// or, when every run of the phase failed, its first row.
func keepMedians(rows []Row) []Row {
	var phases []string
	byPhase := map[string][]Row{}
	for _, row := range rows {
		if _, ok := byPhase[row.Phase]; !ok {
			phases = append(phases, row.Phase)
		}
		byPhase[row.Phase] = append(byPhase[row.Phase], row)
	}
	var kept []Row
	for _, ph := range phases {
		all := byPhase[ph]
		key, keyName := func(r Row) float64 { return r.RunS }, "run_s"
		if ph == "cold" {
			key, keyName = func(r Row) float64 { return r.TotalS }, "total_s"
		}
		var ok []int
		rep := &Repeat{Runs: len(all), Key: keyName}
		for i, row := range all {
			rep.Values = append(rep.Values, key(row))
			if row.Error == "" {
				ok = append(ok, i)
			}
		}
		if len(ok) == 0 {
			kept = append(kept, all[0])
			continue
		}
		slices.SortStableFunc(ok, func(a, b int) int { return cmp.Compare(key(all[a]), key(all[b])) })
		rep.Kept = ok[(len(ok)-1)/2]
		row := all[rep.Kept]
		row.Repeat = rep
		kept = append(kept, row)
	}
	return kept
}

// repeatNote is a paragraph saying which rows are medians of several
// runs ("" if none).
func repeatNote(rows []Row) string {
	runs, seen := 0, map[int]bool{}
	var nodes []string
	for _, r := range rows {
		if r.Repeat != nil && r.Repeat.Runs > 1 {
			runs = max(runs, r.Repeat.Runs)
			if !seen[r.Nodes] {
				seen[r.Nodes] = true
				nodes = append(nodes, fmt.Sprint(r.Nodes))
			}
		}
	}
	if runs == 0 {
		return ""
	}
	return fmt.Sprintf("The replay rows at N = %s are each the median of %d runs (`--repeats`), every run from a fresh setup: "+
		"the cold row is the run whose setup + cold run is the median, the warm row the run whose warm run is; each kept run is whole "+
		"(its time, CPU and counters; every run's value is in results.json's `repeat`). The other rows are one run each.\n\n",
		strings.Join(nodes, ", "), runs)
}
