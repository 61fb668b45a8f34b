package scalemodel

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"

	"github.com/hpc-copper/copper/tree"
)

// Modes.
const (
	ModeDirect  = "direct"  // every process reads the parallel filesystem through its node's client
	ModeCopper  = "copper"  // every process reads its node's copper mount; tree roots read the filesystem
	ModeStaging = "staging" // tar the tree once, every node copies and extracts it, processes read local disk
)

// Modes lists the modes in report order.
var Modes = []string{ModeDirect, ModeCopper, ModeStaging}

// Large-file paths for files over MaxCacheable.
const (
	LargeDirect  = "direct"  // each node reads it from the filesystem (copper today)
	LargeChunked = "chunked" // it travels the tree like a small file (the root reads it once)
)

// Scenario is one run of the model.
type Scenario struct {
	Mode   string
	Nodes  int
	Procs  int // processes per node
	Trees  int // copper -T; 0 = 1
	Fanout int // 0 = tree.AutoFanout
	// Host: every node, process, daemon and the emulator share the
	// calibration host's cores, the emulator's CPU is charged and the
	// server is the emulator (validation against pfsbench). Otherwise
	// each node has its own cores and the server is the reference.
	Host bool
	// LargeBytes > 0 adds one file of that size that every process
	// reads at the end of the import; LargePath says how copper moves it.
	LargeBytes int64
	LargePath  string
}

// Result is what one scenario gives.
type Result struct {
	Scenario
	TreeFanout    int     `json:"tree_fanout"`      // the fan-out used
	Depth         int     `json:"depth"`            // the deepest node's hops to its root
	SetupS        float64 `json:"setup_s"`          // copper: tree-ready; staging: the copies
	ColdS         float64 `json:"cold_s"`           // release to the last process done, first run
	ColdMeanNodeS float64 `json:"cold_mean_node_s"` // mean over nodes of their last process
	WarmS         float64 `json:"warm_s"`           // the same job again
	// Requests served to children (copper): the busiest root and the
	// busiest interior (non-root, non-leaf) node, cold phase.
	RootRequests     int64 `json:"root_requests"`
	InteriorRequests int64 `json:"interior_requests"`
	// The filesystem, cold phase (staging: its setup) and warm phase.
	MetaOps       int64            `json:"metadata_ops"`
	OpsByKind     map[string]int64 `json:"ops_by_kind"`
	DataBytes     int64            `json:"data_bytes"`
	WarmMetaOps   int64            `json:"warm_metadata_ops"`
	FetchesPerKey float64          `json:"fetches_per_key"` // metadata fetches per distinct (path, kind)
	Events        int64            `json:"events"`
	// Host mode: CPU seconds the run's processes, daemons and emulator
	// spend (at full speed), cold and warm: what rusage would show.
	ColdCPUS float64 `json:"cold_cpu_s,omitempty"`
	WarmCPUS float64 `json:"warm_cpu_s,omitempty"`
}

// HostShare is the cores' worth of CPU a run of threads runnable threads
// gets on a host of cores cores where a probe of cores threads got
// probed: the kernel shares CPU per runnable thread, so the probe says
// how many other threads compete (cores·(cores/probed − 1)), and a run
// with more threads of its own gets a larger share. The run's threads
// are taken as N × (processes + copper-node) + the emulator, all
// runnable: an upper bound on its share.
func HostShare(cores int, probed float64, threads int) float64 {
	c := float64(cores)
	if probed >= c {
		return c
	}
	others := c * (c/probed - 1)
	return min(c, c*float64(threads)/(float64(threads)+others))
}

// FirstS is the time to the first import: setup plus the cold run.
func (r Result) FirstS() float64 { return r.SetupS + r.ColdS }

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

	// counters of the current phase
	ops     map[string]int64
	fetches map[string]int64 // "kind path" → fetches
	bytes   int64
}

// Run models one scenario.
func Run(cal *Calibration, sc Scenario) (Result, error) {
	if err := cal.Check(); err != nil {
		return Result{}, err
	}
	if sc.Trees == 0 {
		sc.Trees = 1
	}
	if sc.LargePath == "" {
		sc.LargePath = LargeDirect
	}
	if sc.Nodes < 1 || sc.Procs < 1 {
		return Result{}, fmt.Errorf("scenario %s: %d nodes × %d processes: want both ≥ 1", sc.Mode, sc.Nodes, sc.Procs)
	}
	if !slices.Contains(Modes, sc.Mode) {
		return Result{}, fmt.Errorf("scenario mode %q: want one of %v", sc.Mode, Modes)
	}
	if sc.LargePath != LargeDirect && sc.LargePath != LargeChunked {
		return Result{}, fmt.Errorf("scenario large-file path %q: want %s or %s", sc.LargePath, LargeDirect, LargeChunked)
	}
	s := &sim{cal: cal, sc: sc, server: cal.Reference, slow: 1}
	if sc.Host {
		s.server = cal.Emulator
		s.host = newPool(cal.HostCores)
	}
	s.acts = cal.Workload.compile(s.server.EntriesPerPage)
	if sc.LargeBytes > 0 {
		s.acts = append(s.acts, action{kind: aCPU, n: 1}, action{kind: aOpen, path: largePath},
			action{kind: aData, path: largePath, size: sc.LargeBytes})
	}
	for range max(s.server.MDTs, 1) {
		s.mds = append(s.mds, newPool(s.server.Slots))
	}
	s.oss = &pipe{bw: s.server.Bandwidth}
	res := Result{Scenario: sc}
	for n := range sc.Nodes {
		pos, err := tree.Locate(sc.Nodes, sc.Trees, sc.Fanout, n)
		if err != nil {
			return Result{}, fmt.Errorf("scenario %s N=%d: %w", sc.Mode, sc.Nodes, err)
		}
		ns := &nodeState{kernel: map[string]*item{}, daemon: map[string]*item{}, pos: pos, cpu: s.host, weight: 1}
		if !sc.Host {
			ns.cpu = newPool(cal.Machine.DaemonCores)
			ns.nic = &pipe{bw: cal.Machine.NICBandwidth}
		}
		if pos.IsRoot() {
			ns.pfsSeen = map[string]bool{}
			ns.backend = &sem{n: cal.BackendParallel}
		}
		res.TreeFanout = pos.Fanout
		res.Depth = max(res.Depth, pos.Depth)
		s.nodes = append(s.nodes, ns)
	}
	if !sc.Host {
		s.represent()
	}
	s.k = cal.Costs
	if sc.Host {
		// Other jobs share the host: each core runs ours slower.
		f := float64(cal.HostCores) / HostShare(cal.HostCores, cal.HostAvailable, sc.Nodes*(sc.Procs+1)+1)
		s.slow = f
		for _, c := range []*float64{&s.k.ClientOpNative, &s.k.ClientOpMount, &s.k.ClientReq, &s.k.ClientByte, &s.k.EmulatorOp,
			&s.k.EmulatorByte, &s.k.DaemonReq, &s.k.HopCPU, &s.k.HopByte, &s.k.TarExtractCPU} { // CPU seconds; the starts and tar are wall times
			*c *= f
		}
	}
	s.clientOp = s.k.ClientOpMount
	if sc.Mode == ModeStaging {
		s.clientOp = s.k.ClientOpNative
	}

	// Setup.
	s.resetCounters()
	switch sc.Mode {
	case ModeCopper:
		res.SetupS = s.treeReady()
	case ModeStaging:
		s.stage(func() {})
		s.run()
		res.SetupS = s.now
		res.MetaOps, res.DataBytes, res.OpsByKind, res.FetchesPerKey = s.counters()
	}
	// Cold, then warm, each from a release of every process at once.
	busy := s.hostBusy()
	res.ColdS, res.ColdMeanNodeS = s.phase(res.SetupS)
	res.ColdCPUS = (s.hostBusy() - busy) / s.slow
	if sc.Mode != ModeStaging {
		res.MetaOps, res.DataBytes, res.OpsByKind, res.FetchesPerKey = s.counters()
	}
	for _, ns := range s.nodes {
		switch {
		case ns.pos.IsRoot():
			res.RootRequests = max(res.RootRequests, ns.served)
		case len(ns.pos.Children) > 0:
			res.InteriorRequests = max(res.InteriorRequests, ns.served)
		}
	}
	s.resetCounters()
	busy = s.hostBusy()
	res.WarmS, _ = s.phase(s.now)
	res.WarmCPUS = (s.hostBusy() - busy) / s.slow
	res.WarmMetaOps, _, _, _ = s.counters()
	res.Events = int64(s.seq)
	return res, nil
}

const largePath = "/site/_large.bin"

func (s *sim) hostBusy() float64 {
	if s.host == nil {
		return 0
	}
	return s.host.busy
}

func (s *sim) resetCounters() {
	s.ops, s.fetches, s.bytes = map[string]int64{}, map[string]int64{}, 0
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
	large := a.kind == aData && a.size > s.cal.MaxCacheable
	switch a.kind {
	case aLookup:
		if direct {
			return flight(ns.kernel, "L"+a.path, func(fin func()) { s.serverOp(g.node, true, "lookup", a.path, ns.weight, fin) }, next)
		}
		return flight(ns.kernel, "L"+a.path, func(fin func()) { s.fuse(g.node, 1, 0, "P:"+parent(a.path), fin) }, next)
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
		chunks := chunks(a.size)
		if large && s.sc.LargePath == LargeDirect {
			// The node opens the file on the filesystem itself.
			return flight(ns.kernel, "D"+a.path, func(fin func()) {
				s.serverOp(g.node, true, "open", a.path, ns.weight, func() { s.dataRead(g.node, true, a.path, a.size, ns.weight, fin) })
			}, next)
		}
		return flight(ns.kernel, "D"+a.path, func(fin func()) {
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
		return flight(ns.kernel, "R"+a.path, func(fin func()) { s.fuse(g.node, 1, 0, "P:"+a.path, fin) }, next)
	case aReadlink:
		if direct {
			return flight(ns.kernel, "K"+a.path, func(fin func()) { s.serverOp(g.node, true, "readlink", a.path, ns.weight, fin) }, next)
		}
		return flight(ns.kernel, "K"+a.path, func(fin func()) { s.fuse(g.node, 1, 0, "P:"+parent(a.path), fin) }, next)
	}
	return true
}

func chunks(size int64) int { return max(1, int((size+(128<<10)-1)/(128<<10))) }

// fuse is n FUSE requests from a process on node to its copper-node
// (size bytes answered), which needs key from its cache or the tree.
func (s *sim) fuse(node, n int, size int64, key string, fin func()) {
	k := s.k
	ns := s.nodes[node]
	client := float64(n)*k.ClientReq + float64(size)*k.ClientByte
	if s.host == nil {
		// The process's own core, then the daemon's: booked at once.
		s.at(ns.cpu.reserve(s.now+client, float64(n)*k.DaemonReq), func() { s.daemonGet(node, key, fin) })
		return
	}
	s.clientCPU(client, func() {
		s.at(ns.cpu.reserve(s.now, float64(n)*k.DaemonReq), func() {
			s.daemonGet(node, key, fin)
		})
	})
}

// daemonGet is node.Get's cache and singleflight: held, joined, or
// fetched from the parent (root: the filesystem).
func (s *sim) daemonGet(node int, key string, cb func()) {
	ns := s.nodes[node]
	if flight(ns.daemon, key, func(fin func()) {
		if ns.pos.IsRoot() {
			s.backendFetch(node, key, fin)
		} else {
			s.forward(node, key, fin)
		}
	}, cb) {
		cb()
	}
}

// answerBytes is the size of the answer to key on the wire.
func (s *sim) answerBytes(key string) int64 {
	p := key[2:]
	if key[0] == 'F' {
		if p == largePath {
			return s.sc.LargeBytes
		}
		e, _ := s.cal.Workload.entry(p)
		return e.Size + 128
	}
	return int64(len(s.cal.Workload.Dirs[p]))*160 + 64 // name, attributes, framing
}

// forward asks the parent over one hop.
func (s *sim) forward(node int, key string, fin func()) {
	k := s.k
	child := s.nodes[node]
	par := s.nodes[child.pos.Parent]
	lat := s.cal.Machine.NetLatency
	if s.sc.Host {
		lat = 0 // loopback: the hop's cost is its CPU
	}
	b := s.answerBytes(key)
	m := child.weight // the parent serves each real child
	s.at(child.cpu.reserve(s.now, k.HopCPU/2)+lat, func() {
		par.served += int64(m)
		s.at(reserveN(par.cpu, s.now, k.HopCPU/2, m), func() {
			s.daemonGet(child.pos.Parent, key, func() {
				s.at(reserveN(par.cpu, s.now, float64(b)*k.HopByte/2, m), func() {
					t := s.now + lat
					if par.nic != nil {
						t = par.nic.reserve(s.now, b*int64(m)) + lat
					}
					s.at(t, func() {
						s.at(child.cpu.reserve(s.now, float64(b)*k.HopByte/2), fin)
					})
				})
			})
		})
	})
}

// reserveN books m jobs of d on p at now and returns when the last ends.
func reserveN(p *pool, now, d float64, m int) float64 {
	end := now
	for range max(m, 1) {
		end = max(end, p.reserve(now, d))
	}
	return end
}

// backendFetch is a root's filesystem work for key: a dirplus (the
// path walk its client has not made, opendir, readdir pages, a stat of
// every entry on the backend's parallel slots, each link's readlink)
// or a file read (stat if not held, open, read, release).
func (s *sim) backendFetch(node int, key string, fin func()) {
	ns := s.nodes[node]
	p := key[2:]
	walk := func(then func()) {
		var todo []string
		for _, c := range components(p) {
			if !ns.pfsSeen[c] {
				ns.pfsSeen[c] = true
				todo = append(todo, c)
			}
		}
		s.chain(node, "lookup", todo, then)
	}
	if key[0] == 'F' {
		var size int64
		if p == largePath {
			size = s.sc.LargeBytes
		} else {
			e, _ := s.cal.Workload.entry(p)
			size = e.Size
		}
		walk(func() {
			s.rootOp(node, "open", p, 0, func() {
				s.rootRead(node, p, size, func() { s.rootOp(node, "release", p, 0, fin) })
			})
		})
		return
	}
	walk(func() {
		s.rootOp(node, "opendir", p, 0, func() {
			es := s.cal.Workload.Dirs[p]
			s.rootSeq(node, "readdir", p, pages(len(es), s.server.EntriesPerPage), func() {
				var stat, links []string
				for _, e := range es {
					c := joinView(p, e.Name)
					if !ns.pfsSeen[c] {
						ns.pfsSeen[c] = true
						stat = append(stat, c)
					}
					if e.Link {
						links = append(links, c)
					}
				}
				s.parallel(node, "lookup", stat, func() {
					s.parallel(node, "readlink", links, func() { s.rootOp(node, "releasedir", p, 0, fin) })
				})
			})
		})
	})
}

func joinView(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// chain runs one op per path, one after the other, at a root.
func (s *sim) chain(node int, kind string, paths []string, then func()) {
	if len(paths) == 0 {
		then()
		return
	}
	s.rootOp(node, kind, paths[0], 0, func() { s.chain(node, kind, paths[1:], then) })
}

// parallel runs one op per path at once (bounded by backend_parallel).
func (s *sim) parallel(node int, kind string, paths []string, then func()) {
	if len(paths) == 0 {
		then()
		return
	}
	left := len(paths)
	for _, p := range paths {
		s.rootOp(node, kind, p, 0, func() {
			left--
			if left == 0 {
				then()
			}
		})
	}
}

func (s *sim) rootSeq(node int, kind, p string, n int, then func()) {
	if n == 0 {
		then()
		return
	}
	s.rootOp(node, kind, p, 0, func() { s.rootSeq(node, kind, p, n-1, then) })
}

// rootOp is one backend operation of a root, on one of its
// backend_parallel slots.
func (s *sim) rootOp(node int, kind, p string, _ int64, then func()) {
	b := s.nodes[node].backend
	b.acquire(func() {
		s.serverOp(node, false, kind, p, 1, func() {
			b.release()
			then()
		})
	})
}

func (s *sim) rootRead(node int, p string, size int64, then func()) {
	b := s.nodes[node].backend
	b.acquire(func() {
		s.dataRead(node, false, p, size, 1, func() {
			b.release()
			then()
		})
	})
}

// serverSeq runs n ops of kind on p one after the other from a client.
func (s *sim) serverSeq(node int, client bool, kind, p string, n, mult int, then func()) {
	if n == 0 {
		then()
		return
	}
	s.serverOp(node, client, kind, p, mult, func() { s.serverSeq(node, client, kind, p, n-1, mult, then) })
}

// requesterCPU charges the side that makes a filesystem request: a
// process (client) or a copper root's daemon.
func (s *sim) requesterCPU(node int, client bool, d float64, f func()) {
	if client {
		s.clientCPU(d, f)
		return
	}
	s.at(s.nodes[node].cpu.reserve(s.now, d), f)
}

// serverOp is one filesystem operation: the requester's CPU, the
// emulator's (Host mode), then a metadata slot (release/releasedir are
// free) of the directory's server.
func (s *sim) serverOp(node int, client bool, kind, p string, mult int, then func()) {
	k := s.k
	mult = max(mult, 1)
	s.ops[kind] += int64(mult)
	if cls, ok := metaKinds[kind]; ok && cls != "" {
		s.fetches[cls+" "+p] += int64(mult)
	}
	s.requesterCPU(node, client, k.ClientReq, func() {
		emu := func(f func()) { f() }
		if s.host != nil {
			emu = func(f func()) { s.at(s.host.reserve(s.now, k.EmulatorOp), f) }
		}
		emu(func() {
			if _, meta := metaKinds[kind]; !meta {
				then()
				return
			}
			mdt := s.mds[0]
			if len(s.mds) > 1 {
				h := fnv.New32a()
				h.Write([]byte(parent(p)))
				mdt = s.mds[int(h.Sum32())%len(s.mds)]
			}
			s.at(reserveN(mdt, s.now, s.server.MetadataService, mult), then)
		})
	})
}

// dataRead reads size bytes of p: requester and emulator CPU per chunk
// and byte, then the shared bandwidth.
func (s *sim) dataRead(node int, client bool, p string, size int64, mult int, then func()) {
	k := s.k
	n := chunks(size)
	mult = max(mult, 1)
	s.ops["read"] += int64(n * mult)
	s.bytes += size * int64(mult)
	s.requesterCPU(node, client, float64(n)*k.ClientReq+float64(size)*k.ClientByte, func() {
		emu := func(f func()) { f() }
		if s.host != nil {
			emu = func(f func()) { s.at(s.host.reserve(s.now, float64(n)*k.EmulatorOp+float64(size)*k.EmulatorByte), f) }
		}
		emu(func() { s.at(s.oss.reserve(s.now, size*int64(mult)), then) })
	})
}

// treeReady is copper's setup: every daemon starts (Host mode: all on
// the host's cores), and a node is ready once it and its parent are,
// plus one readiness round trip.
func (s *sim) treeReady() float64 {
	k := s.k
	ready := make([]float64, len(s.nodes))
	var last float64
	for n, ns := range s.nodes { // parents have lower ranks
		started := k.NodeStart
		if s.host != nil {
			started = s.host.reserve(0, k.NodeStart)
		}
		if ns.pos.IsRoot() {
			ready[n] = started
		} else {
			hop := k.HopCPU
			if s.host == nil {
				hop += 2 * s.cal.Machine.NetLatency
			}
			ready[n] = max(started, ready[ns.pos.Parent]) + hop
		}
		last = max(last, ready[n])
	}
	return last
}

// stage is staging's setup: node 0 tars the tree from the filesystem
// (one client, one operation at a time), then every node reads the tar
// through its own client and extracts it.
func (s *sim) stage(then func()) {
	k := s.k
	t := s.cal.Workload.Tree
	tarBytes := t.Bytes + s.sc.LargeBytes + int64(t.Files+t.Dirs)*1024 // headers and padding
	var steps []func(func())
	for range t.Dirs {
		steps = append(steps,
			func(f func()) { s.serverOp(0, true, "lookup", "tar", 0, f) },
			func(f func()) { s.serverOp(0, true, "opendir", "tar", 0, f) },
			func(f func()) { s.serverOp(0, true, "readdir", "tar", 0, f) })
	}
	per := int64(0)
	if t.Files > 0 {
		per = t.Bytes / int64(t.Files)
	}
	for range t.Files {
		steps = append(steps,
			func(f func()) { s.serverOp(0, true, "lookup", "tar", 0, f) },
			func(f func()) { s.serverOp(0, true, "open", "tar", 0, f) },
			func(f func()) { s.dataRead(0, true, "tar", per, 1, f) })
	}
	var run func(i int)
	run = func(i int) {
		if i < len(steps) {
			steps[i](func() { run(i + 1) })
			return
		}
		s.clientCPU(k.TarCreate, func() {
			s.fanOutNodes(func(n, m int, done func()) {
				s.serverOp(n, true, "lookup", "site.tar", m, func() {
					s.serverOp(n, true, "open", "site.tar", m, func() {
						s.dataRead(n, true, "site.tar", tarBytes, m, func() { s.extract(done) })
					})
				})
			}, then)
		})
	}
	s.at(0, func() { run(0) })
}

// extract is one node's tar -x: its CPU (on the host's cores in Host
// mode), then the rest of its measured time, spent waiting on the disk.
func (s *sim) extract(done func()) {
	k := s.k
	s.clientCPU(k.TarExtractCPU, func() { s.at(s.now+max(0, k.TarExtract-k.TarExtractCPU), done) })
}

func (s *sim) fanOutNodes(op func(n, weight int, done func()), then func()) {
	left := 0
	for _, ns := range s.nodes {
		if ns.weight > 0 {
			left++
		}
	}
	for n, ns := range s.nodes {
		if ns.weight == 0 {
			continue
		}
		op(n, ns.weight, func() {
			left--
			if left == 0 {
				then()
			}
		})
	}
}

// SortResults orders results by mode, then nodes, then trees.
func SortResults(rs []Result) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Mode != b.Mode {
			return slices.Index(Modes, a.Mode) < slices.Index(Modes, b.Mode)
		}
		if a.Nodes != b.Nodes {
			return a.Nodes < b.Nodes
		}
		return a.Trees < b.Trees
	})
}
