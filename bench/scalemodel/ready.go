package scalemodel

import (
	"cmp"
	"math"
	"slices"
)

// Copper's setup: every node's copper-node starts (its launcher's
// command, then the daemon it execs, until its server accepts requests:
// registered), then each non-root node learns from its parent that the
// tree above it can serve (node.AwaitParent: tree-ready), then it mounts
// and its command returns. The setup ends when the last command returns.

// treeReady is the setup's end, the slowest node's return.
func (s *sim) treeReady() float64 {
	up, rest := s.registrations()
	hop := s.k.HopCPU // a probe's round trip: both ends' CPU
	if s.host == nil {
		hop += 2 * s.cal.Machine.NetLatency
	}
	p := s.cal.ReadyProbe()
	ready := make([]float64, len(s.nodes))
	var last float64
	for n, ns := range s.nodes { // parents have lower ranks
		ready[n] = up[n]
		if par := ns.pos.Parent; !ns.pos.IsRoot() {
			ready[n] = awaitParent(up[n], up[par], ready[par], hop, p)
		}
		last = max(last, ready[n]+rest)
	}
	return last
}

// awaitParent is when a child that sends its first probe at t learns
// that its parent (serving from parentUp, tree-ready at parentReady) is
// ready. A probe is a round trip of hop, looked at by the parent half-way.
//
// PolicyBackoff (node.AwaitParent before held probes): the parent
// answers at once; after an answer other than ready, or a refused dial,
// the child waits Initial, doubling up to Max, before the next probe.
//
// PolicyHold: a parent that is serving holds the probe until it is
// tree-ready and answers then (half a round trip back), or answers "not
// ready" after Hold, and the child probes again at once (the pause, from
// the probe's start, is at most Hold); a refused dial (the parent not
// listening yet) is retried Initial after it was sent, without doubling.
func awaitParent(t, parentUp, parentReady, hop float64, p ProbeSchedule) float64 {
	wait := p.Initial
	for range 256 { // the waits are bounded; this many probes outlast any parent here
		arrive := t + hop/2
		switch {
		case parentReady <= arrive:
			return t + hop
		case p.Policy == PolicyHold && parentUp <= arrive:
			if parentReady <= arrive+p.Hold {
				return parentReady + hop/2
			}
			t = max(arrive+p.Hold+hop/2, t+min(wait, p.Hold))
		case p.Policy == PolicyHold:
			t += max(p.Initial, hop)
			continue
		default:
			t += hop + wait
		}
		wait = min(2*wait, p.Max)
	}
	return max(t, parentReady) + hop
}

// registrations is when each node's server accepts requests, and the
// rest of a start that is not CPU (mount, the command's return; the N=1
// start's wall time beyond its CPU), charged after tree-ready. A node's
// start CPU is the measured start's, spread over as many threads as it
// used alone (CPU over wall at N=1: the Go runtime's). In Host mode every
// start shares the host's cores from its command's spawn (Scenario.Spawn,
// 0 without one), the kernel sharing them alike among the runnable
// threads (startsShared); else each node starts on its own cores. Without
// a measured CPU the wall time is charged as CPU.
func (s *sim) registrations() (up []float64, rest float64) {
	alone, cpu := s.cal.Costs.NodeStartCPU, s.k.NodeStartCPU
	threads := 1.0
	if alone <= 0 || s.k.NodeStart <= 0 {
		cpu = s.k.NodeStart
	} else {
		// Its parallelism as measured, not rounded up to whole threads:
		// a start of 1.05 × its wall in CPU ran on about one thread, and
		// rounding it to two would leave half its wall as a wait (rest)
		// that the start never had.
		threads = max(1, min(float64(s.cal.HostCores), alone/s.k.NodeStart))
		rest = max(0, s.k.NodeStart-alone/threads)
	}
	up = make([]float64, len(s.nodes))
	if s.host == nil {
		for n := range up {
			up[n] = cpu / float64(threads)
		}
		return up, rest
	}
	spawn := make([]float64, len(s.nodes))
	for n := range spawn {
		if n < len(s.sc.Spawn) {
			spawn[n] = s.sc.Spawn[n]
		}
	}
	work := make([]float64, len(s.nodes))
	for n := range work {
		work[n] = cpu
		s.host.busy += cpu
	}
	return startsShared(spawn, work, threads, float64(s.cal.HostCores)), rest
}

// startsShared is when each job ends that arrives at arrive[i] with
// work[i] CPU seconds on threads threads (a measured parallelism, maybe
// fractional), on cores cores shared alike
// among the runnable threads (each runs at min(1, cores / runnable
// threads)): processor sharing, as the kernel's fair scheduler
// approximates it.
func startsShared(arrive, work []float64, threads, cores float64) []float64 {
	end := make([]float64, len(arrive))
	left := slices.Clone(work)
	order := make([]int, len(arrive))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(arrive[a], arrive[b]) })
	var active []int
	now, next := 0.0, 0
	for next < len(order) || len(active) > 0 {
		if len(active) == 0 {
			now = max(now, arrive[order[next]])
		}
		for next < len(order) && arrive[order[next]] <= now {
			active = append(active, order[next])
			next++
		}
		// Each job's rate: its threads at each thread's share of the cores.
		rate := threads * min(1, cores/(threads*float64(len(active))))
		step := math.Inf(1)
		for _, j := range active {
			step = min(step, left[j]/rate)
		}
		if next < len(order) {
			step = min(step, arrive[order[next]]-now)
		}
		now += step
		kept := active[:0]
		for _, j := range active {
			left[j] -= step * rate
			if left[j] <= 1e-12 {
				end[j] = now
				continue
			}
			kept = append(kept, j)
		}
		active = kept
	}
	return end
}
