package node

import (
	"github.com/hpc-copper/copper/op"
)

// Peek answers o on path from the cache alone, or reports false: it never
// waits (no parent, no backend, no flight), so a server runs it on a
// connection's reader (cnet.Config.Peek) and hands only what it cannot
// answer to Get on a worker. What it answers is counted and observed as
// Get's cache hit; what it does not, Get counts.
func (n *Node) Peek(o op.Op, path string) (op.Result, bool) {
	switch {
	case o == op.IsReady || o == op.Chunk || !o.Valid():
		return op.Result{}, false // Get's own paths: they may wait
	case op.CheckPath(path) != 0:
		return op.Result{}, false // Get answers the errno
	case o == op.DirPlus || o == op.DirPlusNext:
		return n.peekDirPlus(o, path)
	}
	r, ok := n.cfg.Cache.Peek(o, path)
	if !ok {
		return op.Result{}, false
	}
	n.hits[o].Add(1)
	if n.cfg.Observe != nil {
		n.observe(o, path, n.hitOutcome(path, r), r)
	}
	return r, true
}

// peekDirPlus is Peek of a DirPlus or DirPlusNext: getDirPlus's hit.
func (n *Node) peekDirPlus(o op.Op, path string) (op.Result, bool) {
	dir, after := path, ""
	if o == op.DirPlusNext {
		if path == "/" {
			return op.Result{}, false // Get answers EINVAL
		}
		dir, after = split(path)
	}
	r, ok := n.cfg.Cache.Peek(op.DirPlus, dir)
	if !ok {
		return op.Result{}, false
	}
	n.hits[o].Add(1)
	outcome := OutcomeHit
	if n.cfg.Observe != nil {
		outcome = n.hitOutcome(dir, r)
	}
	return n.dirPlusAnswer(o, dir, after, outcome, r), true
}
