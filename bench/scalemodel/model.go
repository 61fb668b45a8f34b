package scalemodel

import (
	"fmt"
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
	// Available (Host mode) is the cores' worth the run got, measured
	// during the row it is set against; 0 = the calibration's probe
	// through HostShare.
	Available float64
	// Left (Host mode) is the cores' worth the other jobs left the row,
	// before SpeedShare turned it into Available for the row's demand:
	// a step of the setup with one thread runnable (staging's tar -c)
	// runs at SpeedShare(cores, Left, 1). 0 = at Available.
	Left float64
	// Spawn (Host mode, copper) is when each node's copper-node command
	// starts, seconds from the setup's start (the measured row's
	// launcher); nil = all at once.
	Spawn []float64
	// Launch (copper, projection) is how the nodes get the job's
	// addresses before starting: LaunchDiscover (rank 0's all-gather,
	// the default) or LaunchBook (a facility's book, parsed by each).
	Launch string
}

// Copper's launches (Scenario.Launch).
const (
	LaunchDiscover = "discover" // every rank sends its address to rank 0, which sends the book to all
	LaunchBook     = "book"     // the site hands every node the same prepared book
)

// Result is what one scenario gives.
type Result struct {
	Scenario
	TreeFanout    int     `json:"tree_fanout"`      // the fan-out used
	Depth         int     `json:"depth"`            // the deepest node's hops to its root
	SetupS        float64 `json:"setup_s"`          // copper: the launch's all-gather + tree-ready; staging: the copies
	GatherS       float64 `json:"gather_s"`         // copper, projection: the all-gather part of SetupS
	BookS         float64 `json:"book_s,omitempty"` // copper, projection, facility book: its parse, part of SetupS
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
	// FusePerNode (copper, cold phase) is the FUSE requests a node's
	// kernel sent its copper-node, by operation, and the files pushed
	// ("pushed"), mean over nodes.
	FusePerNode map[string]float64 `json:"fuse_per_node,omitempty"`
	// Copper, cold phase: the CPU seconds charged to the (first) root's
	// daemon and to a non-root daemon, mean (Host mode: at full speed).
	RootDaemonCPUS float64 `json:"root_daemon_cpu_s,omitempty"`
	NodeDaemonCPUS float64 `json:"node_daemon_cpu_s,omitempty"`
	Events         int64   `json:"events"`
	// Host mode: CPU seconds the run's processes, daemons and emulator
	// spend (at full speed), cold and warm: what rusage would show.
	ColdCPUS  float64 `json:"cold_cpu_s,omitempty"`
	WarmCPUS  float64 `json:"warm_cpu_s,omitempty"`
	SetupCPUS float64 `json:"setup_cpu_s,omitempty"`
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

// Run models one scenario.
func Run(cal *Calibration, sc Scenario) (Result, error) {
	if err := cal.Check(); err != nil {
		return Result{}, err
	}
	sc, err := sc.withDefaults()
	if err != nil {
		return Result{}, err
	}
	s, res, err := newSim(cal, sc)
	if err != nil {
		return Result{}, err
	}
	s.simulate(&res)
	return res, nil
}

// withDefaults fills the scenario's zero values and rejects what the
// model cannot run.
func (sc Scenario) withDefaults() (Scenario, error) {
	if sc.Trees == 0 {
		sc.Trees = 1
	}
	if sc.LargePath == "" {
		sc.LargePath = LargeDirect
	}
	if sc.Nodes < 1 || sc.Procs < 1 {
		return sc, fmt.Errorf("scenario %s: %d nodes × %d processes: want both ≥ 1", sc.Mode, sc.Nodes, sc.Procs)
	}
	if !slices.Contains(Modes, sc.Mode) {
		return sc, fmt.Errorf("scenario mode %q: want one of %v", sc.Mode, Modes)
	}
	if sc.Launch != "" && sc.Launch != LaunchDiscover && sc.Launch != LaunchBook {
		return sc, fmt.Errorf("scenario launch %q: want %s or %s", sc.Launch, LaunchDiscover, LaunchBook)
	}
	if sc.LargePath != LargeDirect && sc.LargePath != LargeChunked {
		return sc, fmt.Errorf("scenario large-file path %q: want %s or %s", sc.LargePath, LargeDirect, LargeChunked)
	}
	return sc, nil
}

// newSim builds the scenario's server, nodes and costs; the Result it
// returns holds the scenario and the tree's shape.
func newSim(cal *Calibration, sc Scenario) (*sim, Result, error) {
	s := &sim{cal: cal, sc: sc, server: cal.Reference, slow: 1}
	if sc.Host {
		s.server = cal.Emulator
		s.host = newPool(cal.HostCores)
	}
	s.acts = cal.Workload.compile(s.server.EntriesPerPage)
	if sc.LargeBytes > 0 {
		s.acts = append(s.acts, largeActions(sc.LargeBytes)...)
	}
	for range max(s.server.MDTs, 1) {
		s.mds = append(s.mds, newPool(s.server.Slots))
	}
	s.oss = &pipe{bw: s.server.Bandwidth}
	res := Result{Scenario: sc}
	if err := s.addNodes(&res); err != nil {
		return nil, Result{}, err
	}
	if !sc.Host {
		s.represent()
	}
	s.setCosts()
	return s, res, nil
}

// addNodes places every node in the tree (its position, caches, cores
// and NIC) and records the tree's fan-out and depth in res.
func (s *sim) addNodes(res *Result) error {
	sc, cal := s.sc, s.cal
	for n := range sc.Nodes {
		pos, err := tree.Locate(sc.Nodes, sc.Trees, sc.Fanout, n)
		if err != nil {
			return fmt.Errorf("scenario %s N=%d: %w", sc.Mode, sc.Nodes, err)
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
	return nil
}

// setCosts takes the calibration's costs, slowed in Host mode to the
// run's share of the host, and the client's per-syscall cost.
func (s *sim) setCosts() {
	sc, cal := s.sc, s.cal
	s.k = cal.Costs
	if sc.Host {
		s.base = cal.Costs.onHost(cal.HostCosts)
		if sc.Nodes == 1 {
			// One worker alone on the host's cores: a cluster node's
			// costs, fitted on these very rows (hostfit.go).
			s.base = cal.Costs
		}
		// Other jobs share the host: each core runs ours slower.
		share := HostShare(cal.HostCores, cal.HostAvailable, sc.Nodes*(sc.Procs+1)+1)
		if sc.Available > 0 {
			share = min(float64(cal.HostCores), sc.Available)
		}
		s.slow = float64(cal.HostCores) / share
		s.k = s.base.slowed(s.slow)
		s.wake = cal.Wake()
	}
	s.clientOp = s.k.ClientOpMount
	if sc.Mode == ModeStaging {
		s.clientOp = s.k.ClientOpNative
		if s.k.ClientOpStaged > 0 {
			s.clientOp = s.k.ClientOpStaged
		}
	}
}

// slowed is k with its CPU costs f times longer (the starts and tar's
// wall times stay).
func (k Costs) slowed(f float64) Costs {
	for _, c := range []*float64{&k.ClientOpNative, &k.ClientOpMount, &k.ClientOpStaged, &k.ClientReq, &k.ClientByte, &k.EmulatorOp,
		&k.EmulatorByte, &k.DaemonReq, &k.HopCPU, &k.HopByte, &k.TarExtractCPU, &k.TarCreateCPU, &k.NodeStartCPU} {
		*c *= f
	}
	return k
}

// simulate runs the setup, then a cold and a warm phase, into res.
func (s *sim) simulate(res *Result) {
	sc := s.sc
	// Setup.
	s.resetCounters()
	setupBusy := s.hostBusy()
	switch sc.Mode {
	case ModeCopper:
		if !sc.Host { // pfsbench writes the book; a job's launch gathers it or is handed one
			if sc.Launch == LaunchBook {
				res.BookS = s.k.BookBase + float64(sc.Nodes)*s.k.BookPerRank
			} else {
				res.GatherS = float64(sc.Nodes) * s.k.GatherPerRank
			}
		}
		res.SetupS = res.GatherS + res.BookS + s.treeReady()
	case ModeStaging:
		s.stage(func() {})
		s.run()
		res.SetupS = s.now
		res.MetaOps, res.DataBytes, res.OpsByKind, res.FetchesPerKey = s.counters()
	}
	res.SetupCPUS = (s.hostBusy()-setupBusy)/s.slow + s.cpuAdj
	// Cold, then warm, each from a release of every process at once.
	busy := s.hostBusy()
	res.ColdS, res.ColdMeanNodeS = s.phase(res.SetupS)
	res.ColdCPUS = (s.hostBusy()-busy)/s.slow + s.workersStartCPU()
	if sc.Mode != ModeStaging {
		res.MetaOps, res.DataBytes, res.OpsByKind, res.FetchesPerKey = s.counters()
	}
	if sc.Mode == ModeCopper {
		s.copperCounts(res)
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
	res.WarmCPUS = (s.hostBusy()-busy)/s.slow + s.workersStartCPU()
	res.WarmMetaOps, _, _, _ = s.counters()
	res.Events = int64(s.seq)
}

// workersStartCPU is what the phase's replay workers spent before their
// release (one per node, Host mode): in the run's rusage, not in its time.
func (s *sim) workersStartCPU() float64 {
	if s.host == nil {
		return 0
	}
	return float64(s.sc.Nodes) * s.cal.Costs.WorkerStartCPU
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

// Parallelism is the cores' worth a phase of r keeps busy on an idle
// host: its CPU in the phase (the workers' start-up, before the release,
// taken off) over its time.
func (r Result) Parallelism(phase string, workerStart float64) float64 {
	cpu, t := r.ColdCPUS-float64(r.Nodes)*workerStart, r.ColdS
	switch phase {
	case "warm":
		cpu, t = r.WarmCPUS-float64(r.Nodes)*workerStart, r.WarmS
	case "setup":
		cpu, t = r.SetupCPUS, r.SetupS
	}
	if t <= 0 || cpu <= 0 {
		return 0
	}
	return cpu / t
}

// SpeedShare is the cores' worth at which a run that keeps want cores
// busy on an idle host runs when the other jobs leave it avail of cores:
// the kernel shares the cores per runnable thread, so a run that wants
// fewer than it is left is not slowed (its threads find a core when they
// wake), and one that wants more is slowed to what is left.
func SpeedShare(cores int, avail, want float64) float64 {
	c := float64(cores)
	if want <= 0 || avail >= min(c, want) {
		return c
	}
	return c * avail / min(c, want)
}
