package pfsbench

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hpc-copper/copper/bench/slowpfs"
)

// Published reference numbers the scale model is compared with: the
// Copper paper (PDSW 2024) on Aurora, as quoted in the project's
// reference notes (reference/copper-1.0.md, "Published numbers").
// They are constants of the literature, not measurements of this run.
const (
	paperSource         = "Copper paper (PDSW 2024), Aurora, `import torch` by 12 Python processes per node; quoted in the project's reference notes (copper-1.0.md, \"Published numbers\")"
	paperWarmCopperS    = 2.0   // second import with Copper at 2,048 nodes, about
	paperWarmLustreS    = 180.0 // second import on Lustre at 2,048 nodes, about
	paperColdSavingS    = 60.0  // cold import: Copper about this much faster than Lustre at 2,048 nodes
	paperColdSavingFrac = 0.5   // ... which is about half of Lustre's time
)

// scaleSection is the scale model: its arithmetic, its assumptions, the
// published reference point and this run's scale rows.
func (res *Results) scaleSection(b *strings.Builder) {
	sc := res.Settings.Scale
	if sc == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p, base := sc.Params, res.Settings.Params
	baseOps := base.MetadataOpsPerSecond()
	procs := res.Settings.Procs
	w("### Scale model: N=%d in the regime of %d nodes × %d processes\n\n", sc.Nodes, sc.RefNodes, sc.RefProcs)
	w("Today's rows give %d nodes × %d processes one emulated metadata server of %.0f operations/s; a real "+
		"job start puts far more clients on one metadata server. The scale-model rows keep the clients and scale the "+
		"server's metadata capacity down so that clients per unit of server capacity at N=%d match the reference machine "+
		"(`pfsbench --scale-nodes %d --scale-ref-nodes %d --scale-ref-procs %d`).\n\n",
		sc.Nodes, procs, baseOps, sc.Nodes, sc.Nodes, sc.RefNodes, sc.RefProcs)
	w("| quantity | value | source |\n|---|---|---|\n")
	w("| reference client processes | %d nodes × %d = %d | %s |\n", sc.RefNodes, sc.RefProcs, sc.RefNodes*sc.RefProcs, paperSource)
	w("| client processes here | %d nodes × %d = %d | this run |\n", sc.Nodes, procs, sc.Nodes*procs)
	w("| ratio | %.1f | %d / %d |\n", sc.Ratio, sc.RefNodes*sc.RefProcs, sc.Nodes*procs)
	w("| reference metadata server | one, serving every client of the job | **assumption**: one Lustre MDS (one MDT) answers the whole job's lookups and opens; a filesystem with several MDTs (DNE) spreads directories over them and would need a smaller ratio |\n")
	w("| its capacity | %.0f operations/s (%d slots × %v) | **assumption**: today's emulator, whose parameters are argued in the table above |\n",
		baseOps, base.Slots, base.MetadataService)
	w("| scaled capacity | %.1f operations/s: %d slot(s) × %v | %.0f / %.1f; a slot count below one is not a slot, so one slot with a longer service time |\n",
		p.MetadataOpsPerSecond(), p.Slots, p.MetadataService, baseOps, sc.Ratio)
	w("| data bandwidth | %.0f MiB/s, not scaled | **assumption**: an import is bound by metadata, not by object-server bandwidth |\n\n", float64(p.Bandwidth)/(1<<20))
	w("What the model does not capture (prose, no measurement): copper's root is the only client of the scaled server, "+
		"while on the reference machine it would have a whole metadata server to itself, so the model is pessimistic for copper; "+
		"and with one slot, an operation on an idle server takes %v instead of %v. ", p.MetadataService, base.MetadataService)
	w("Reference point, published and not measured here (a different workload and machine): at %d nodes the paper reports a second import of about %.0f s with Copper against about %.0f s on Lustre (%.0f×), and a cold import about %.0f s (about %.0f%%) faster with Copper.\n\n",
		sc.RefNodes, paperWarmCopperS, paperWarmLustreS, paperWarmLustreS/paperWarmCopperS, paperColdSavingS, paperColdSavingFrac*100)

	var parts []string
	for _, phase := range []string{"cold", "warm"} {
		d, c := res.find(WorkScale, ModeDirect, sc.Nodes, phase), res.find(WorkScale, ModeCopper, sc.Nodes, phase)
		if d == nil || c == nil || c.RunS <= 0 {
			parts = append(parts, fmt.Sprintf("%s: not measured (a run is missing or failed)", phase))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: direct %.2f s, copper %.2f s (direct takes %.1f× copper's time)", phase, d.RunS, c.RunS, d.RunS/c.RunS))
	}
	w("This run, scale model, replay at N=%d (run time, copper's tree-ready setup not included): %s.\n\n", sc.Nodes, strings.Join(parts, "; "))
	res.timeTable(b, WorkScale)
	res.opsTable(b, WorkScale)
}

// readings are what the results say about where the time went, computed
// from this run's rows: each cold replay at the largest scale against
// its CPU floor and its wait for the emulated server.
func (res *Results) readings(b *strings.Builder) {
	maxN := slices.Max(append([]int{0}, res.Settings.ReplayNodes...))
	type item struct {
		work, label string
		n           int
	}
	items := []item{{WorkReplay, "today's server", maxN}}
	if sc := res.Settings.Scale; sc != nil {
		items = append(items, item{WorkScale, "scale model", sc.Nodes})
	}
	var lines []string
	for _, it := range items {
		params := res.Settings.Params
		if it.work == WorkScale {
			params = res.Settings.Scale.Params
		}
		for _, mode := range []string{ModeDirect, ModeCopper} {
			r := res.find(it.work, mode, it.n, "cold")
			if r == nil || r.Backend == nil {
				continue
			}
			lines = append(lines, fmt.Sprintf("* %s, %s, cold replay at N=%d: %s", mode, it.label, it.n, bottleneck(r, params, res.Machine.Cores)))
		}
	}
	if wi := res.WarmImport; wi != nil && len(wi.LocalS) > 0 && len(wi.LocalS) == len(wi.MountS) {
		lo, hi := 0.0, 0.0
		for i := range wi.LocalS {
			if wi.LocalS[i] <= 0 {
				continue
			}
			q := wi.MountS[i] / wi.LocalS[i]
			if lo == 0 || q < lo {
				lo = q
			}
			hi = max(hi, q)
		}
		lines = append(lines, fmt.Sprintf("* warm real import, mount vs local disk: median ratio %.2f×; the %d alternating rounds of this run ranged %.2f×–%.2f×, so a difference smaller than that spread is noise here",
			wi.Ratio, wi.Rounds, lo, hi))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "### Reading the results (computed from this run)\n\n")
	fmt.Fprintf(b, "Two lower bounds on a run's time: its *CPU floor* (CPU seconds of clients, daemons and emulator over these %d cores) "+
		"and the *server time* (its metadata operations × the service time / the slots: how long the emulated server needs to serve them). "+
		"A run within 1.25× of the larger bound is called bound by it (CPU-bound on this machine, or server-bound); otherwise it is bound by neither.\n\n", res.Machine.Cores)
	fmt.Fprintf(b, "%s\n\n", strings.Join(lines, "\n"))
}

// bottleneck classifies one run by the larger of its two lower bounds:
// the CPU floor and the time the emulated server p needs for its
// metadata operations.
func bottleneck(r *Row, p slowpfs.Params, cores int) string {
	server := 0.0
	if p.Slots > 0 {
		server = float64(r.Backend.MetadataOps) * p.MetadataService.Seconds() / float64(p.Slots)
	}
	var verdict string
	switch {
	case r.CPUFloorS >= server && r.CPUFloorS > 0 && r.RunS <= 1.25*r.CPUFloorS:
		verdict = "CPU-bound on this machine"
	case server > r.CPUFloorS && r.RunS <= 1.25*server:
		verdict = "server-bound"
	default:
		verdict = "bound by neither"
	}
	return fmt.Sprintf("%.2f s; CPU floor %.2f s, server time %.2f s (%d metadata operations; mean slot queue %.0f µs) — %s",
		r.RunS, r.CPUFloorS, server, r.Backend.MetadataOps, r.Backend.MeanQueueUs, verdict)
}
