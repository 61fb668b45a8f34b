package scalemodel

// The launch before copper's setup: how the measured copper learns that
// its parent is ready (the readiness policy), and what reading a
// facility's address book costs a node at scale.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/hpc-copper/copper/bench/pfsbench"
	"github.com/hpc-copper/copper/book"
	"github.com/hpc-copper/copper/tree"
)

// readinessOf sets the calibration's readiness policy to the measured
// copper's (pfsbench reads it from the daemons' stats: a copper that
// holds probes reports the ones it holds); a run that did not record it
// keeps this code's policy, backing off.
func (cal *Calibration) readinessOf(res *pfsbench.Results) {
	d := DefaultProbe()
	cal.Probe.Initial, cal.Probe.Max, cal.Probe.Policy = d.Initial, d.Max, PolicyBackoff
	src := "default: the run did not record its copper's readiness (pfsbench before it read the daemons' stats); this code's node.AwaitParent backs off"
	for _, r := range res.Runs {
		if r.Mode != pfsbench.ModeCopper || r.ReadyPolicy == "" {
			continue
		}
		switch r.ReadyPolicy {
		case pfsbench.ReadyHold:
			cal.Probe.Policy = PolicyHold
			src = fmt.Sprintf("measured: the run's copper-node stats report held readiness probes (node.ready_held, %s N=%d): a parent holds a probe until it is tree-ready, at most its hold bound (ready_probe_max_ms, at most a quarter of rpc_timeout_s)", r.Workload, r.Nodes)
		default:
			src = fmt.Sprintf("measured: the run's copper-node stats (%s N=%d) report no held readiness probes: a child backs off between probes", r.Workload, r.Nodes)
		}
		break
	}
	cal.Sources["ready_probe.policy"] = src
}

// bookSizes are the facility books whose read is measured: the issue's
// 8,300-node target and the projection's largest job.
var bookSizes = []int{8300, 20000}

// bookRuns is how many reads of each book are timed (their median kept).
const bookRuns = 5

// measureBook times one node's read of a facility's address book of
// each of bookSizes entries, as copper-node reads its book: book.Read,
// tree.ValidateBook and tree.Locate of the deepest rank, in this
// process's CPU (getrusage, the runtime's threads and GC included); the
// two sizes give a fixed part and a part per rank.
func (cal *Calibration) measureBook(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "scalemodel-book-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var cpu []float64
	for _, n := range bookSizes {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := timeBook(filepath.Join(dir, fmt.Sprint(n)), n)
		if err != nil {
			return fmt.Errorf("time a book of %d ranks: %w", n, err)
		}
		cpu = append(cpu, c)
	}
	n0, n1 := float64(bookSizes[0]), float64(bookSizes[1])
	per := max(0, (cpu[1]-cpu[0])/(n1-n0))
	cal.Costs.BookPerRank, cal.Costs.BookBase = per, max(0, cpu[0]-per*n0)
	src := fmt.Sprintf("measured: CPU (getrusage of this process) of one read of a facility's address book, book.Read + tree.ValidateBook + tree.Locate of the deepest rank, Aurora-style host names, median of %d: %.1f ms at %d entries, %.1f ms at %d; the line through the two", bookRuns, cpu[0]*1e3, bookSizes[0], cpu[1]*1e3, bookSizes[1])
	cal.Sources["costs.book_base_s"], cal.Sources["costs.book_per_rank_s"] = src, src
	return nil
}

// timeBook writes a book of n ranks to file and returns the median CPU
// of reading it as a node does.
func timeBook(file string, n int) (float64, error) {
	if err := book.Write(file, facilityBook(n)); err != nil {
		return 0, err
	}
	var runs []float64
	for range bookRuns {
		runtime.GC() // the previous read's garbage is not this one's
		c0 := cpuNow()
		entries, err := book.Read(file)
		if err == nil {
			err = tree.ValidateBook(entries)
		}
		if err == nil {
			_, err = tree.Locate(n, 1, 0, n-1)
		}
		if err != nil {
			return 0, err
		}
		runs = append(runs, cpuNow()-c0)
		runtime.KeepAlive(entries)
	}
	slices.Sort(runs)
	return runs[len(runs)/2], nil
}

// facilityBook is a book of n ranks with Aurora-style host names
// (x4000c0s0b0n0) and endpoints (10.a.b.c:port), as book's
// BenchmarkBookAtScale writes.
func facilityBook(n int) []tree.Entry {
	entries := make([]tree.Entry, n)
	for r := range entries {
		entries[r] = tree.Entry{
			Host:     fmt.Sprintf("x%dc%ds%db0n%d", 4000+r/512, (r/64)%8, (r/8)%8, r%8),
			Endpoint: fmt.Sprintf("10.%d.%d.%d:%d", 100+r>>16, (r>>8)&255, r&255, 40000+r%20000),
		}
	}
	return entries
}
