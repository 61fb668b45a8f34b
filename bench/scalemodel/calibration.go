package scalemodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/hpc-copper/copper/bench/pfsbench"
	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/node"
)

// Costs are the measured CPU and latency costs the model charges, in
// seconds (per byte: seconds per byte). Each was measured on this host
// by `scalemodel calibrate`; Calibration.Sources says how.
type Costs struct {
	ClientOpNative float64 `json:"client_op_native_s"` // one traced syscall on local disk
	ClientOpMount  float64 `json:"client_op_mount_s"`  // one traced syscall through a FUSE mount, kernel-cached
	// ClientOpStaged is one traced syscall on a node's staged copy (local
	// disk, one copy per node, not the one tree local mode shares); 0 =
	// not measured, ClientOpNative.
	ClientOpStaged float64 `json:"client_op_staged_s,omitempty"`
	ClientReq      float64 `json:"client_req_s"`       // a client's side of one FUSE request (kernel, wake-ups)
	ClientByte     float64 `json:"client_byte_s"`      // per byte read through a FUSE mount
	EmulatorOp     float64 `json:"emulator_op_s"`      // the emulator's CPU per request it serves (validation only)
	EmulatorByte   float64 `json:"emulator_byte_s"`    // and per byte
	EmulatorTar    float64 `json:"emulator_tarbyte_s"` // its CPU per byte of staging's tarball reads, measured (0: the two above)
	TarSetupEmu    float64 `json:"tar_setup_emu_s"`    // and per staging setup (hostfit: the line through the setups')
	DaemonReq      float64 `json:"daemon_req_s"`       // copper-node's CPU per FUSE request (cache, singleflight, reply)
	HopCPU         float64 `json:"hop_cpu_s"`          // both ends of one parent↔child call, small answer
	HopByte        float64 `json:"hop_byte_s"`         // and per answer byte
	NodeStart      float64 `json:"node_start_s"`       // one copper-node start until it answers, alone on the host
	NodeStartCPU   float64 `json:"node_start_cpu_s"`   // its CPU (0: unmeasured, the wall time is charged as CPU)
	WorkerStartCPU float64 `json:"worker_start_cpu_s"` // a node's replay worker before release (Go start, trace parse): in its CPU, not its timed run
	TarCreate      float64 `json:"tar_create_s"`       // tar -c of the package tree (local disk)
	// TarCreateCPU is staging's tar -c through the filesystem's mount,
	// its CPU (its syscalls' client side included); 0 = not measured,
	// TarCreate is charged beyond the per-request costs.
	TarCreateCPU  float64 `json:"tar_create_cpu_s,omitempty"`
	TarExtract    float64 `json:"tar_extract_s"`     // tar -x of it (local disk), wall
	TarExtractCPU float64 `json:"tar_extract_cpu_s"` // its CPU part (the rest waits on the disk)
	// GatherPerRank is rank 0's serve time of the launch's all-gather per
	// rank (bootstrap.Serve; 0 = not measured, the launch not modelled).
	GatherPerRank float64 `json:"gather_per_rank_s,omitempty"`
	// BookBase + BookPerRank × N is one node's read of a facility's
	// address book of N entries (book.Read, tree.ValidateBook,
	// tree.Locate; 0 = not measured, the facility-book launch not
	// modelled).
	BookBase    float64 `json:"book_base_s,omitempty"`
	BookPerRank float64 `json:"book_per_rank_s,omitempty"`
}

// Server is a filesystem's metadata and data service.
type Server struct {
	MetadataService float64 `json:"metadata_service_s"` // per metadata operation
	Slots           int     `json:"slots"`              // operations in service at once, per metadata server
	MDTs            int     `json:"mdts"`               // metadata servers; directories spread over them by hash
	Bandwidth       float64 `json:"bandwidth_bytes_per_s"`
	EntriesPerPage  int     `json:"entries_per_readdir_page"`
}

// Capacity is metadata operations per second.
func (s Server) Capacity() float64 {
	return float64(s.Slots*max(s.MDTs, 1)) / s.MetadataService
}

// Machine is the projected cluster's per-node resources and network.
type Machine struct {
	DaemonCores  int     `json:"daemon_cores"`              // cores copper-node runs on per node
	NetLatency   float64 `json:"net_latency_s"`             // one-way wire latency of a hop
	NICBandwidth float64 `json:"nic_bandwidth_bytes_per_s"` // per node
}

// Calibration is everything the model reads besides its scenario.
type Calibration struct {
	Created    string `json:"created"`               // UTC time and host of the measurement
	Command    string `json:"command,omitempty"`     // the calibrate invocation
	MeasuredBy string `json:"measured_by,omitempty"` // the measured run's command (pfsbench)
	HostCores  int    `json:"host_cores"`
	// HostAvailable is the cores' worth of CPU this process got when it
	// asked for all of them (a spin probe around the measured run): the
	// host is shared, so in validation each core runs the model's work
	// at HostAvailable / HostCores of its speed.
	HostAvailable float64 `json:"host_available_cores"`
	Procs         int     `json:"procs_per_node"` // of the calibration run
	Costs         Costs   `json:"costs"`          // a cluster node's: each worker alone on its cores (N=1)
	// HostCosts are the costs on this host, every worker sharing its
	// cores (hostfit.go); nil = the N=1 costs. FitNodes are the node
	// counts they were fitted on, HeldOutNodes the one left out.
	HostCosts    *Costs  `json:"host_costs,omitempty"`
	FitNodes     []int   `json:"fit_nodes,omitempty"`
	HeldOutNodes int     `json:"held_out_nodes,omitempty"`
	Emulator     Server  `json:"emulator"`  // bench/slowpfs's parameters of the calibration run
	Reference    Server  `json:"reference"` // the projection's filesystem (published figures; see Sources)
	Machine      Machine `json:"machine"`   // the projection's nodes (published figures)
	MaxCacheable int64   `json:"max_cacheable_bytes"`
	// DirFiles is copper's dir_files_max_bytes: a dirplus carries every
	// regular file up to it (0 = none shipped).
	DirFiles int64 `json:"dir_files_max_bytes,omitempty"`
	// FuseMaxRead and FuseReadahead are copper's FUSE max_read and
	// readahead window: a cold file's READs (readRequests); 0 = one per 128 KiB.
	FuseMaxRead   int64 `json:"fuse_max_read_bytes,omitempty"`
	FuseReadahead int64 `json:"fuse_readahead_bytes,omitempty"`
	// ReaddirplusPerListing is the READDIRPLUS requests a node's kernel
	// sends for one directory listed by the trace (pages, and readers
	// listing at once), measured from the nodes' fuse_calls; 0 = a copper
	// from before READDIRPLUS and pushes (READDIR, a LOOKUP per name).
	ReaddirplusPerListing float64 `json:"readdirplus_per_listing,omitempty"`
	// Probe is copper's readiness probe schedule (0 = the defaults).
	Probe           ProbeSchedule `json:"ready_probe,omitempty"`
	BackendParallel int           `json:"backend_parallel"`
	// Sources says for each field (by JSON name) whether it was measured
	// here (and how) or published (and where).
	Sources  map[string]string `json:"sources"`
	Workload *Workload         `json:"workload"`
	// Measured are the calibration run's rows (pfsbench results.json),
	// kept so that validation can set the model against them.
	Measured []MeasuredRow `json:"measured,omitempty"`
	// RoundTrip is the run's FUSE round trips one at a time (direct,
	// N=1), set against the model's in the report; nil = not measured.
	RoundTrip *RoundTrip `json:"round_trip,omitempty"`
}

// RoundTrip is one process opening and closing one file on a node's
// filesystem client, one request in flight (pfsbench's RoundTrip).
type RoundTrip struct {
	Opens    int     `json:"opens"`
	Requests int64   `json:"requests"` // the emulator's counted requests
	WallS    float64 `json:"wall_s"`
}

// Wake is this host's wait per FUSE request beyond what the model
// charges a request at one in flight (the metadata service and both
// sides' CPU): the requester's and the server's wake-ups, each waiting
// for a core on a loaded host. 0 without a round trip measured.
func (c *Calibration) Wake() float64 {
	rt := c.RoundTrip
	if rt == nil || rt.Requests <= 0 {
		return 0
	}
	return max(0, (rt.WallS-rt.Modelled(c))/float64(rt.Requests))
}

// Modelled is the model's time for the same opens: each open a metadata
// operation at the emulator's service time, each request the client's
// and the emulator's CPU (N=1 costs: one process, cores to spare).
func (rt RoundTrip) Modelled(c *Calibration) float64 {
	return float64(rt.Opens)*c.Emulator.MetadataService + float64(rt.Requests)*(c.Costs.ClientReq+c.Costs.EmulatorOp)
}

// MeasuredRow is one pfsbench replay row.
type MeasuredRow struct {
	Mode    string  `json:"mode"`
	Nodes   int     `json:"nodes"`
	Phase   string  `json:"phase"`
	SetupS  float64 `json:"setup_s"`
	RunS    float64 `json:"run_s"`
	MetaOps int64   `json:"metadata_ops"`
	CPUS    float64 `json:"cpu_s"` // clients + daemons + emulator
	// The run's own scatter: its processes' median and slowest times
	// (every process replays the same trace, so the gap is scheduling).
	ProcMedianS float64 `json:"proc_median_s,omitempty"`
	ProcMaxS    float64 `json:"proc_max_s,omitempty"`
	Repeats     int     `json:"repeats,omitempty"` // the median of this many runs (pfsbench.Repeat); 0 = one
	Bytes       int64   `json:"data_bytes"`
	Command     string  `json:"command,omitempty"`
	// The host's CPU during the phase and (cold rows) the setup: what
	// the other jobs left this run (HostWindow.Available).
	Host      *HostWindow `json:"host,omitempty"`
	SetupHost *HostWindow `json:"setup_host,omitempty"`
	// Spawn (copper, cold) is when each rank's copper-node command was
	// started, seconds from the setup's start: pfsbench's launcher
	// forking N commands on this host's cores (DaemonStart.SpawnS).
	Spawn []float64 `json:"spawn_s,omitempty"`
	// DaemonCPUS (copper) is the copper-node daemons' part of CPUS;
	// Fuse (copper) the FUSE requests per node by operation and the files
	// pushed ("pushed"), mean over nodes, from their stats (nil: not recorded).
	DaemonCPUS float64            `json:"daemon_cpu_s,omitempty"`
	Fuse       map[string]float64 `json:"fuse_per_node,omitempty"`
	// RootDaemonCPUS is rank 0's daemon CPU (the tree's root), and
	// NodeDaemonCPUS the other daemons' mean (copper, from pfsbench's
	// cpu_daemon_per_node_s).
	RootDaemonCPUS float64 `json:"root_daemon_cpu_s,omitempty"`
	NodeDaemonCPUS float64 `json:"node_daemon_cpu_s,omitempty"`
}

// HostWindow is the whole host's busy CPU over a window of the measured
// run and the run's own CPU in it (pfsbench's HostLoad).
type HostWindow struct {
	WallS float64 `json:"wall_s"`
	BusyS float64 `json:"busy_s"`
	OwnS  float64 `json:"own_s"`
	// The replay processes' CPU and wait for a CPU, summed (schedstat;
	// pfsbench's HostLoad): zero in a calibration from before them.
	ClientsRunS  float64 `json:"clients_run_s,omitempty"`
	ClientsWaitS float64 `json:"clients_wait_s,omitempty"`
}

// minWindowS is the shortest window whose busy time says something:
// /proc/stat counts 10 ms ticks, so 0.2 s gives 20 per core.
const minWindowS = 0.2

// Available is the cores' worth the other jobs left the run in the
// window: the host's cores less their busy time (the host's less the
// run's own) over the wall time; false for a window too short to tell
// or none.
func (h *HostWindow) Available(cores int) (float64, bool) {
	if h == nil || h.WallS < minWindowS {
		return 0, false
	}
	others := max(0, h.BusyS-h.OwnS) / h.WallS
	c := float64(cores)
	return min(c, max(c/8, c-others)), true // a floor: ticks are coarse
}

// SchedAvailable is the cores' worth the other jobs left a replay
// phase, from the replay processes' own scheduler counters. A replay
// that waited for a CPU (schedstat's wait > 0, exact at any length,
// where /proc/stat's 10 ms ticks are not) ran on a saturated host, where
// what the others left the run is what it got: its CPU in the phase
// (OwnS, rusage and /proc/<pid>/stat, not ticks) less the workers'
// start-up before the release (startCPU, measured apart), over the
// run's time. One that never waited was left every core. False without
// the counters (a calibration from before them, python imports, setups).
func (h *HostWindow) SchedAvailable(cores int, runS, startCPU float64) (float64, bool) {
	if h == nil || h.ClientsRunS <= 0 || runS <= 0 {
		return 0, false
	}
	c := float64(cores)
	if h.ClientsWaitS <= 0 {
		return c, true
	}
	own := max(h.ClientsRunS, h.OwnS-startCPU)
	return min(c, max(c/8, own/runS)), true
}

// Check refuses a calibration the model cannot run on.
func (c *Calibration) Check() error {
	var errs []error
	pos := func(name string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("calibration %s = %v: want a finite value ≥ 0", name, v))
		}
	}
	costs := func(prefix string, k Costs) {
		for name, v := range map[string]float64{"client_op_native_s": k.ClientOpNative, "client_op_mount_s": k.ClientOpMount, "client_op_staged_s": k.ClientOpStaged,
			"client_req_s": k.ClientReq, "client_byte_s": k.ClientByte, "emulator_op_s": k.EmulatorOp, "emulator_byte_s": k.EmulatorByte, "emulator_tarbyte_s": k.EmulatorTar, "tar_setup_emu_s": k.TarSetupEmu,
			"daemon_req_s": k.DaemonReq, "hop_cpu_s": k.HopCPU, "hop_byte_s": k.HopByte, "node_start_s": k.NodeStart, "node_start_cpu_s": k.NodeStartCPU, "worker_start_cpu_s": k.WorkerStartCPU,
			"tar_create_s": k.TarCreate, "tar_create_cpu_s": k.TarCreateCPU, "tar_extract_s": k.TarExtract, "tar_extract_cpu_s": k.TarExtractCPU, "gather_per_rank_s": k.GatherPerRank,
			"book_base_s": k.BookBase, "book_per_rank_s": k.BookPerRank} {
			pos(prefix+name, v)
		}
	}
	costs("", c.Costs)
	if c.HostCosts != nil {
		costs("host_costs.", *c.HostCosts)
	}
	pos("net_latency_s", c.Machine.NetLatency)
	if p := c.Probe.Policy; p != "" && p != PolicyBackoff && p != PolicyHold {
		errs = append(errs, fmt.Errorf("calibration ready_probe.policy %q: want %s or %s", p, PolicyBackoff, PolicyHold))
	}
	pos("ready_probe.hold_s", c.Probe.Hold)
	for i, m := range c.Measured {
		for _, v := range m.Spawn {
			pos(fmt.Sprintf("measured row %d (%s N=%d) spawn_s", i, m.Mode, m.Nodes), v)
		}
		for _, h := range []*HostWindow{m.Host, m.SetupHost} {
			if h != nil && !(h.WallS >= 0 && h.BusyS >= 0 && h.OwnS >= 0 && h.ClientsRunS >= 0 && h.ClientsWaitS >= 0 && !math.IsInf(h.WallS+h.BusyS+h.OwnS+h.ClientsRunS+h.ClientsWaitS, 0)) {
				errs = append(errs, fmt.Errorf("calibration measured row %d (%s N=%d %s): host window %+v: want finite values ≥ 0", i, m.Mode, m.Nodes, m.Phase, *h))
			}
		}
	}
	for name, s := range map[string]Server{"emulator": c.Emulator, "reference": c.Reference} {
		if s.MetadataService <= 0 || s.Slots < 1 || s.Bandwidth <= 0 {
			errs = append(errs, fmt.Errorf("calibration %s server: service %v s, %d slots, %v B/s: want all > 0", name, s.MetadataService, s.Slots, s.Bandwidth))
		}
	}
	if !(c.HostAvailable > 0) {
		errs = append(errs, fmt.Errorf("calibration host_available_cores = %v: want > 0", c.HostAvailable))
	}
	if c.HostCores < 1 || c.Machine.DaemonCores < 1 || c.Machine.NICBandwidth <= 0 {
		errs = append(errs, fmt.Errorf("calibration host_cores %d, daemon_cores %d, nic %v B/s: want all > 0", c.HostCores, c.Machine.DaemonCores, c.Machine.NICBandwidth))
	}
	if c.BackendParallel < 1 {
		errs = append(errs, fmt.Errorf("calibration backend_parallel = %d: want ≥ 1", c.BackendParallel))
	}
	if c.Workload == nil {
		errs = append(errs, errors.New("calibration has no workload"))
	} else if err := c.Workload.Check(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Write stores c as indented JSON, atomically.
func (c *Calibration) Write(file string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".calibration-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil { // a calibration is a document, not a secret
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// ReadCalibration loads and checks a calibration file.
func ReadCalibration(file string) (*Calibration, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseCalibration(b, file)
}

// ParseCalibration decodes and checks a calibration; name names it in
// errors.
func ParseCalibration(b []byte, name string) (*Calibration, error) {
	var c Calibration
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("calibration %s: %w", name, err)
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("calibration %s: %w", name, err)
	}
	if c.Reference.Slots > 1<<16 || c.Emulator.Slots > 1<<16 || c.Machine.DaemonCores > 1<<12 || c.HostCores > 1<<12 {
		return nil, fmt.Errorf("calibration %s: slots, daemon_cores or host_cores beyond any real machine", name)
	}
	return &c, nil
}

// ProbeSchedule is a node's readiness probe backoff (node.AwaitParent):
// the first wait after a not-ready answer, doubling up to Max.
type ProbeSchedule struct {
	Initial float64 `json:"initial_s"`
	Max     float64 `json:"max_s"`
	// Policy is how a child learns that its parent is tree-ready
	// (PolicyBackoff, PolicyHold; "" = PolicyBackoff), as the measured
	// copper does it (pfsbench reads it from the daemons' stats).
	Policy string `json:"policy,omitempty"`
	// Hold is PolicyHold's bound on a held probe (0 = node.HoldBound of the
	// schedule and copper's default rpc_timeout).
	Hold float64 `json:"hold_s,omitempty"`
}

// Readiness policies (ProbeSchedule.Policy), spelled as pfsbench
// records the measured copper's (Row.ReadyPolicy).
const (
	// PolicyBackoff: a parent answers a probe at once; a child told "not
	// ready" (or refused: the parent is not serving yet) waits Initial,
	// doubling up to Max, before the next probe.
	PolicyBackoff = pfsbench.ReadyBackoff
	// PolicyHold: a parent that is serving holds a probe until it is
	// tree-ready (at most Hold), so the child learns it one half round
	// trip after; a parent not listening yet is probed again every
	// Initial, without doubling.
	PolicyHold = pfsbench.ReadyHold
)

// DefaultProbe is copper's default schedule (config.Default:
// ready_probe_initial_ms, ready_probe_max_ms).
func DefaultProbe() ProbeSchedule {
	d := config.Default()
	return ProbeSchedule{Initial: d.ReadyProbeInitial().Seconds(), Max: d.ReadyProbeMax().Seconds()}
}

// ReadyProbe is the calibration's probe schedule, or copper's default.
// Its policy is PolicyBackoff unless set, its hold node.HoldBound's.
func (c *Calibration) ReadyProbe() ProbeSchedule {
	p := c.Probe
	if p.Initial <= 0 || p.Max < p.Initial {
		d := DefaultProbe()
		p.Initial, p.Max = d.Initial, d.Max
	}
	if p.Policy == "" {
		p.Policy = PolicyBackoff
	}
	if p.Hold <= 0 {
		d := config.Default()
		p.Hold = node.HoldBound(time.Duration(p.Max*float64(time.Second)), d.RPCTimeout()).Seconds()
	}
	return p
}
