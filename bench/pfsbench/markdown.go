package pfsbench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hpc-copper/copper/bench/slowpfs"
)

// FragmentFile and PlotFile are the names of the markdown fragment and
// the plot in the output directory.
const (
	FragmentFile = "bench-results.md"
	PlotFile     = "pfsbench.svg"
)

// writeMarkdown writes the fragment docs/BENCHMARKS.md includes.
func (res *Results) writeMarkdown(dir string) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	s, m := res.Settings, res.Machine

	w("## Job startup on an emulated parallel filesystem (issue #5)\n\n")
	w("Numbers from `%s` (mode `%s`), %s, commit `%s`, in %.0f s. Machine: %d cores, %d GiB, %s, %s, %s, load average %s.\n\n",
		res.Command, res.Label, res.Started.UTC().Format("2006-01-02 15:04 UTC"), m.Commit, res.Elapsed,
		m.Cores, m.MemGiB, m.Kernel, m.Go, m.Python, m.LoadAvg)
	w("Every mode runs side by side in one run against the same emulated filesystem (`bench/slowpfs`): "+
		"a FUSE passthrough over a local copy of the package tree whose every request is charged to one "+
		"emulated server and counted by type and path. N nodes × %d processes, all on this one machine: "+
		"nodes are separate PFS client mounts (own kernel caches) or separate copper-node daemons, so the "+
		"filesystem traffic is that of N nodes, but all of them share these %d cores.\n\n", s.Procs, m.Cores)
	w("%s", repeatNote(res.Runs))

	w("### Targets\n\n| measurement | result | target | verdict |\n|---|---|---|---|\n")
	for _, t := range res.Targets {
		w("| %s | %s | %s | %s |\n", t.Name, t.Result, t.Goal, t.Verdict)
	}
	w("\n")

	w("### The emulated filesystem\n\n")
	p := s.Params
	w("| parameter | value | why (an assumption about a real filesystem, not measured here) |\n|---|---|---|\n")
	w("| metadata service time | %v per operation (lookup, getattr, open, opendir, readdir page, readlink) | a busy Lustre MDS answers a getattr/open in 0.2–1 ms once thousands of clients contend |\n", p.MetadataService)
	w("| metadata slots | %d (capacity %.0f ops/s) | the MDS threads that progress at once on one MDT under contention; ≈ single-MDT mdtest stat/open rates |\n", p.Slots, s.MetadataOpsSec)
	w("| data bandwidth | %.0f MiB/s shared by all clients, first come first served | one job's share of the object servers on a busy filesystem |\n", float64(p.Bandwidth)/(1<<20))
	w("| readdir page | %d entries per operation | a Lustre directory page holds about a hundred short names |\n", p.DirEntriesPerOp)
	w("| client cache | %.0f s; one client per %s | a Lustre client keeps entries, attributes and pages under its locks for the whole job start; opens always reach the server |\n\n",
		s.ClientCacheS, s.DirectClients)
	w("Free (counted, not charged): release, releasedir, statfs, getxattr. Reservations are in virtual time, " +
		"so the server's capacity is exact; the host wakes sleepers late by the *timer lateness* shown below.\n\n")

	w("The workload imports `%s` (%s); the tree on the emulated filesystem holds %d files, %d directories, %.1f MiB (%s). ",
		s.Import, "`"+res.Settings.ImportCmd+"`", res.Tree.Files, res.Tree.Dirs, mib(res.Tree.Bytes), strings.Join(baseNames(res.Tree.Packages), ", "))
	w("The replay is the same import recorded once with strace (%d calls, %d operations on the tree: %s) and replayed by Go clients, so N×P processes measure I/O, not Python's CPU.\n\n",
		res.Trace.Calls, res.Trace.Ops, kindsList(res.Trace.Kinds))

	for _, work := range []string{WorkReplay, WorkImport} {
		res.timeTable(&b, work)
	}
	res.opsTable(&b, WorkReplay)
	res.scaleSection(&b)
	res.largeSection(&b)
	res.readings(&b)

	if len(res.Skipped) > 0 {
		w("Not run: %s.\n\n", strings.Join(res.Skipped, "; "))
	}
	if len(res.Errors) > 0 {
		w("**Errors during the run:**\n\n")
		for _, e := range res.Errors {
			w("- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		w("\n")
	}

	w("![time against N per mode](%s)\n\n", PlotFile)

	w("### Commands\n\n")
	w("    %s\n", res.Command)
	w("    # record the import once\n    %s\n", res.Trace.Command)
	w("    # the emulated filesystem (per mode and N; clients = N, or 1 for copper)\n    %s\n", s.EmulatorCmd)
	if sc := s.Scale; sc != nil {
		w("    # the scale model's emulated filesystem (N=%d rows)\n    %s\n", sc.Nodes, sc.EmulatorCmd)
	}
	w("    # copper: every rank at once, target = PFS client 0\n    %s\n", s.CopperCmd)
	if s.PrefetchCmd != "" {
		w("    # copper+prefetch\n    %s\n", s.PrefetchCmd)
	}
	w("    # staging\n    tar -cf <pfs>/%s -C <pfs client 0> site; on each node: tar -xf <pfs client i>/%s -C <node dir>\n", stagingTar, stagingTar)
	w("    # replay: one worker per node, one --root per process\n    %s\n", s.ReplayCmd)
	w("    # real import: N×P processes, each\n    %s\n", s.ImportCmd)
	if wi := res.WarmImport; wi != nil {
		w("    # warm import, alternating local disk and rank 1 of a 2-node copper\n    %s\n", wi.Command)
	}
	w("\nRaw numbers: `results.json`, `results.csv` beside this fragment.\n")
	return os.WriteFile(filepath.Join(dir, FragmentFile), []byte(b.String()), 0o644)
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

func kindsList(kinds map[string]int) string {
	var parts []string
	for _, k := range []string{"stat", "access", "open", "close", "read", "pread", "getdents", "fstat", "readlink", "mmap"} {
		if n := kinds[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	return strings.Join(parts, ", ")
}

// modesRun lists the modes with at least one run of work, in order.
func (res *Results) modesRun(work string) []string {
	var out []string
	for _, mode := range knownModes {
		for _, r := range res.Runs {
			if r.Workload == work && r.Mode == mode {
				out = append(out, mode)
				break
			}
		}
	}
	return out
}

func (res *Results) nodesRun(work string) []int {
	var out []int
	for _, r := range res.Runs {
		if r.Workload == work && !slices.Contains(out, r.Nodes) {
			out = append(out, r.Nodes)
		}
	}
	return out
}

// timeTable is seconds per mode and N: cold as setup + run, then warm.
func (res *Results) timeTable(b *strings.Builder, work string) {
	modes := res.modesRun(work)
	if len(modes) == 0 {
		return
	}
	title := map[string]string{
		WorkReplay: "Replay: seconds until the last of N×P processes finished",
		WorkImport: "Real import: seconds until the last of N×P python processes finished the import",
		WorkScale:  "Scale model, replay: seconds until the last of N×P processes finished",
	}[work]
	fmt.Fprintf(b, "### %s\n\n", title)
	fmt.Fprintf(b, "Cold is the first run on fresh nodes (copper's tree-ready wait, copper+prefetch's tree-ready wait plus the wait for every node's prefetch of the traced paths, and staging's copies are its setup, shown as `setup + run`); warm is a second run in the same job. %d processes per node.\n\n", res.Settings.Procs)
	fmt.Fprintf(b, "| N |")
	for _, m := range modes {
		fmt.Fprintf(b, " %s cold | %s warm |", m, m)
	}
	fmt.Fprintf(b, "\n|---|")
	for range modes {
		fmt.Fprintf(b, "---|---|")
	}
	fmt.Fprintf(b, "\n")
	for _, n := range res.nodesRun(work) {
		fmt.Fprintf(b, "| %d |", n)
		for _, m := range modes {
			fmt.Fprintf(b, " %s | %s |", cell(res.anyRun(work, m, n, "cold"), true), cell(res.anyRun(work, m, n, "warm"), false))
		}
		fmt.Fprintf(b, "\n")
	}
	fmt.Fprintf(b, "\nCPU floor of the same runs: CPU seconds the benchmark's processes spent (clients + copper daemons + emulator) over the %d cores — all N nodes share this machine, so no run can be shorter; a run close to its floor is CPU-bound, not waiting on the filesystem.\n\n| N |", res.Machine.Cores)
	for _, m := range modes {
		fmt.Fprintf(b, " %s cold | %s warm |", m, m)
	}
	fmt.Fprintf(b, "\n|---|")
	for range modes {
		fmt.Fprintf(b, "---|---|")
	}
	fmt.Fprintf(b, "\n")
	for _, n := range res.nodesRun(work) {
		fmt.Fprintf(b, "| %d |", n)
		for _, m := range modes {
			for _, phase := range []string{"cold", "warm"} {
				if r := res.find(work, m, n, phase); r != nil {
					fmt.Fprintf(b, " %.2f |", r.CPUFloorS)
				} else {
					fmt.Fprintf(b, " – |")
				}
			}
		}
		fmt.Fprintf(b, "\n")
	}
	fmt.Fprintf(b, "\n")
	res.nodeCPUTable(b, work, modes)
}

// nodeCPUTable is wall time next to the CPU seconds each node spent:
// its client processes and, under copper, its copper-node daemon.
func (res *Results) nodeCPUTable(b *strings.Builder, work string, modes []string) {
	fmt.Fprintf(b, "CPU seconds per node of the same runs, next to wall time: *clients* is the user + system time of a node's %s (rusage at exit), *copper-node* that of the node's daemon during the run (`/proc/<pid>/stat` before and after), each as mean / max over the N nodes. On a real cluster each node spends this on its own cores.\n\n",
		map[string]string{WorkReplay: "replay worker", WorkImport: "python processes", WorkScale: "replay worker"}[work])
	fmt.Fprintf(b, "| mode | N | cold wall s | cold clients s/node | cold copper-node s/node | warm wall s | warm clients s/node | warm copper-node s/node |\n")
	fmt.Fprintf(b, "|---|---|---|---|---|---|---|---|\n")
	for _, n := range res.nodesRun(work) {
		for _, m := range modes {
			fmt.Fprintf(b, "| %s | %d |", m, n)
			for _, phase := range []string{"cold", "warm"} {
				r := res.anyRun(work, m, n, phase)
				if r == nil || r.Error != "" {
					fmt.Fprintf(b, " %s | – | – |", cell(r, false))
					continue
				}
				fmt.Fprintf(b, " %.2f | %s | %s |", r.RunS, meanMax(r.CPUClientPerNodeS), meanMax(r.CPUDaemonPerNodeS))
			}
			fmt.Fprintf(b, "\n")
		}
	}
	fmt.Fprintf(b, "\n")
}

// meanMax is "mean / max" of v, or "–" for none.
func meanMax(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	sum, hi := 0.0, v[0]
	for _, x := range v {
		sum += x
		hi = max(hi, x)
	}
	return fmt.Sprintf("%.2f / %.2f", sum/float64(len(v)), hi)
}

// anyRun is find without skipping failed runs.
func (res *Results) anyRun(work, mode string, n int, phase string) *Row {
	for i := range res.Runs {
		r := &res.Runs[i]
		if r.Workload == work && r.Mode == mode && r.Nodes == n && r.Phase == phase {
			return r
		}
	}
	return nil
}

func cell(r *Row, withSetup bool) string {
	switch {
	case r == nil:
		return "–"
	case r.Error != "":
		return "failed"
	case withSetup && r.SetupS > 0:
		return fmt.Sprintf("%.2f + %.2f", r.SetupS, r.RunS)
	}
	return fmt.Sprintf("%.2f", r.RunS)
}

// opsTable is the emulator's counters per mode and N for the cold
// replay (of work: WorkReplay or WorkScale), plus the warm replay's
// metadata operations.
func (res *Results) opsTable(b *strings.Builder, work string) {
	if len(res.modesRun(work)) == 0 {
		return
	}
	fmt.Fprintf(b, "### What the filesystem served (emulator counters, %s)\n\n", map[string]string{WorkReplay: "replay", WorkScale: "scale model"}[work])
	fmt.Fprintf(b, "Cold phase unless marked. *fetches/key*: server fetches per distinct (path, kind) — kind is stat (lookup/getattr), open, list (opendir) or link (readlink) — 1.00 when every node shares one fetch. *data ×*: bytes read over distinct bytes. Queue: mean wait for a metadata slot. Staging's own setup (tar + N extractions) and copper+prefetch's (tree-ready and the prefetch, which moves the cold run's server fetches into the setup: still once per tree) are listed on their own lines.\n\n")
	fmt.Fprintf(b, "| mode | N | metadata ops | lookup | getattr | open | opendir | readdir | readlink | data MiB | fetches/key | data × | queue µs | timer late µs | warm metadata ops |\n")
	fmt.Fprintf(b, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range res.nodesRun(work) {
		for _, mode := range knownModes {
			cold := res.find(work, mode, n, "cold")
			if cold == nil || cold.Backend == nil {
				continue
			}
			warmOps := "–"
			if warm := res.find(work, mode, n, "warm"); warm != nil && warm.Backend != nil {
				warmOps = fmt.Sprint(warm.Backend.MetadataOps)
			}
			opsRow(b, mode, n, cold.Backend, warmOps)
			if cold.SetupBackend != nil && (mode == ModeStaging || mode == ModePrefetch) {
				opsRow(b, mode+" setup", n, cold.SetupBackend, "")
			}
		}
	}
	fmt.Fprintf(b, "\n")
}

func opsRow(b *strings.Builder, mode string, n int, be *Backend, warm string) {
	fmt.Fprintf(b, "| %s | %d | %d |", mode, n, be.MetadataOps)
	for _, op := range []string{slowpfs.OpLookup, slowpfs.OpGetattr, slowpfs.OpOpen, slowpfs.OpOpendir, slowpfs.OpReaddir, slowpfs.OpReadlink} {
		fmt.Fprintf(b, " %d |", be.Ops[op])
	}
	fmt.Fprintf(b, " %.1f | %.2f | %.2f | %.0f | %.0f | %s |\n", mib(be.DataBytes), be.Fetches.PerKey, be.Fetches.DataRatio,
		be.MeanQueueUs, be.MeanLatenessUs, warm)
}
