package scalemodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hpc-copper/copper/bench/pfsbench"
	"github.com/hpc-copper/copper/bench/replay"
)

// Published figures for the projection. Each is cited in Sources; none is
// measured here.
func published() (Server, Machine, map[string]string) {
	ref := Server{MetadataService: 300e-6, Slots: 8, MDTs: 1, Bandwidth: 1 << 30, EntriesPerPage: 128}
	m := Machine{DaemonCores: 4, NetLatency: 2e-6, NICBandwidth: 25e9}
	src := map[string]string{
		"reference.metadata_service_s":       "assumption, argued from published figures: 300 µs per metadata RPC on a busy MDT (bench/slowpfs/params.go); published: Dell white paper \"Dell Storage for HPC with Intel Enterprise Edition for Lustre\", §4.4 Metadata Testing (mdtest, Lustre 2.5): a file stat from one thread over 2,000/s (about 0.5 ms each), file creates about 15,000/s at 240 threads",
		"reference.slots":                    "assumption: 8 operations in progress on one MDT → 26,667 ops/s, between the white paper's create (~15,000/s) and stat (>400,000/s at 240 threads) rates; opens of existing files take an intent lock and sit near the create rate",
		"reference.mdts":                     "assumption: one MDT serves the job's package tree (a directory tree lives on one MDT unless striped with DNE)",
		"reference.bandwidth_bytes_per_s":    "assumption: one job's share of the object servers, 1 GiB/s (bench/slowpfs/params.go); the Lustre wiki's \"Lustre Server Requirements Guidelines\" (32+ MDSs, 2,000+ OSSs in one filesystem): aggregate bandwidth is large, one job's start gets a share",
		"reference.entries_per_readdir_page": "assumption: a Lustre directory page holds about a hundred short names (bench/slowpfs/params.go)",
		"machine.daemon_cores":               "published: Copper 1.0's Aurora launcher pins the service to cores 48,49,50,51 (copper-1.0.md, -b)",
		"machine.net_latency_s":              "assumption: a fabric's one-way latency of a few µs (small next to the measured hop CPU); published bound: the Copper paper reports root round trips under 1 ms for ≤ 128 KiB on 31 Aurora nodes",
		"machine.nic_bandwidth_bytes_per_s":  "published: HPE Slingshot-11 NIC, 200 Gb/s = 25 GB/s per NIC (Aurora nodes have 8; the model gives copper one)",
	}
	return ref, m, src
}

// CalibrateInput names what the calibration reads.
type CalibrateInput struct {
	Results string // pfsbench results.json (its N=1 replay rows are fitted)
	Trace   string // its import.strace; "" = the one results.json names
	Tar     bool   // time tar -c / tar -x of the package tree here
	// Available are earlier probes' available cores (ProbeCores), e.g.
	// one taken before the measured run; Calibrate probes once more
	// and keeps the mean.
	Available []float64
	// Worker is the run's pfsbench binary; "" = the worker's start-up
	// CPU is not measured (and stays in the per-operation fits).
	Worker string
	// Gather is a measured all-gather: rank 0's serve time (seconds)
	// for GatherRanks ranks (bootstrap's BenchmarkGatherScale); 0 = none.
	GatherRanks int
	GatherServe float64
	// Self is a bench/cmd/scalemodel binary: a parent↔child call is
	// measured between this process and its hop-server child (a cluster
	// node's call); "" = in one process only.
	Self string
	// GatherAvailable is the cores' worth a probe got around it (0 = not
	// probed): the serve time is scaled to the host's cores all ours, so
	// this host's other load does not reach the projection.
	GatherAvailable float64
	// GatherCPUPerRank is rank 0's own CPU per rank (seconds) in the
	// measured all-gather; when set it is the per-rank cost instead of the
	// serve time, which here includes waiting for joiners on the same cores.
	GatherCPUPerRank float64
}

// Calibrate fits the costs from a pfsbench run's N=1 rows, measures the
// parent↔child call here, times tar on local disk, and builds the
// workload from the run's trace and packages.
func Calibrate(ctx context.Context, in CalibrateInput) (*Calibration, error) {
	res, w, err := loadRun(in)
	if err != nil {
		return nil, err
	}
	cal := newCalibration(res, w)
	cal.probeHost(in.Available)
	cal.Measured = measuredRows(res)
	if in.Worker != "" {
		if err := cal.measureWorkerStart(ctx, in.Worker, w.Trace); err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
	}
	if err := fitCosts(cal, res, w); err != nil {
		return nil, fmt.Errorf("calibrate from %s: %w", in.Results, err)
	}
	if err := cal.measureHere(ctx, res, in.Tar, in.Self); err != nil {
		return nil, err
	}
	fitSetupCPU(cal, res)
	cal.readinessOf(res)
	for _, r := range res.Runs {
		if rt := r.RoundTrip; rt != nil && r.Workload == pfsbench.WorkReplay && rt.Opens > 0 {
			cal.RoundTrip = &RoundTrip{Opens: rt.Opens, Requests: rt.Requests, WallS: rt.WallS}
		}
	}
	if err := cal.measureBook(ctx); err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	switch {
	case in.GatherRanks > 0 && in.GatherCPUPerRank > 0:
		cal.Costs.GatherPerRank = in.GatherCPUPerRank
		cal.Sources["costs.gather_per_rank_s"] = fmt.Sprintf("measured: rank 0's own CPU per rank in an all-gather of %d ranks over loopback (go test ./bootstrap -bench GatherScale/%d: cpu-us/rank), %.1f µs; the joiners' CPU is not in it (on a cluster they run on other nodes) and rank 0 is taken to serve one rank after another on one core, an upper bound for a launch node with many", in.GatherRanks, in.GatherRanks, in.GatherCPUPerRank*1e6)
	case in.GatherRanks > 0 && in.GatherServe > 0:
		share, note := 1.0, "not probed: the wall time as measured"
		if in.GatherAvailable > 0 {
			share = min(1, in.GatherAvailable/float64(cal.HostCores))
			note = fmt.Sprintf("× %.2f, the share of the %d cores a spin probe got around it (%.2f cores' worth), so this host's other load stays out of the projection", share, cal.HostCores, in.GatherAvailable)
		}
		cal.Costs.GatherPerRank = in.GatherServe * share / float64(in.GatherRanks)
		cal.Sources["costs.gather_per_rank_s"] = fmt.Sprintf("measured: rank 0's bootstrap.Serve time of an all-gather of %d ranks over loopback (go test ./bootstrap -bench GatherScale/%d: serve-ms), %.3f s, %s, per rank; the joiners share rank 0's cores here, so an upper bound for a launch node of its own", in.GatherRanks, in.GatherRanks, in.GatherServe, note)
	}
	if err := cal.fitHostCosts(res, w); err != nil {
		return nil, fmt.Errorf("calibrate from %s: %w", in.Results, err)
	}
	if err := cal.fitHopCPU(); err != nil {
		return nil, fmt.Errorf("calibrate from %s: %w", in.Results, err)
	}
	return cal, cal.Check()
}

// loadRun reads the pfsbench results and builds the workload from the
// run's trace and the packages it imported.
func loadRun(in CalibrateInput) (*pfsbench.Results, *Workload, error) {
	b, err := os.ReadFile(in.Results)
	if err != nil {
		return nil, nil, err
	}
	var res pfsbench.Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, nil, fmt.Errorf("pfsbench results %s: %w", in.Results, err)
	}
	traceFile := in.Trace
	if traceFile == "" {
		traceFile = filepath.Join(filepath.Dir(in.Results), "import.strace")
	}
	f, err := os.Open(traceFile)
	if err != nil {
		return nil, nil, fmt.Errorf("trace of %s: %w", in.Results, err)
	}
	defer f.Close()
	prefix, err := tracePrefix(traceFile)
	if err != nil {
		return nil, nil, err
	}
	tr, err := replay.Parse(f, traceFile, prefix)
	if err != nil {
		return nil, nil, err
	}
	list, err := PackagesLister(res.Tree.Packages)
	if err != nil {
		return nil, nil, fmt.Errorf("packages of %s: %w", in.Results, err)
	}
	w, err := BuildWorkload(tr, traceFile, list)
	if err != nil {
		return nil, nil, err
	}
	return &res, w, nil
}

// newCalibration is the calibration's frame: the measured run's
// emulator and settings, the published projection figures, copper's
// defaults, and where each came from.
func newCalibration(res *pfsbench.Results, w *Workload) *Calibration {
	ref, machine, src := published()
	p := res.Settings.Params
	cal := &Calibration{
		Created:   time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		HostCores: runtime.NumCPU(),
		Procs:     res.Settings.Procs,
		Emulator: Server{MetadataService: p.MetadataService.Seconds(), Slots: p.Slots, MDTs: 1,
			Bandwidth: float64(p.Bandwidth), EntriesPerPage: p.DirEntriesPerOp},
		Reference: ref, Machine: machine,
		MaxCacheable: 10 << 20, BackendParallel: 64,
		Sources:    src,
		Workload:   w,
		MeasuredBy: res.Command,
	}
	cal.Sources["emulator"] = fmt.Sprintf("measured run's settings: %s", res.Settings.EmulatorCmd)
	cal.Probe = DefaultProbe()
	cal.fitReadahead()
	cal.Sources["ready_probe"] = "copper's default ready_probe_initial_ms and ready_probe_max_ms (config.Default; node.AwaitParent doubles the wait after each not-ready answer)"
	cal.Sources["max_cacheable_bytes"] = "copper's default max_cacheable_bytes (config/sites/local.toml)"
	cal.Sources["backend_parallel"] = "copper's default backend_parallel (config/sites/local.toml)"
	cal.Sources["host_cores"] = "runtime.NumCPU() of the calibration host"
	return cal
}

// probeHost probes the cores this process gets once more and keeps the
// mean with the earlier probes.
func (cal *Calibration) probeHost(available []float64) {
	probes := append(append([]float64{}, available...), ProbeCores(time.Second))
	var sum float64
	for _, v := range probes {
		sum += v
	}
	cal.HostAvailable = sum / float64(len(probes))
	cal.Sources["host_available_cores"] = fmt.Sprintf("measured: mean of %d one-second spin probes (one thread per core; CPU time got / wall) around the measured run: %s", len(probes), fmtList(probes))
}

// measuredRows are the run's replay rows, kept for validation.
func measuredRows(res *pfsbench.Results) []MeasuredRow {
	var rows []MeasuredRow
	for _, r := range res.Runs {
		if r.Workload != pfsbench.WorkReplay {
			continue
		}
		mr := MeasuredRow{Mode: r.Mode, Nodes: r.Nodes, Phase: r.Phase, SetupS: r.SetupS, RunS: r.RunS, Command: r.Command,
			CPUS: r.CPUClientsS + r.CPUDaemonsS + r.CPUEmulatorS, ProcMedianS: r.ProcMedianS, ProcMaxS: r.ProcMaxS}
		if r.Backend != nil {
			mr.MetaOps, mr.Bytes = r.Backend.MetadataOps, r.Backend.DataBytes
		}
		if r.Repeat != nil {
			mr.Repeats = r.Repeat.Runs
		}
		mr.DaemonCPUS, mr.Fuse = r.CPUDaemonsS, fusePerNode(r.NodeCalls)
		mr.RootDaemonCPUS, mr.NodeDaemonCPUS = rootAndNodes(r.CPUDaemonPerNodeS)
		mr.Host, mr.SetupHost = hostWindow(r.Host), hostWindow(r.SetupHost)
		var run, wait float64
		for _, d := range r.Daemons {
			mr.Spawn = append(mr.Spawn, d.SpawnS)
			run, wait = run+d.DaemonCPUS, wait+d.DaemonWaitS
		}
		// The daemons' schedstat: the setup's share, as a replay's
		// (SchedAvailable); no wait recorded (a run from before it, or
		// none at all) leaves the window's share.
		if mr.SetupHost != nil && run > 0 && wait > 0 {
			mr.SetupHost.ClientsRunS, mr.SetupHost.ClientsWaitS = run, wait
		}
		rows = append(rows, mr)
	}
	return rows
}

func hostWindow(h *pfsbench.HostLoad) *HostWindow {
	if h == nil {
		return nil
	}
	return &HostWindow{WallS: h.WallS, BusyS: h.BusyS, OwnS: h.OwnS, ClientsRunS: h.ClientsRunS, ClientsWaitS: h.ClientsWaitS}
}

func fmtList(vs []float64) string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%.2f", v))
	}
	return strings.Join(out, ", ")
}

// tracePrefix finds the tree's prefix in a pfsbench trace: the
// directory holding "site" on the first path that has one.
func tracePrefix(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	s := string(b)
	for i := 0; ; {
		j := indexFrom(s, "/site/", i)
		if j < 0 {
			return "", fmt.Errorf("trace %s: no path with a /site/ component", file)
		}
		k := j
		for k > 0 && s[k-1] != '"' {
			k--
		}
		if k > 0 && s[k] == '/' {
			return filepath.Clean(s[k:j]), nil
		}
		i = j + 1
	}
}

func indexFrom(s, sub string, from int) int {
	for i := from; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// fitCosts derives the costs from the N=1 rows: a cluster node's (each
// process and daemon alone on its cores), and the start.
func fitCosts(cal *Calibration, res *pfsbench.Results, w *Workload) error {
	pick := func(mode, phase string) (*pfsbench.Row, error) {
		for i := range res.Runs {
			r := &res.Runs[i]
			if r.Workload == pfsbench.WorkReplay && r.Mode == mode && r.Nodes == 1 && r.Phase == phase && r.Error == "" {
				return r, nil
			}
		}
		return nil, fmt.Errorf("no N=1 %s %s replay row (run pfsbench with --replay-nodes 1,… --modes local,direct,copper,staging)", mode, phase)
	}
	k := &cal.Costs
	if err := fitOpCosts(k, pick, res.Settings.Procs, w); err != nil {
		return err
	}
	cc, err := pick(pfsbench.ModeCopper, "cold")
	if err != nil {
		return err
	}
	if cc.Backend == nil {
		return errors.New("N=1 copper cold row lacks emulator counters")
	}
	rb, bb := float64(cc.Backend.Requests()), float64(cc.Backend.DataBytes)
	cal.fitListing(cc)
	nf := cal.nodeFuse()
	k.DaemonReq = max(0, (cc.CPUDaemonsS-rb*k.ClientReq-bb*k.ClientByte)/float64(max(nf.requests(), 1)))
	k.NodeStart = cc.SetupS
	s := cal.Sources
	s["costs.client_op_native_s"] = "measured: N=1 local cold replay, clients' CPU (rusage) less the worker's start-up / (processes × traced operations)"
	s["costs.client_op_mount_s"] = "measured: N=1 copper warm replay (no request reaches the daemon), clients' CPU / (processes × operations)"
	if k.ClientOpStaged > 0 {
		s["costs.client_op_staged_s"] = "measured: N=1 staging warm replay (on the node's own extracted copy), clients' CPU less the worker's start-up / (processes × operations)"
	}
	s["costs.client_req_s"] = "measured: N=1 direct warm replay, clients' CPU beyond client_op_mount_s / the emulator's counted requests"
	s["costs.client_byte_s"] = "measured: N=1 direct cold replay, clients' CPU beyond operations and requests / bytes read"
	s["costs.emulator_op_s"] = "measured: N=1 direct warm replay, the emulator's CPU / its counted requests"
	s["costs.emulator_byte_s"] = "measured: N=1 direct cold replay, the emulator's CPU beyond its requests / bytes read"
	s["costs.daemon_req_s"] = "measured: N=1 copper cold replay, copper-node's CPU (schedstat) beyond its own filesystem requests and bytes (the root's, the directories' shipped files included) / the FUSE requests and pushes the model counts for the trace (READDIRPLUS per listing, LOOKUP and READ for names no listing made, READLINK, one push per listed small file)"
	s["costs.node_start_s"] = "measured: N=1 copper cold replay's tree-ready wait (one daemon start)"
	return nil
}

// fitOpCosts fits the per-operation CPU costs (client syscalls, FUSE
// requests and bytes, the emulator's) on the rows pick returns: one
// N=1 row each, or several runs pooled into one (pooledRow), whose
// Nodes says how many workers its CPU holds.
func fitOpCosts(k *Costs, pick func(mode, phase string) (*pfsbench.Row, error), procs int, w *Workload) error {
	var errs []error
	must := func(mode, phase string) *pfsbench.Row {
		r, err := pick(mode, phase)
		errs = append(errs, err)
		return r
	}
	local, dc, dw, cw := must(pfsbench.ModeLocal, "cold"), must(pfsbench.ModeDirect, "cold"), must(pfsbench.ModeDirect, "warm"), must(pfsbench.ModeCopper, "warm")
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if dc.Backend == nil || dw.Backend == nil {
		return errors.New("direct rows lack emulator counters")
	}
	// Per worker (one per node): its start-up CPU is in every clients' figure.
	perNode := func(r *pfsbench.Row) float64 { return float64(max(r.Nodes, 1)) }
	clients := func(r *pfsbench.Row) float64 { return max(0, r.CPUClientsS-perNode(r)*k.WorkerStartCPU) }
	procOps := func(r *pfsbench.Row) float64 { return perNode(r) * float64(procs*len(w.Ops)) }
	k.ClientOpNative = clients(local) / procOps(local)
	k.ClientOpMount = clients(cw) / procOps(cw)
	// Staging's warm replay, where the run has one, on the node's own copy.
	if sw, err := pick(pfsbench.ModeStaging, "warm"); err == nil && sw != nil {
		k.ClientOpStaged = clients(sw) / procOps(sw)
	}
	rw, rc, bc := float64(dw.Backend.Requests()), float64(dc.Backend.Requests()), float64(dc.Backend.DataBytes)
	if rw == 0 || bc == 0 {
		return errors.New("direct rows: no requests or no bytes counted")
	}
	k.ClientReq = max(0, (clients(dw)-procOps(dw)*k.ClientOpMount)/rw)
	k.ClientByte = max(0, (clients(dc)-procOps(dc)*k.ClientOpMount-rc*k.ClientReq)/bc)
	k.EmulatorOp = max(0, dw.CPUEmulatorS/rw)
	k.EmulatorByte = max(0, (dc.CPUEmulatorS-rc*k.EmulatorOp)/bc)
	return nil
}
