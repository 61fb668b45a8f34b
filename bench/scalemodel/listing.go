package scalemodel

// A copper listing as the code does it now: the root's dirplus reads
// every small regular file of the directory (dir_files_max_bytes, at
// most backend.DirFilesTotal per directory) and ships it with the
// listing to every hop; the kernel lists with READDIRPLUS, which makes a
// dentry for every entry (no LOOKUP follows for a listed name), and the
// node then pushes each listed small file it holds into the kernel's page
// cache (no READ follows for it). A name nobody lists (a .pyc under
// __pycache__: Python opens it by name) is still looked up and read, from
// the node's cache when its directory's dirplus shipped it.

import (
	"fmt"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/bench/pfsbench"
	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/op"
)

// FUSE operations the model counts per node, by copper-node stats
// fuse_calls' names (op's table; a READDIRPLUS counts as readdir), and
// the files pushed (kernel_pushes.pushed).
const (
	fuseLookup      = op.FuseLookup
	fuseRead        = op.FuseRead
	fuseReaddir     = op.FuseReaddir
	fuseReaddirplus = op.FuseReaddir
	fuseReadlink    = op.FuseReadlink
	fusePush        = "pushed"
)

// listingModel says whether the calibration describes the copper with
// READDIRPLUS and pushes (the listing per ReaddirplusPerListing requests,
// a dentry per entry); false: a calibration from before them, READDIR and
// a LOOKUP per name.
func (c *Calibration) listingModel() bool { return c.ReaddirplusPerListing > 0 }

// shipped returns the files of dir whose content travels with its
// dirplus: regular files up to min(DirFiles, MaxCacheable), in listing
// order while the directory's budget lasts (backend.shipFile), and
// their bytes.
func (c *Calibration) shipped(dir string) (files []Entry, bytes int64) {
	limit := min(c.DirFiles, c.MaxCacheable)
	if limit <= 0 {
		return nil, 0
	}
	left := int64(backend.DirFilesTotal)
	for _, e := range c.Workload.Dirs[dir] {
		if e.Dir || e.Link || e.Size > limit || e.Size > left {
			continue
		}
		left -= e.Size
		files = append(files, e)
		bytes += e.Size
	}
	return files, bytes
}

// listRequests is the FUSE requests one listing of dir costs the node.
func (c *Calibration) listRequests() int {
	if !c.listingModel() {
		return 1
	}
	return max(1, int(c.ReaddirplusPerListing+0.5))
}

// countFuse notes n FUSE requests of the operation name on node (weighted as the node).
func (s *sim) countFuse(node int, name string, n int) {
	if s.fuseCalls != nil {
		s.fuseCalls[name] += int64(n * max(s.nodes[node].weight, 1))
	}
}

// listed is the kernel after a READDIRPLUS reply of dir on node: a
// dentry for every entry, and each small file the daemon holds pushed
// into the page cache (the daemon's CPU per push: a request's, its bytes
// included; pushes run after the reply, so no process waits on them).
func (s *sim) listed(node int, dir string) {
	ns := s.nodes[node]
	files, _ := s.cal.shipped(dir)
	var cpu float64
	n := 0
	for _, e := range files {
		p := joinView(dir, e.Name)
		if it := ns.daemon["F:"+p]; it == nil || !it.done {
			continue
		}
		if ns.kernel["L"+p] != nil {
			continue // its inode is not new (looked up before): no push, its read READs
		}
		if it := ns.kernel["D"+p]; it != nil {
			continue // read (or being read) already
		}
		markDone(ns.kernel, "D"+p)
		if e.Size == 0 {
			continue // nothing to push: the kernel reads an empty file without asking
		}
		cpu += s.k.DaemonReq
		n++
	}
	for _, e := range s.cal.Workload.Dirs[dir] {
		markDone(ns.kernel, "L"+joinView(dir, e.Name))
	}
	if n > 0 {
		s.countFuse(node, fusePush, n)
		s.daemon(node, s.now, cpu, 1)
	}
}

// markDone makes key held in m unless a fetch of it is under way or done.
func markDone(m map[string]*item, key string) {
	if m[key] == nil {
		m[key] = &item{done: true}
	}
}

// gotListing is a daemon that now holds dir's dirplus: the files that
// came with it are held too (every hop stores them).
func (s *sim) gotListing(node int, dir string) {
	if s.cal.DirFiles <= 0 {
		return
	}
	files, _ := s.cal.shipped(dir)
	for _, e := range files {
		markDone(s.nodes[node].daemon, "F:"+joinView(dir, e.Name))
	}
}

// shipFiles is a root's reading of dir's shipped files: each opened,
// read and released, on the backend's parallel slots.
func (s *sim) shipFiles(node int, dir string, then func()) {
	files, _ := s.cal.shipped(dir)
	if len(files) == 0 {
		then()
		return
	}
	left := len(files)
	done := func() {
		left--
		if left == 0 {
			then()
		}
	}
	for _, e := range files {
		p := joinView(dir, e.Name)
		s.rootOp(node, "open", p, 0, func() {
			read := func(f func()) { s.rootRead(node, p, e.Size, f) }
			if e.Size == 0 {
				read = func(f func()) { f() } // the kernel has no page to read
			}
			read(func() { s.rootOp(node, "release", p, 0, done) })
		})
	}
}

// list is a process's first listing of dir on node: READDIR (a
// calibration from before READDIRPLUS) or READDIRPLUS requests, then the
// kernel's dentries and the node's pushes.
func (s *sim) list(node int, dir string, fin func()) {
	if !s.cal.listingModel() {
		s.countFuse(node, fuseReaddir, 1)
		s.fuse(node, 1, 0, "P:"+dir, fin)
		return
	}
	n := s.cal.listRequests()
	s.countFuse(node, fuseReaddirplus, n)
	s.fuse(node, n, 0, "P:"+dir, func() {
		s.listed(node, dir)
		fin()
	})
}

// fuseCount is one node's FUSE requests for the trace, by operation
// (pushes as "pushed"), and the bytes its daemon answers or pushes.
type fuseCount struct {
	ops   map[string]int
	bytes int64
}

// requests is every request and push: each costs the daemon one
// DaemonReq (a push is one write to /dev/fuse, as a reply is).
func (f fuseCount) requests() int {
	n := 0
	for _, v := range f.ops {
		n += v
	}
	return n
}

// nodeFuse counts what one node's kernel sends its copper mount for the
// trace, in the order one process asks (the model's structure, no
// timing): a listing's READDIRPLUS requests make a dentry per entry and
// push the listed small files the daemon holds; a LOOKUP, READ or
// READLINK is sent only for what that left out.
func (c *Calibration) nodeFuse() fuseCount {
	f := fuseCount{ops: map[string]int{}}
	looked, data, listed, held := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	fetch := func(dir string) { // the daemon's dirplus: its shipped files held
		if listed[dir+"/"] {
			return
		}
		listed[dir+"/"] = true
		files, _ := c.shipped(dir)
		for _, e := range files {
			held[joinView(dir, e.Name)] = true
		}
	}
	for _, a := range c.Workload.compile(128) {
		switch a.kind {
		case aLookup:
			if !looked[a.path] {
				looked[a.path] = true
				f.ops[fuseLookup]++
				fetch(parent(a.path))
			}
		case aReadlink:
			f.ops[fuseReadlink]++
			fetch(parent(a.path))
		case aReaddir:
			if listed[a.path] {
				continue
			}
			listed[a.path] = true
			fetch(a.path)
			if !c.listingModel() {
				f.ops[fuseReaddir]++
				continue
			}
			f.ops[fuseReaddirplus] += c.listRequests()
			files, _ := c.shipped(a.path)
			for _, e := range files {
				if p := joinView(a.path, e.Name); held[p] && !data[p] && !looked[p] {
					data[p] = true
					if e.Size == 0 {
						continue
					}
					f.ops[fusePush]++
					f.bytes += e.Size
				}
			}
			for _, e := range c.Workload.Dirs[a.path] {
				looked[joinView(a.path, e.Name)] = true
			}
		case aData:
			if a.size == 0 && c.listingModel() {
				continue // an empty file: the kernel reads nothing from the node
			}
			if a.size <= c.MaxCacheable && !data[a.path] {
				data[a.path] = true
				f.ops[fuseRead] += c.readRequests(a.size, a.first)
				f.bytes += a.size
			}
		}
	}
	return f
}

// fitListing sets the listing's structure from the measured copper: the
// dir_files_max_bytes copper ships by default and, when the N=1 cold
// row's nodes counted READDIRPLUS, the requests one listing costs (its
// count over the directories the trace lists).
func (c *Calibration) fitListing(r *pfsbench.Row) {
	c.DirFiles = config.Default().DirFilesMaxBytes
	c.Sources["dir_files_max_bytes"] = "copper's default dir_files_max_bytes (config.Default): a dirplus ships every regular file up to it, at most backend.DirFilesTotal per directory"
	calls := fusePerNode(r.NodeCalls)
	if calls[fuseReaddirplus] <= 0 {
		return
	}
	dirs := map[string]bool{}
	for _, a := range c.Workload.compile(128) {
		if a.kind == aReaddir {
			dirs[a.path] = true
		}
	}
	lists := len(dirs)
	c.ReaddirplusPerListing = calls[fuseReaddirplus] / float64(max(lists, 1))
	c.Sources["readdirplus_per_listing"] = fmt.Sprintf("measured: N=1 copper cold replay, the node's READDIRPLUS requests (copper-node stats fuse_calls), %.0f, over the %d directories the trace lists", calls[fuseReaddirplus], lists)
}

// daemon charges d of node's daemon CPU m times (a parent serving m
// children alike) from at, noted per node, and returns when it ends.
func (s *sim) daemon(node int, at, d float64, m int) float64 {
	if s.daemonCPU != nil {
		s.daemonCPU[node] += d * float64(max(m, 1))
	}
	return reserveN(s.nodes[node].cpu, at, d, m)
}

// copperCounts puts the cold phase's FUSE requests per node and the
// daemons' CPU (the first root's, a non-root's mean) in res.
func (s *sim) copperCounts(res *Result) {
	res.FusePerNode = map[string]float64{}
	for name, n := range s.fuseCalls {
		res.FusePerNode[name] = float64(n) / float64(s.sc.Nodes)
	}
	var sum float64
	var n int
	for i, ns := range s.nodes {
		switch {
		case i == 0:
			res.RootDaemonCPUS = s.daemonCPU[i] / s.slow
		case !ns.pos.IsRoot() && ns.weight > 0:
			sum += s.daemonCPU[i] / s.slow
			n++
		}
	}
	if n > 0 {
		res.NodeDaemonCPUS = sum / float64(n)
	}
}
