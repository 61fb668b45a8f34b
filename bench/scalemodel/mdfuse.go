package scalemodel

// The copper rows' FUSE requests per node and daemon CPU by role,
// measured (pfsbench's node_calls, cpu_daemon_per_node_s) against the
// model's, for the report.

import (
	"maps"
	"slices"

	"github.com/hpc-copper/copper/bench/pfsbench"
)

// fusePerNode is the nodes' FUSE requests by operation and pushed files
// ("pushed"), mean over nodes; nil without any.
func fusePerNode(calls []pfsbench.NodeCalls) map[string]float64 {
	if len(calls) == 0 {
		return nil
	}
	out := map[string]float64{}
	for _, c := range calls {
		for name, n := range c.Fuse {
			out[name] += float64(n) / float64(len(calls))
		}
		out[fusePush] += float64(c.Pushed) / float64(len(calls))
	}
	return out
}

// addFuse adds a copper cold row's FUSE requests per node by operation
// against the model's (every operation either counts; the ones the model
// does not send show as 0 modelled).
func (rep *Report) addFuse(m MeasuredRow, r Result) {
	if m.Mode != ModeCopper || m.Phase != "cold" {
		return
	}
	ops := map[string]bool{}
	for name := range m.Fuse {
		ops[name] = true
	}
	for name := range r.FusePerNode {
		if m.Fuse != nil { // a run without the nodes' counts has no rows
			ops[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ops)) {
		if m.Fuse[name] == 0 && r.FusePerNode[name] == 0 {
			continue
		}
		rep.Fuse = append(rep.Fuse, FuseRow{Nodes: m.Nodes, Op: name, Measured: m.Fuse[name], Modelled: r.FusePerNode[name]})
	}
	if m.RootDaemonCPUS > 0 {
		rep.Daemons = append(rep.Daemons, DaemonRow{Nodes: m.Nodes, Role: "root", Measured: m.RootDaemonCPUS, Modelled: r.RootDaemonCPUS})
		if m.Nodes > 1 {
			rep.Daemons = append(rep.Daemons, DaemonRow{Nodes: m.Nodes, Role: "non-root, mean", Measured: m.NodeDaemonCPUS, Modelled: r.NodeDaemonCPUS})
		}
	}
}

// mdFuse writes the copper rows' FUSE requests per node.
func (rep *Report) mdFuse(p printf) {
	if len(rep.Fuse) == 0 {
		return
	}
	read := "*read* is modelled as one request per 128 KiB of each file read whole (a calibration from before the readahead rule)"
	if _, ok := rep.Sources["fuse_max_read_bytes"]; ok {
		read = "*read* follows the kernel's readahead for each file read whole (copper's max_read and readahead window, its inputs above): a file whose first access reads it from offset 0 gets that read's initial window (a .pyc read in one call: one READ up to the window; a shared object's 832-byte ELF header: 16 KiB), then READs of the full window; a mapping reads full windows"
	}
	p("FUSE requests a copper node's kernel sent it in the cold runs, per node by operation (measured: every node's `copper-node stats --json` fuse_calls, and kernel_pushes.pushed as *pushed*, after the phase less before it, mean over nodes), against the model's (no timing involved). *readdir* counts READDIRPLUS (the model's per listing is the N=1 row's, measured); %s; an operation the model does not send (the handshakes of the first open) shows 0 modelled and costs nothing in it beyond the per-request CPU fitted on the N=1 row:\n\n", read)
	p("| N | operation | measured per node | modelled per node | error |\n|---|---|---|---|---|\n")
	for _, f := range rep.Fuse {
		p("| %d | %s | %.1f | %.1f | %s |\n", f.Nodes, f.Op, f.Measured, f.Modelled, errorOf(f.Modelled, f.Measured))
	}
	p("\n")
}

// rootAndNodes is rank 0's value (the root's) and the others' mean.
func rootAndNodes(perNode []float64) (root, others float64) {
	if len(perNode) == 0 {
		return 0, 0
	}
	for _, v := range perNode[1:] {
		others += v
	}
	if len(perNode) > 1 {
		others /= float64(len(perNode) - 1)
	}
	return perNode[0], others
}

// mdDaemons writes the copper cold rows' daemon CPU by role.
func (rep *Report) mdDaemons(p printf) {
	if len(rep.Daemons) == 0 {
		return
	}
	p("copper-node CPU of the same cold runs by role (measured: each daemon's schedstat before and after the phase; rank 0 is the tree's root), against what the model charges each daemon: the root's own work per tree (its filesystem requests and bytes, the directories' shipped files included, and its FUSE requests) and its children's calls, a non-root's FUSE requests, pushes and calls up and down:\n\n")
	p("| N | daemon | measured CPU s | modelled CPU s | error |\n|---|---|---|---|---|\n")
	for _, d := range rep.Daemons {
		p("| %d | %s | %s | %s | %s |\n", d.Nodes, d.Role, secsStr(d.Measured), secsStr(d.Modelled), errorOf(d.Modelled, d.Measured))
	}
	p("\n")
}

// errorOf is modelled's relative error against measured, "–" when
// nothing was measured.
func errorOf(modelled, measured float64) string {
	if measured <= 0 {
		return "–"
	}
	return pct((modelled - measured) / measured)
}
