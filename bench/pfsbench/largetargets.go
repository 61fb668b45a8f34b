package pfsbench

import (
	"fmt"
	"slices"
)

// largeTargets are the targets for the large-file workload.
func (res *Results) largeTargets() []Target {
	const (
		bytesGoal = "backend bytes read = 1.00× the file size"
		fastGoal  = "copper ≥ 5× faster than direct"
		seqGoal   = "warm sequential read ≥ 0.8× native page cache"
		mmapGoal  = "warm mmap+touch ≥ 0.8× native"
		memGoal   = "per-node RSS ≤ cache budget + 64 MiB"
		spillGoal = "spill usage ≤ spill budget"
	)
	l := res.Large
	names := []string{"large file: backend bytes / file size", "large file: direct / copper time", "large file: warm sequential read / native",
		"large file: warm mmap+touch / native", "large file: worst node RSS / (cache budget + 64 MiB)", "large file: worst node spill / spill budget",
		"large file, scale model: direct / copper time"}
	goals := []string{bytesGoal, fastGoal, seqGoal, mmapGoal, memGoal, spillGoal, fastGoal + " (server scaled to the reference machine's share per node)"}
	if l == nil || l.Error != "" {
		why := "not run"
		if l != nil {
			why = "failed: " + l.Error
		}
		out := make([]Target, len(names))
		for i := range names {
			out[i] = notMeasured(names[i], goals[i], why)
		}
		return slices.Insert(out, 6, notMeasured(dlopenTargetName, dlopenTargetGoal, why))
	}
	var worstRSS, worstSpill float64
	for _, m := range l.Memory {
		worstRSS = max(worstRSS, float64(m.RSSBytes)/float64(m.LimitBytes))
		if m.SpillBudget > 0 {
			worstSpill = max(worstSpill, float64(m.SpillBytes)/float64(m.SpillBudget))
		}
	}
	ts := []Target{
		{Name: names[0], Goal: goals[0], Value: float64(l.CopperBackendBytes) / float64(l.FileBytes), Limit: 1.0,
			Result: fmt.Sprintf("%.2f× (%d of %d bytes; direct: %.2f×)", float64(l.CopperBackendBytes)/float64(l.FileBytes),
				l.CopperBackendBytes, l.FileBytes, float64(l.DirectBackendBytes)/float64(l.FileBytes))},
		{Name: names[1], Goal: goals[1] + fmt.Sprintf(" (N=%d here; the issue's N is 32)", l.Nodes), Value: l.DirectS / l.CopperS, Limit: 5,
			Result: fmt.Sprintf("%.2f× (direct %.1f s, copper %.1f s)", l.DirectS/l.CopperS, l.DirectS, l.CopperS)},
		{Name: names[2], Goal: goals[2], Value: l.WarmSeqMiBs / l.NativeSeqMiBs, Limit: 0.8,
			Result: fmt.Sprintf("%.2f× (%.0f vs %.0f MiB/s)", l.WarmSeqMiBs/l.NativeSeqMiBs, l.WarmSeqMiBs, l.NativeSeqMiBs)},
		{Name: names[3], Goal: goals[3], Value: l.WarmMmapMiBs / l.NativeMmapMiBs, Limit: 0.8,
			Result: fmt.Sprintf("%.2f× (%.0f vs %.0f MiB/s)", l.WarmMmapMiBs/l.NativeMmapMiBs, l.WarmMmapMiBs, l.NativeMmapMiBs)},
		{Name: names[4], Goal: goals[4], Value: worstRSS, Limit: 1, Result: fmt.Sprintf("%.2f", worstRSS)},
		{Name: names[5], Goal: goals[5], Value: worstSpill, Limit: 1, Result: fmt.Sprintf("%.2f", worstSpill)},
	}
	ts[0].judge(true)
	ts[1].judge(false)
	ts[2].judge(false)
	ts[3].judge(false)
	ts[4].judge(true)
	ts[5].judge(true)
	ts = append(ts, l.dlopenTarget())
	sd, sc := l.pass("scale", ModeDirect), l.pass("scale", ModeCopper)
	if sd == nil || sc == nil || sc.WallS <= 0 {
		ts = append(ts, notMeasured(names[6], goals[6], "scale model not run"))
	} else {
		t := Target{Name: names[6], Goal: goals[6], Value: sd.WallS / sc.WallS, Limit: 5,
			Result: fmt.Sprintf("%.2f× (direct %.1f s, %s; copper %.1f s, %s)", sd.WallS/sc.WallS, sd.WallS, sd.Verdict, sc.WallS, sc.Verdict)}
		t.judge(false)
		ts = append(ts, t)
	}
	return ts
}

// pass returns the pass of model and mode, nil if not run.
func (l *LargeResult) pass(model, mode string) *LargeModeRow {
	for i := range l.Passes {
		if l.Passes[i].Model == model && l.Passes[i].Mode == mode {
			return &l.Passes[i]
		}
	}
	return nil
}

// The dlopen target's name and goal.
const (
	dlopenTargetName = "large file: every node maps and dlopens a large .so: backend bytes / library size"
	dlopenTargetGoal = "backend bytes read = 1.00× the library"
)

// dlopenTarget is the library every node maps and dlopens: read from the
// filesystem once.
func (l *LargeResult) dlopenTarget() Target {
	const name, goal = dlopenTargetName, dlopenTargetGoal
	d := l.Dlopen
	if d == nil || d.Skipped != "" || d.Bytes <= 0 {
		why := "not run"
		if d != nil && d.Skipped != "" {
			why = "not run: " + d.Skipped
		}
		return notMeasured(name, goal, why)
	}
	t := Target{Name: name, Goal: goal, Value: float64(d.BackendBytes) / float64(d.Bytes), Limit: 1,
		Result: fmt.Sprintf("%.2f× (%d of %d bytes of %s, %d nodes)", float64(d.BackendBytes)/float64(d.Bytes), d.BackendBytes, d.Bytes, d.Library, d.Nodes)}
	t.judge(true)
	return t
}
