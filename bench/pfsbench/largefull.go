package pfsbench

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// LargeSectionCommand is pfsbench's subcommand that writes the
// large-full section of docs/BENCHMARKS.md from a run's results.json
// (scripts/large-full-bench.sh splices it between its markers).
const LargeSectionCommand = "large-section"

// The issue's size for the large-file workload: 32 local nodes each
// read a 1 GiB file.
const (
	IssueLargeNodes = 32
	IssueLargeBytes = 1 << 30
)

// LargeFullBegin and LargeFullEnd delimit the section; the begin
// marker carries the run's date and commit so that a run that does not
// measure it (make bench-quick) can say where the carried copy is from.
const (
	LargeFullBegin = "<!-- large-full:begin"
	LargeFullEnd   = "<!-- large-full:end -->"
)

// LoadResults reads a run's results.json.
func LoadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pfsbench results: %w", err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("pfsbench results %s: %w", path, err)
	}
	return &res, nil
}

// LargeFullSection is the large-file workload of res at the issue's size
// (or the size that fitted, with note saying why) as a marker-delimited
// section: the run, the targets, per-node CPU, the worst node's memory
// and spill, then the workload's own section.
func LargeFullSection(res *Results, note string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := res.Machine
	w("%s run=%s commit=%s -->\n", LargeFullBegin, res.Started.UTC().Format("2006-01-02T15:04Z"), m.Commit)
	w("## Large files at the issue's size (issue #10)\n\n")
	w("Written by `scripts/large-full-bench.sh` from `%s`, %s, commit `%s`, in %.0f s; machine: %d cores, %d GiB, %s, load average %s. "+
		"`make bench-large` runs it alone, `make bench` writes it from its own pfsbench run, `make bench-quick` carries it over.\n\n",
		res.Command, res.Started.UTC().Format("2006-01-02 15:04 UTC"), m.Commit, res.Elapsed, m.Cores, m.MemGiB, m.Kernel, m.LoadAvg)
	l := res.Large
	if l == nil {
		w("The large-file workload was not run.\n\n%s\n", LargeFullEnd)
		return b.String()
	}
	w("%s\n\n", largeSizeText(l, note))
	w("| measurement | result | target | verdict |\n|---|---|---|---|\n")
	for _, t := range res.largeTargets() {
		w("| %s | %s | %s | %s |\n", t.Name, t.Result, t.Goal, t.Verdict)
	}
	w("\n")
	if l.Error == "" {
		largeNodeText(l, w)
		w("%s", largeWarmCaveat(l, res.Machine.MemGiB))
	}
	res.largeSection(&b)
	w("%s\n", LargeFullEnd)
	return b.String()
}

// largeSizeText says the run's size against the issue's.
func largeSizeText(l *LargeResult, note string) string {
	size := fmt.Sprintf("This run: %d nodes × %d MiB", l.Nodes, l.FileBytes>>20)
	if l.Nodes == IssueLargeNodes && l.FileBytes == IssueLargeBytes {
		size += ", the issue's size."
	} else {
		size += fmt.Sprintf(", not the issue's %d × %d MiB.", IssueLargeNodes, IssueLargeBytes>>20)
	}
	if note != "" {
		size += " " + note
	}
	return size
}

// largeNodeText writes per-node CPU of each pass and the worst node's
// memory and spill, with the bound all spill directories together had.
func largeNodeText(l *LargeResult, w func(format string, args ...any)) {
	if len(l.Passes) > 0 {
		w("CPU per node of each pass (the pass's CPU seconds over its N nodes; all of them share this machine's cores):\n\n")
		w("| model | mode | N | wall s | reader s/node | copper-node s/node | emulator s |\n|---|---|---|---|---|---|---|\n")
		for _, p := range l.Passes {
			n := float64(max(p.Nodes, 1))
			w("| %s | %s | %d | %.2f | %.3f | %.3f | %.2f |\n", p.Model, p.Mode, p.Nodes, p.WallS, p.CPUReadersS/n, p.CPUDaemonsS/n, p.CPUEmulatorS)
		}
		w("\n")
	}
	if len(l.Memory) == 0 {
		return
	}
	rss, spill := l.Memory[0], l.Memory[0]
	var total, bound int64
	for _, m := range l.Memory {
		if float64(m.RSSBytes)/float64(max(m.LimitBytes, 1)) > float64(rss.RSSBytes)/float64(max(rss.LimitBytes, 1)) {
			rss = m
		}
		if m.SpillBytes > spill.SpillBytes {
			spill = m
		}
		total += m.SpillBytes
		bound += m.SpillBudget
	}
	w("After the cold pass: worst RSS rank %d, %.1f MiB of its %.0f MiB limit (cache budget + 64 MiB); most spill rank %d, %.1f MiB of its %.0f MiB budget; "+
		"all %d spill directories together %.2f GiB, bounded by the budgets' sum %.2f GiB.\n\n",
		rss.Rank, mib(rss.RSSBytes), mib(rss.LimitBytes), spill.Rank, mib(spill.SpillBytes), mib(spill.SpillBudget),
		len(l.Memory), float64(total)/(1<<30), float64(bound)/(1<<30))
}

// largeWarmCaveat says when the run moved more through the page cache
// than the host has memory: every mount's copy of the file and every
// spill file, N × 2 × the file. The warm rounds then read pages the
// kernel had to evict and read again (both theirs and the native
// file's), so they are not the page-cache comparison the target means.
func largeWarmCaveat(l *LargeResult, memGiB int) string {
	moved := 2 * int64(l.Nodes) * l.FileBytes
	if memGiB <= 0 || moved <= int64(memGiB)<<30 {
		return ""
	}
	return fmt.Sprintf("The cold pass put %.0f GiB through this host's page cache (%d mounts' copies of the file and %d spill directories' "+
		"chunk files) against its %d GiB of memory, so the warm rounds below read a file the kernel had partly evicted, the native "+
		"copy too: they are not the page-cache comparison the warm targets mean, which the large-file section of a quick run "+
		"(a smaller file) measures.\n\n", float64(moved)/(1<<30), l.Nodes, l.Nodes, memGiB)
}
