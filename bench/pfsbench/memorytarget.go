package pfsbench

import "fmt"

// memoryTarget: the worst node's RSS against its limit.
func (res *Results) memoryTarget() Target {
	name := memoryTargetName
	goal := "RSS ≤ limit on every node"
	var worst *NodeMemory
	for _, r := range res.Runs {
		for i := range r.Memory {
			m := &r.Memory[i]
			if worst == nil || float64(m.RSSBytes)/float64(m.LimitBytes) > float64(worst.RSSBytes)/float64(worst.LimitBytes) {
				worst = m
			}
		}
	}
	if worst == nil {
		return notMeasured(name, goal, "no copper node measured")
	}
	t := Target{Name: name, Goal: goal, Value: float64(worst.RSSBytes) / float64(worst.LimitBytes), Limit: 1}
	t.Result = fmt.Sprintf("worst node: RSS %.1f MiB, cache %.1f MiB, limit %.1f MiB (%.2f of it)",
		mib(worst.RSSBytes), mib(worst.CacheBytes), mib(worst.LimitBytes), t.Value)
	t.judge(true)
	return t
}

// memoryTargetName names the memory-budget target (issue #9 repeats it).
const memoryTargetName = "per-node memory vs cached bytes × 1.2 + 40 MiB"
