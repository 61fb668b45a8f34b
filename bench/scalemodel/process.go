package scalemodel

import "github.com/hpc-copper/copper/tree"

type nodeState struct {
	kernel   map[string]*item // the node's kernel caches (copper mount or PFS client)
	daemon   map[string]*item // copper-node's cache
	cpu      *pool            // copper-node's cores (the host's in Host mode)
	nic      *pipe            // outbound wire (nil in Host mode: loopback)
	pos      tree.Position
	served   int64
	pfsSeen  map[string]bool // entries this node's PFS client has looked up (a copper root's)
	backend  *sem            // a root's backend_parallel
	lastDone float64
	// weight is how many identical real nodes this one stands for (the
	// projection simulates one leaf per parent and direct/staging nodes in
	// classes; see represent); 0 = not simulated, another node stands for it.
	weight int
}

type sim struct {
	engine
	cal      *Calibration
	sc       Scenario
	server   Server
	acts     []action
	host     *pool // Host mode: every CPU cost
	mds      []*pool
	oss      *pipe
	nodes    []*nodeState
	clientOp float64
	k        Costs   // the calibration's, slowed to the host's share in Host mode
	slow     float64 // that slow-down (1 outside Host mode)
	base     Costs   // Host mode: the host's costs before the slow-down
	// wake (Host mode) is this host's wait per FUSE request beyond its
	// CPU and service (Calibration.Wake): not CPU, no core held.
	wake float64
	// cpuAdj corrects the setup's CPU (host busy / slow) for a step run
	// at another slow-down (staging's tar -c).
	cpuAdj float64

	// counters of the current phase
	ops       map[string]int64
	fuseCalls map[string]int64 // copper: FUSE requests (and pushes) by op, every node's
	daemonCPU []float64        // copper: each node's daemon CPU charged (slowed costs)
	fetches   map[string]int64 // "kind path" → fetches
	bytes     int64
}

func (s *sim) hostBusy() float64 {
	if s.host == nil {
		return 0
	}
	return s.host.busy
}

func (s *sim) resetCounters() {
	s.ops, s.fetches, s.bytes, s.fuseCalls = map[string]int64{}, map[string]int64{}, 0, map[string]int64{}
	s.daemonCPU = make([]float64, len(s.nodes))
}

// metaKinds are the operations charged a metadata slot.
var metaKinds = map[string]string{"lookup": "stat", "open": "open", "opendir": "list", "readdir": "", "readlink": "link"}

func (s *sim) counters() (meta, bytes int64, byKind map[string]int64, perKey float64) {
	for k, v := range s.ops {
		if _, ok := metaKinds[k]; ok {
			meta += v
		}
	}
	var total int64
	for _, v := range s.fetches {
		total += v
	}
	if len(s.fetches) > 0 {
		perKey = float64(total) / float64(len(s.fetches))
	}
	return meta, s.bytes, s.ops, perKey
}

// phase releases every process at t0 and returns the time to the last
// one done and the mean over nodes of each node's last one.
func (s *sim) phase(t0 float64) (last, meanNode float64) {
	groups, w := s.sc.Procs, 1
	if !s.sc.Host {
		// Each process has its own core and they all replay the same
		// trace: one representative per node, whose per-process server
		// operations are issued Procs times.
		groups, w = 1, s.sc.Procs
	}
	for n, ns := range s.nodes {
		ns.lastDone = t0
		if ns.weight == 0 {
			continue
		}
		for range groups {
			g := &group{node: n, w: w}
			s.at(t0, func() { s.step(g) })
		}
	}
	s.run()
	var sum float64
	for _, ns := range s.nodes {
		last = max(last, ns.lastDone-t0)
		sum += float64(ns.weight) * (ns.lastDone - t0)
	}
	return last, sum / float64(len(s.nodes))
}

// directClasses is how many representative nodes the projection of
// direct and staging simulates: their nodes differ only in the order
// their requests reach the server.
const directClasses = 64

// represent makes the projection tractable at 20,000 nodes without
// changing what it computes under its assumptions (each node has its own
// cores, so identical nodes started together stay identical): a copper
// parent's leaf children ask it the same things at the same times, so
// one leaf stands for all of them (the parent still serves, and the
// filesystem still counts, each); direct and staging nodes are
// simulated in directClasses classes whose requests are reserved at the
// server once per real node.
func (s *sim) represent() {
	if s.sc.Mode == ModeCopper {
		for _, ns := range s.nodes {
			var rep *nodeState
			for _, c := range ns.pos.Children {
				ch := s.nodes[c]
				if len(ch.pos.Children) > 0 {
					continue
				}
				if rep == nil {
					rep = ch
					continue
				}
				rep.weight++
				ch.weight = 0
			}
		}
		return
	}
	classes := min(len(s.nodes), directClasses)
	for n, ns := range s.nodes {
		ns.weight = 0
		if n < classes {
			ns.weight = len(s.nodes) / classes
			if n < len(s.nodes)%classes {
				ns.weight++
			}
		}
	}
}

type group struct {
	node, w, pc int
}

// clientCPU charges a process's own CPU and continues with f.
func (s *sim) clientCPU(d float64, f func()) {
	if s.host != nil {
		s.at(s.host.reserve(s.now, d), f)
		return
	}
	s.at(s.now+d, f)
}

// step runs a process's actions until one has to wait.
func (s *sim) step(g *group) {
	ns := s.nodes[g.node]
	next := func() { s.step(g) }
	// In the projection a process's CPU is its own core's: consecutive
	// costs add up without an event until a need is not held yet (held
	// stays held, so checking it early is exact).
	var debt float64
	for g.pc < len(s.acts) {
		a := &s.acts[g.pc]
		switch {
		case a.kind == aCPU:
			g.pc++
			if s.host != nil {
				s.clientCPU(float64(a.n)*s.clientOp, next)
				return
			}
			debt += float64(a.n) * s.clientOp
			continue
		case s.sc.Mode == ModeStaging:
			g.pc++
			continue // local disk: the syscall's CPU is all
		case debt > 0 && !s.held(ns, a):
			s.at(s.now+debt, next)
			return
		}
		g.pc++
		if !s.need(g, ns, a, next) {
			return
		}
	}
	if debt > 0 {
		s.at(s.now+debt, func() { ns.lastDone = max(ns.lastDone, s.now) })
		return
	}
	ns.lastDone = max(ns.lastDone, s.now)
}

// held reports whether a needs nothing from outside the node's kernel.
func (s *sim) held(ns *nodeState, a *action) bool {
	key := ""
	switch a.kind {
	case aLookup:
		key = "L" + a.path
	case aData:
		key = "D" + a.path
	case aReadlink:
		key = "K" + a.path
	case aReaddir:
		key = "R" + a.path
	case aOpen:
		return s.sc.Mode != ModeDirect
	}
	it := ns.kernel[key]
	return it != nil && it.done
}

// need serves one non-CPU action; true if the process can go on at once.
func (s *sim) need(g *group, ns *nodeState, a *action, next func()) bool {
	direct := s.sc.Mode == ModeDirect
	switch a.kind {
	case aLookup:
		if direct {
			return flight(ns.kernel, "L"+a.path, func(fin func()) { s.serverOp(g.node, true, "lookup", a.path, ns.weight, fin) }, next)
		}
		return flight(ns.kernel, "L"+a.path, func(fin func()) {
			s.countFuse(g.node, fuseLookup, 1)
			s.fuse(g.node, 1, 0, "P:"+parent(a.path), fin)
		}, next)
	case aOpen:
		if !direct {
			return true // no-open: the kernel opens files itself after the first ENOSYS
		}
		kind, rel := "open", "release"
		if a.dir {
			kind, rel = "opendir", "releasedir"
		}
		m := g.w * ns.weight
		s.serverOp(g.node, true, kind, a.path, m, func() { s.serverOp(g.node, true, rel, a.path, m, next) })
		return false
	case aData:
		if direct {
			return flight(ns.kernel, "D"+a.path, func(fin func()) { s.dataRead(g.node, true, a.path, a.size, ns.weight, fin) }, next)
		}
		if a.size == 0 && s.cal.listingModel() {
			return true // an empty file: the kernel reads nothing from the node
		}
		chunks := s.cal.readRequests(a.size, a.first)
		if s.readsLargeDirect(a) {
			return s.largeDirect(g, ns, a, next)
		}
		return flight(ns.kernel, "D"+a.path, func(fin func()) {
			s.countFuse(g.node, fuseRead, chunks)
			s.fuse(g.node, chunks, a.size, "F:"+a.path, fin)
		}, next)
	case aReaddir:
		if direct {
			// The PFS client keeps a listing once one is read, but
			// processes that open the directory before that each read it.
			if it := ns.kernel["R"+a.path]; it != nil && it.done {
				return true
			}
			s.serverSeq(g.node, true, "readdir", a.path, a.pages, g.w*ns.weight, func() {
				ns.kernel["R"+a.path] = &item{done: true}
				next()
			})
			return false
		}
		return flight(ns.kernel, "R"+a.path, func(fin func()) { s.list(g.node, a.path, fin) }, next)
	case aReadlink:
		if direct {
			return flight(ns.kernel, "K"+a.path, func(fin func()) { s.serverOp(g.node, true, "readlink", a.path, ns.weight, fin) }, next)
		}
		return flight(ns.kernel, "K"+a.path, func(fin func()) {
			s.countFuse(g.node, fuseReadlink, 1)
			s.fuse(g.node, 1, 0, "P:"+parent(a.path), fin)
		}, next)
	}
	return true
}

func chunks(size int64) int { return max(1, int((size+(128<<10)-1)/(128<<10))) }
