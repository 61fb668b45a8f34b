package scalemodel

// The large-file variant: one file over MaxCacheable that every process
// reads at the end of the import, and the two paths copper can move it
// by (Scenario.LargePath).

// largePath is the large file's path in the view.
const largePath = "/site/_large.bin"

// largeActions are what a process does for the large file after the
// import: a syscall's CPU, its open, then its read.
func largeActions(size int64) []action {
	return []action{{kind: aCPU, n: 1}, {kind: aOpen, path: largePath},
		{kind: aData, path: largePath, size: size}}
}

// fileSize is p's size: the large file's, or the workload's entry's.
func (s *sim) fileSize(p string) int64 {
	if p == largePath {
		return s.sc.LargeBytes
	}
	e, _ := s.cal.Workload.entry(p)
	return e.Size
}

// readsLargeDirect reports whether a copper node reads a from the
// filesystem itself: a file over MaxCacheable on the direct path.
func (s *sim) readsLargeDirect(a *action) bool {
	large := a.kind == aData && a.size > s.cal.MaxCacheable
	return large && s.sc.LargePath == LargeDirect
}

// largeDirect is a node's own read of a large file: the node opens the
// file on the filesystem itself.
func (s *sim) largeDirect(g *group, ns *nodeState, a *action, next func()) bool {
	return flight(ns.kernel, "D"+a.path, func(fin func()) {
		s.serverOp(g.node, true, "open", a.path, ns.weight, func() { s.dataRead(g.node, true, a.path, a.size, ns.weight, fin) })
	}, next)
}
