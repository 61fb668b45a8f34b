package scalemodel

// The projection's parts of the Markdown section: the modelled rows at
// scale, the targets, and the findings computed from them.

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// mdProjection writes the projection table and its figure.
func (rep *Report) mdProjection(p printf) {
	p("### Projection: %d processes per node (modelled)\n\n", rep.Procs)
	p("**A cluster node, not this host**: each node has its own cores (copper-node on %d, each process on its own), the N=1 costs (one worker alone on the cores), the reference filesystem; nothing of this host's sharing or load. *first import* = setup (copper: the launch — rank 0's all-gather of addresses (*discover*) or, *facility book*, each node reading the book the site hands it — then every daemon starting at once and tree-ready level by level as the readiness policy lets it; staging: the tar and its N copies) + the cold run until the last process is done; *warm* = the same job again. Root and interior load: requests the busiest root / interior node served its children. Filesystem: metadata operations and data of the cold phase (staging: its setup), and of the warm phase; *fetches/key*: metadata fetches per distinct (path, kind).\n\n", rep.Machine.DaemonCores)
	p("| N | mode | depth (fan-out) | setup s | of which launch s (all-gather or book read) | cold run s, last / mean node | first import s | warm s | root req | interior req | fs metadata ops | fs data MiB | fetches/key | warm fs ops |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	nodes := map[int]bool{}
	for _, x := range rep.Projection {
		nodes[x.Nodes] = true
	}
	var ns []int
	for n := range nodes {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	for _, n := range ns {
		for _, mode := range Modes {
			x, ok := rep.find(mode, n)
			if !ok {
				continue
			}
			depth := "–"
			if mode == ModeCopper {
				depth = fmt.Sprintf("%d (%d)", x.Depth, x.TreeFanout)
			}
			gather := "–"
			if mode == ModeCopper {
				gather = secsStr(x.GatherS)
			}
			name := mode
			if mode == ModeCopper && len(rep.Book) > 0 {
				name = "copper, discover"
			}
			rep.projectionRow(p, name, depth, gather, x)
			if b, ok := rep.findBook(n); ok && mode == ModeCopper {
				rep.projectionRow(p, "copper, facility book", depth, secsStr(b.BookS), b)
			}
		}
	}
	p("\n![modelled time against N per mode](scalemodel.svg)\n\n")
}

// projectionRow writes one row of the projection table.
func (rep *Report) projectionRow(p printf, name, depth, launch string, x Result) {
	c := x.Mode == ModeCopper
	p("| %d | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s | %d | %.1f | %.2f | %d |\n", x.Nodes, name, depth, secsStr(x.SetupS), launch, secsStr(x.ColdS), secsStr(x.ColdMeanNodeS), secsStr(x.FirstS()), secsStr(x.WarmS),
		count(c, x.RootRequests), count(c, x.InteriorRequests), x.MetaOps, float64(x.DataBytes)/(1<<20), x.FetchesPerKey, x.WarmMetaOps)
}

// mdTargets writes the targets and their verdicts.
func (rep *Report) mdTargets(p printf) {
	p("### Targets (modelled)\n\n| target | result | verdict |\n|---|---|---|\n")
	c32, ok32 := rep.find(ModeCopper, 32)
	c8300, ok83 := rep.find(ModeCopper, 8300)
	if ok32 && ok83 {
		ratio := c8300.FirstS() / c32.FirstS()
		p("| copper first import at 8,300 nodes ≤ 1.5 × at 32 | %.2f× (%s s vs %s s) | %s |\n", ratio, secsStr(c8300.FirstS()), secsStr(c32.FirstS()), verdict(ratio <= 1.5))
		if c8300.GatherS > 0 {
			rt := (c8300.SetupS - c8300.GatherS + c8300.ColdS) / (c32.SetupS - c32.GatherS + c32.ColdS)
			p("| the same, the launch's all-gather excluded (tree-ready + cold run) | %.2f× | %s |\n", rt, verdict(rt <= 1.5))
		}
		rc := c8300.ColdS / c32.ColdS
		p("| the same, cold run alone (tree-ready excluded) | %.2f× (%s s vs %s s) | %s |\n", rc, secsStr(c8300.ColdS), secsStr(c32.ColdS), verdict(rc <= 1.5))
	}
	b32, okb32 := rep.findBook(32)
	b8300, okb83 := rep.findBook(8300)
	if okb32 && okb83 {
		rb := b8300.FirstS() / b32.FirstS()
		p("| copper first import at 8,300 ≤ 1.5× at 32, facility book (no all-gather: each node reads the site's book, then starts) | %.2f× (%s s vs %s s; book read %s s at 8,300) | %s |\n",
			rb, secsStr(b8300.FirstS()), secsStr(b32.FirstS()), secsStr(b8300.BookS), verdict(rb <= 1.5))
	}
	allOne := true
	var worstKey float64
	for _, x := range append(append([]Result{}, rep.Projection...), rep.Variants...) {
		if x.Mode != ModeCopper || x.LargeBytes > 0 {
			continue
		}
		want := float64(x.Trees)
		if d := math.Abs(x.FetchesPerKey - want); d > 1e-9 {
			allOne = false
		}
		worstKey = math.Max(worstKey, x.FetchesPerKey/float64(x.Trees))
	}
	p("| copper filesystem fetches per (path, kind) = 1 per tree, every copper row | worst %.2f per tree | %s |\n\n", worstKey, verdict(allOne))
}

// mdPaper writes the modelled rows next to the Copper paper's published
// points.
func (rep *Report) mdPaper(p printf) {
	if d, ok := rep.find(ModeDirect, 2048); ok {
		c, _ := rep.find(ModeCopper, 2048)
		c32, _ := rep.find(ModeCopper, 32)
		c8300, _ := rep.find(ModeCopper, 8300)
		p("### Next to the Copper paper's published points (2,048 nodes × 12 processes)\n\n")
		p("Published (PDSW 2024, Aurora, `import torch`, a far larger tree than this run's; quoted in copper-1.0.md) next to modelled (this run's import, the projection's filesystem):\n\n")
		p("| quantity | published | modelled |\n|---|---|---|\n")
		p("| second import, Copper | about 2 s | %s s (warm) |\n", secsStr(c.WarmS))
		p("| second import, Lustre directly | about 180 s | %s s (direct warm) |\n", secsStr(d.WarmS))
		p("| cold import, Copper vs Lustre | about 60 s faster, about half | copper first import %s s vs direct cold %s s (%.1f%% of it) |\n", secsStr(c.FirstS()), secsStr(d.ColdS), 100*c.FirstS()/d.ColdS)
		p("| import time from 32 to 8,300 nodes | near constant | copper first import %s s at 32, %s s at 8,300 |\n\n", secsStr(c32.FirstS()), secsStr(c8300.FirstS()))
		p("The replay carries no Python CPU (it replays the import's file operations only), so a modelled warm import is the file operations' own cost; the paper's times include the interpreter's work and a much larger package tree.\n\n")
	}
}

// mdSharding writes copper with several trees and fan-outs.
func (rep *Report) mdSharding(p printf) {
	if len(rep.Variants) > 0 {
		p("### Sharding: several trees (`-T`) and fan-out choices, copper (modelled)\n\n")
		p("| N | trees | fan-out | depth | tree-ready s | cold run s | first import s | root req | interior req | fs metadata ops | fetches/key |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		all := append([]Result{}, rep.Variants...)
		for _, x := range rep.Projection {
			if x.Mode == ModeCopper && (x.Nodes == 8300 || x.Nodes == 20000) {
				all = append(all, x)
			}
		}
		sort.SliceStable(all, func(i, j int) bool {
			a, b := all[i], all[j]
			if a.Nodes != b.Nodes {
				return a.Nodes < b.Nodes
			}
			if a.Trees != b.Trees {
				return a.Trees < b.Trees
			}
			return a.TreeFanout < b.TreeFanout
		})
		for _, x := range all {
			fan := fmt.Sprintf("%d", x.TreeFanout)
			if x.Fanout == 0 {
				fan += " (auto)"
			}
			p("| %d | %d | %s | %d | %s | %s | %s | %d | %d | %d | %.2f |\n", x.Nodes, x.Trees, fan, x.Depth, secsStr(x.SetupS), secsStr(x.ColdS), secsStr(x.FirstS()),
				x.RootRequests, x.InteriorRequests, x.MetaOps, x.FetchesPerKey)
		}
		p("\n")
	}
}

// mdSensitivity writes the projection on faster and slower metadata servers.
func (rep *Report) mdSensitivity(p printf) {
	if len(rep.Sensitivity) > 0 {
		p("### Sensitivity to the metadata server (modelled)\n\n")
		p("The projection's metadata server is an assumption (above); here it is made slower or faster (service time divided by the factor), the rest unchanged.\n\n")
		p("| N | server capacity | ops/s | direct first import s | direct warm s | copper first import s | copper warm s |\n|---|---|---|---|---|---|---|\n")
		for i := 0; i+1 < len(rep.Sensitivity); i += 2 {
			d, c := rep.Sensitivity[i], rep.Sensitivity[i+1]
			p("| %d | %g × | %.0f | %s | %s | %s | %s |\n", d.Nodes, d.Factor, rep.Reference.Capacity()*d.Factor, secsStr(d.FirstS()), secsStr(d.WarmS), secsStr(c.FirstS()), secsStr(c.WarmS))
		}
		p("\n")
	}
}

// mdLarge writes the large-file variant.
func (rep *Report) mdLarge(p printf) {
	if len(rep.Large) > 0 {
		p("### Large file: one file of %.0f MiB read by every process after the import (modelled)\n\n", float64(rep.Large[0].LargeBytes)/(1<<20))
		p("Files over `max_cacheable_bytes` go through the tree in chunks with `large_files = chunked` (copper's default: *chunked*, the root reads the file once and each parent sends it to its children over its NIC) or are read from the filesystem by every node with `large_files = direct` (*direct large-file path*, Copper 1.0's behaviour).\n\n")
		p("| N | mode | large-file path | first import s | warm s | fs data MiB |\n|---|---|---|---|---|---|\n")
		for _, x := range rep.Large {
			path := "–"
			if x.Mode == ModeCopper {
				path = x.LargePath
			}
			p("| %d | %s | %s | %s | %s | %.0f |\n", x.Nodes, x.Mode, path, secsStr(x.FirstS()), secsStr(x.WarmS), float64(x.DataBytes)/(1<<20))
		}
		p("\n")
	}
}

func count(ok bool, v int64) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%d", v)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met** (finding)"
}

// findings writes sentences computed from the rows: where the model says
// time goes as N grows.
func (rep *Report) findings(p printf) {
	p("### Findings (computed from the rows above)\n\n")
	var lo, hi Result
	for _, x := range rep.Projection {
		if x.Mode != ModeCopper {
			continue
		}
		if lo.Nodes == 0 || x.Nodes < lo.Nodes {
			lo = x
		}
		if x.Nodes > hi.Nodes {
			hi = x
		}
	}
	if lo.Nodes > 0 && hi.Nodes > lo.Nodes {
		p("* Copper, one tree: from %d to %d nodes the first import goes from %s s to %s s, while the busiest root's requests go from %d to %d (fan-out %d → %d) and the filesystem sees %d metadata operations at every N.\n",
			lo.Nodes, hi.Nodes, secsStr(lo.FirstS()), secsStr(hi.FirstS()), lo.RootRequests, hi.RootRequests, lo.TreeFanout, hi.TreeFanout, hi.MetaOps)
	}
	if lo.Nodes > 0 && hi.GatherS > 0 {
		p("* Launch: the all-gather of addresses is rank 0 serving every rank in turn (measured per rank here, %s): %s s at %d nodes and %s s at %d, against tree-ready's %s s after it; a gather along the tree (each parent collecting its children's) or the addresses from the launcher would take it off rank 0.\n",
			us(rep.Costs.GatherPerRank), secsStr(lo.GatherS), lo.Nodes, secsStr(hi.GatherS), hi.Nodes, secsStr(hi.SetupS-hi.GatherS))
	}
	rep.bookFinding(p, lo, hi)
	rep.policyFinding(p)
	if d, ok := rep.find(ModeDirect, hi.Nodes); ok && hi.Nodes > 0 {
		p("* Direct at %d nodes: %d metadata operations cold and %d warm (every process's opens reach the server), %s s and %s s at the projection's %.0f operations/s.\n",
			d.Nodes, d.MetaOps, d.WarmMetaOps, secsStr(d.ColdS), secsStr(d.WarmS), rep.Reference.Capacity())
	}
	if st, ok := rep.find(ModeStaging, hi.Nodes); ok {
		p("* Staging at %d nodes: its copies move %.0f MiB through the shared bandwidth, %s s before any process starts.\n", st.Nodes, float64(st.DataBytes)/(1<<20), secsStr(st.SetupS))
	}
	var worstT Result
	for _, x := range rep.Variants {
		if x.Trees > worstT.Trees || (x.Trees == worstT.Trees && x.ColdS > worstT.ColdS) {
			worstT = x
		}
	}
	if worstT.Trees > 1 {
		p("* Several trees: %d trees at %d nodes make the filesystem serve %d metadata operations (%d per tree) and the cold run takes %s s against %s s with one tree: the roots queue at the same metadata server.\n",
			worstT.Trees, worstT.Nodes, worstT.MetaOps, worstT.MetaOps/int64(worstT.Trees), secsStr(worstT.ColdS), secsStr(hi.ColdS))
	}
	for _, x := range rep.Large {
		if x.Mode != ModeCopper || x.LargePath != LargeDirect {
			continue
		}
		for _, y := range rep.Large {
			if y.Mode == ModeCopper && y.LargePath == LargeChunked && y.Nodes == x.Nodes {
				p("* Large files: at %d nodes a %.0f MiB file over `max_cacheable_bytes` costs %s s when every node reads it from the filesystem (%.0f MiB read) against %s s through the tree (%.0f MiB read).\n",
					x.Nodes, float64(x.LargeBytes)/(1<<20), secsStr(x.FirstS()), float64(x.DataBytes)/(1<<20), secsStr(y.FirstS()), float64(y.DataBytes)/(1<<20))
			}
		}
	}
	p("\n")
}

// bookFinding compares the facility-book launch with the all-gather.
func (rep *Report) bookFinding(p printf, lo, hi Result) {
	blo, ok1 := rep.findBook(lo.Nodes)
	bhi, ok2 := rep.findBook(hi.Nodes)
	if !ok1 || !ok2 || hi.Nodes == 0 {
		return
	}
	p("* Facility book: each node reads the site's book of N entries itself (measured here: %s at %d entries, %s per further entry), %s s at %d nodes instead of the all-gather's %s s: the first import goes from %s s at %d to %s s at %d (%.2f×; with the all-gather %.2f×), tree-ready now the larger part of the setup (%s s at %d).\n",
		secsStr(rep.Costs.BookBase+float64(bookSizes[0])*rep.Costs.BookPerRank)+" s", bookSizes[0], us(rep.Costs.BookPerRank), secsStr(bhi.BookS), hi.Nodes, secsStr(hi.GatherS),
		secsStr(blo.FirstS()), blo.Nodes, secsStr(bhi.FirstS()), bhi.Nodes, bhi.FirstS()/blo.FirstS(), hi.FirstS()/lo.FirstS(), secsStr(bhi.SetupS-bhi.BookS), bhi.Nodes)
}

// policyFinding sets copper's projection under the measured readiness
// policy against the other one.
func (rep *Report) policyFinding(p printf) {
	var base []Result
	launch := "the all-gather"
	switch {
	case len(rep.Book) > 0:
		base, launch = rep.Book, "the facility book"
	default:
		for _, x := range rep.Projection {
			if x.Mode == ModeCopper {
				base = append(base, x)
			}
		}
	}
	if len(rep.OtherPolicy) == 0 || len(base) != len(rep.OtherPolicy) {
		return
	}
	var parts []string
	for i, o := range rep.OtherPolicy {
		b := base[i]
		if b.Nodes == 32 || b.Nodes == 8300 || i == len(base)-1 {
			parts = append(parts, fmt.Sprintf("%d nodes: tree-ready %s s → %s s, first import %s s → %s s", b.Nodes,
				secsStr(b.SetupS-b.GatherS-b.BookS), secsStr(o.SetupS-o.GatherS-o.BookS), secsStr(b.FirstS()), secsStr(o.FirstS())))
		}
	}
	p("* Readiness: the measured copper's policy is %s; with %s instead (the same model and launch, %s): %s.\n", rep.Probe.Policy, rep.OtherPolicyName, launch, strings.Join(parts, "; "))
}
