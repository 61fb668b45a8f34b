package pfsbench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Issue9File holds the rows of issue #9's targets table that this
// benchmark measures; scripts/bench.sh puts them in that table, next to
// the rows scripts/issue9-bench.sh measures on real nodes.
const Issue9File = "issue9-rows.md"

// issue9Nodes is the node count of issue #9's slow-filesystem target.
const issue9Nodes = 8

// issue9Targets evaluates issue #9's targets from this run's rows: the
// warm real import, copper against direct over the emulated filesystem
// at N=8 (≥ 3×) and in the scale model at its N (≥ 5×), and the
// unchanged one backend operation per (path, kind) at the largest N and
// memory budget (after computeTargets).
func (res *Results) issue9Targets() []Target {
	var ts []Target
	name := "warm real `import numpy` through a non-root mount vs local disk"
	goal := "≤ 1.10×"
	if w := res.WarmImport; w != nil && w.LocalMedS > 0 {
		t := Target{Name: name, Goal: goal, Value: w.Ratio, Limit: 1.10}
		t.Result = fmt.Sprintf("%.2f× (%.1f ms vs %.1f ms, medians of %d alternating rounds)", w.Ratio, w.MountMedS*1e3, w.LocalMedS*1e3, w.Rounds)
		t.judge(true)
		ts = append(ts, t)
	} else {
		ts = append(ts, notMeasured(name, goal, "warm import not run"))
	}

	p := res.Settings.Procs
	ts = append(ts, fasterBy(
		fmt.Sprintf("cold replay over the emulated slow filesystem, N=%d × %d processes, direct vs copper", issue9Nodes, p),
		res.find(WorkReplay, ModeDirect, issue9Nodes, "cold"), res.find(WorkReplay, ModeCopper, issue9Nodes, "cold"),
		3, fmt.Sprintf("direct or copper cold replay at N=%d not run", issue9Nodes)))
	if sc := res.Settings.Scale; sc != nil {
		ts = append(ts, fasterBy(
			fmt.Sprintf("cold replay, scale model (%d×%d clients per server) at N=%d, direct vs copper", sc.RefNodes, sc.RefProcs, sc.Nodes),
			res.find(WorkScale, ModeDirect, sc.Nodes, "cold"), res.find(WorkScale, ModeCopper, sc.Nodes, "cold"),
			5, "direct or copper scale-model replay not run"))
	} else {
		ts = append(ts, notMeasured("cold replay, scale model, direct vs copper", "≥ 5× faster", "scale-model rows not run"))
	}

	maxN := 0
	for _, n := range res.Settings.ReplayNodes {
		maxN = max(maxN, n)
	}
	name = fmt.Sprintf("unchanged: server operations per (path, kind) under copper, cold replay, N=%d", maxN)
	goal = "= 1.00"
	if c := res.find(WorkReplay, ModeCopper, maxN, "cold"); c != nil && c.Backend != nil {
		t := Target{Name: name, Goal: goal, Value: c.Backend.Fetches.PerKey, Limit: 1.005}
		t.Result = fmt.Sprintf("%.2f (%d paths)", t.Value, c.Backend.Fetches.Paths)
		t.judge(true)
		ts = append(ts, t)
	} else {
		ts = append(ts, notMeasured(name, goal, "copper cold replay not run"))
	}
	// The memory budget, as issue #5's table judged it (computeTargets).
	name = "unchanged: " + memoryTargetName
	for _, t := range res.Targets {
		if t.Name == memoryTargetName {
			t.Name = name
			return append(ts, t)
		}
	}
	return append(ts, notMeasured(name, "RSS ≤ limit on every node", "not judged (issue #5's targets not computed)"))
}

// fasterBy judges direct's run time over copper's against "≥ limit×
// faster"; missing says why when either row is absent.
func fasterBy(name string, direct, copper *Row, limit float64, missing string) Target {
	goal := fmt.Sprintf("≥ %g× faster", limit)
	if direct == nil || copper == nil || copper.RunS <= 0 {
		return notMeasured(name, goal, missing)
	}
	t := Target{Name: name, Goal: goal, Value: direct.RunS / copper.RunS, Limit: limit}
	t.Result = fmt.Sprintf("%.2f× (direct %.3f s, copper %.3f s)", t.Value, direct.RunS, copper.RunS)
	t.judge(false)
	return t
}

// writeIssue9 writes Issue9File: table rows only, no header.
func (res *Results) writeIssue9(dir string) error {
	var b strings.Builder
	for _, t := range res.issue9Targets() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, t.Result, t.Goal, t.Verdict)
	}
	return os.WriteFile(filepath.Join(dir, Issue9File), []byte(b.String()), 0o644)
}
