package pfsbench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hpc-copper/copper/bench/slowpfs"
)

// Results is everything one benchmark run measured.
type Results struct {
	Label    string    `json:"label"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Elapsed  float64   `json:"elapsed_s"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`

	Tree  TreeInfo  `json:"tree"`
	Trace TraceInfo `json:"trace"`

	Runs       []Row        `json:"runs"`
	Skipped    []string     `json:"skipped,omitempty"` // modes not run, with why
	WarmImport *WarmImport  `json:"warm_import,omitempty"`
	Large      *LargeResult `json:"large,omitempty"` // the large-file workload
	Targets    []Target     `json:"targets"`
	Errors     []string     `json:"errors,omitempty"`
}

// Machine describes where the numbers come from.
type Machine struct {
	Cores   int    `json:"cores"`
	MemGiB  int    `json:"mem_gib"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	Python  string `json:"python"`
	Commit  string `json:"commit"`
	LoadAvg string `json:"load_avg"`
}

// Settings are the parameters of the run that shape the numbers.
type Settings struct {
	Params         slowpfs.Params `json:"params"`
	MetadataOpsSec float64        `json:"metadata_ops_per_s"`
	ClientCacheS   float64        `json:"client_cache_s"`
	DirectClients  string         `json:"direct_clients"`
	Import         string         `json:"import"`
	Procs          int            `json:"procs_per_node"`
	ReplayNodes    []int          `json:"replay_nodes"`
	ImportNodes    []int          `json:"import_nodes"`
	EmulatorCmd    string         `json:"emulator_command"`
	CopperCmd      string         `json:"copper_command"`
	PrefetchCmd    string         `json:"prefetch_command"`
	ReplayCmd      string         `json:"replay_command"`
	ImportCmd      string         `json:"import_command"`
	Scale          *ScaleSettings `json:"scale,omitempty"` // the scale-model rows' server, if run
}

// ScaleSettings are the scale model's arithmetic and resulting server.
type ScaleSettings struct {
	Nodes          int            `json:"nodes"`
	RefNodes       int            `json:"ref_nodes"`
	RefProcs       int            `json:"ref_procs_per_node"`
	Ratio          float64        `json:"ratio"` // RefNodes × RefProcs / (Nodes × Procs)
	Params         slowpfs.Params `json:"params"`
	MetadataOpsSec float64        `json:"metadata_ops_per_s"`
	EmulatorCmd    string         `json:"emulator_command"`
}

// Row is one phase of one workload in one mode at one scale.
type Row struct {
	Workload string `json:"workload"`
	Mode     string `json:"mode"`
	Nodes    int    `json:"nodes"`
	Procs    int    `json:"procs_per_node"`
	Phase    string `json:"phase"` // cold or warm

	SetupS      float64 `json:"setup_s"` // cold only: copper's tree-ready wait (+ the prefetch), staging's copies
	RunS        float64 `json:"run_s"`   // from releasing the processes to the last one done
	TotalS      float64 `json:"total_s"` // SetupS + RunS
	ProcMedianS float64 `json:"proc_median_s"`
	ProcMaxS    float64 `json:"proc_max_s"`
	Divergences int     `json:"divergences,omitempty"` // replay outcomes unlike the trace

	// CPU seconds spent during the run by the client processes (replay
	// workers or pythons, start-up included), the copper daemons and the
	// emulator; CPUFloorS is their sum over the cores: with all N nodes
	// on one machine, no run can be shorter.
	CPUClientsS  float64 `json:"cpu_clients_s"`
	CPUDaemonsS  float64 `json:"cpu_daemons_s"`
	CPUEmulatorS float64 `json:"cpu_emulator_s"`
	CPUFloorS    float64 `json:"cpu_floor_s"`
	// Per node, in node (rank) order: the client processes' CPU seconds
	// (their rusage at exit) and, under copper, the node's copper-node
	// daemon's (from /proc/<pid>/stat before and after the run).
	CPUClientPerNodeS []float64 `json:"cpu_client_per_node_s,omitempty"`
	CPUDaemonPerNodeS []float64 `json:"cpu_daemon_per_node_s,omitempty"`
	SetupCPU          *SetupCPU `json:"setup_cpu,omitempty"` // cold only: the setup's CPU seconds
	// copper, cold only: each daemon's start (the scale model's setup).
	Daemons []DaemonStart `json:"daemons,omitempty"`
	// ReadyPolicy is how the measured copper's readiness works (ReadyBackoff,
	// ReadyHold), read from its daemons' stats; "" = not read.
	ReadyPolicy string `json:"ready_policy,omitempty"`
	// direct, N=1, warm only: FUSE round trips one at a time.
	RoundTrip *RoundTrip `json:"round_trip,omitempty"`
	// The host's CPU during the phase and (cold) the setup: the other jobs' share.
	Host      *HostLoad `json:"host,omitempty"`
	SetupHost *HostLoad `json:"setup_host,omitempty"`

	Backend      *Backend     `json:"backend,omitempty"`       // the emulator's counters for this phase
	SetupBackend *Backend     `json:"setup_backend,omitempty"` // and for the setup
	Memory       []NodeMemory `json:"memory,omitempty"`        // copper nodes, after the warm phase
	// copper: each node's FUSE requests, pushes, forwarded requests and
	// backend operations in this phase, from its stats.
	NodeCalls []NodeCalls `json:"node_calls,omitempty"`
	// copper+prefetch, cold only: the part of SetupS spent waiting for
	// every node's prefetch after tree-ready, and each node's summary.
	PrefetchS float64  `json:"prefetch_s,omitempty"`
	Prefetch  []string `json:"prefetch,omitempty"`
	Command   string   `json:"command"`
	Error     string   `json:"error,omitempty"`
	Repeat    *Repeat  `json:"repeat,omitempty"` // the median of several runs (repeats.go); nil = one run
}

// Backend summarises the emulator's counters for one phase.
type Backend struct {
	Ops            map[string]int64     `json:"ops"` // by operation type
	Errors         int64                `json:"errors"`
	MetadataOps    int64                `json:"metadata_ops"`
	DataBytes      int64                `json:"data_bytes"`
	Fetches        slowpfs.FetchSummary `json:"fetches"` // below /site
	MeanQueueUs    float64              `json:"mean_queue_us"`
	MaxQueueMs     float64              `json:"max_queue_ms"`
	MeanLatenessUs float64              `json:"mean_timer_lateness_us"`
}

// Requests is the emulator's counted requests of every kind.
func (b *Backend) Requests() int64 {
	var n int64
	for _, v := range b.Ops {
		n += v
	}
	return n
}

func backendOf(s slowpfs.Snapshot) *Backend {
	b := &Backend{Ops: map[string]int64{}, MetadataOps: s.Model.MetadataOps, DataBytes: s.Model.DataBytes,
		Fetches: s.Counters.Fetches("/site"), MaxQueueMs: ms(s.Model.MetadataMaxWait)}
	for op, c := range s.Counters.Ops {
		b.Ops[op] = c.Ops
		b.Errors += c.Errors
	}
	if s.Model.MetadataOps > 0 {
		b.MeanQueueUs = float64(s.Model.MetadataWait) / float64(s.Model.MetadataOps) / 1e3
	}
	if s.Timer.Wakeups > 0 {
		b.MeanLatenessUs = float64(s.Timer.Lateness) / float64(s.Timer.Wakeups) / 1e3
	}
	return b
}

func ms(d time.Duration) float64   { return float64(d) / 1e6 }
func secs(d time.Duration) float64 { return d.Seconds() }

// WarmImport compares a warm import through a non-root copper mount with
// the same import from local disk, alternating rounds.
type WarmImport struct {
	Rounds    int       `json:"rounds"`
	LocalS    []float64 `json:"local_s"`
	MountS    []float64 `json:"mount_s"`
	LocalMedS float64   `json:"local_median_s"`
	MountMedS float64   `json:"mount_median_s"`
	Ratio     float64   `json:"ratio"`
	Command   string    `json:"command"`
}

// Target is one of issue 5's targets with what was measured.
type Target struct {
	Name     string  `json:"name"`
	Result   string  `json:"result"`
	Goal     string  `json:"goal"`
	Value    float64 `json:"value"`
	Limit    float64 `json:"limit"`
	Met      bool    `json:"met"`
	Measured bool    `json:"measured"`
	Verdict  string  `json:"verdict"`
}

// find returns the run of workload/mode/nodes/phase, if any.
func (res *Results) find(workload, mode string, nodes int, phase string) *Row {
	for i := range res.Runs {
		r := &res.Runs[i]
		if r.Workload == workload && r.Mode == mode && r.Nodes == nodes && r.Phase == phase && r.Error == "" {
			return r
		}
	}
	return nil
}

// verdict fills Met and Verdict for "value ≤ limit" (atMost) or
// "value ≥ limit".
func (t *Target) judge(atMost bool) {
	t.Measured = true
	if atMost {
		t.Met = t.Value <= t.Limit
	} else {
		t.Met = t.Value >= t.Limit
	}
	switch {
	case t.Met:
		t.Verdict = "met"
	case atMost:
		t.Verdict = fmt.Sprintf("missed by %.0f%%", (t.Value/t.Limit-1)*100)
	default:
		t.Verdict = fmt.Sprintf("missed by %.0f%%", (1-t.Value/t.Limit)*100)
	}
}

func notMeasured(name, goal, why string) Target {
	return Target{Name: name, Goal: goal, Result: why, Verdict: "not measured"}
}

// computeTargets evaluates the targets at the largest replay
// scale (32 in the quick and full sets).
func (res *Results) computeTargets() {
	maxN := 0
	for _, n := range res.Settings.ReplayNodes {
		maxN = max(maxN, n)
	}
	cN := res.find(WorkReplay, ModeCopper, maxN, "cold")
	ts := []Target{res.fetchTarget(maxN), res.scalingTarget(maxN)}
	ts = append(ts, speedupTarget(fmt.Sprintf("cold replay at N=%d, direct vs copper", maxN),
		res.find(WorkReplay, ModeDirect, maxN, "cold"), cN, "direct or copper cold replay not run"))
	if sc := res.Settings.Scale; sc != nil {
		ts = append(ts, speedupTarget(
			fmt.Sprintf("cold replay at N=%d, direct vs copper, scale model (%d×%d clients per server)", sc.Nodes, sc.RefNodes, sc.RefProcs),
			res.find(WorkScale, ModeDirect, sc.Nodes, "cold"), res.find(WorkScale, ModeCopper, sc.Nodes, "cold"),
			"direct or copper scale-model replay not run"))
	}
	ts = append(ts, res.warmImportTarget(), res.readyTarget(maxN), res.memoryTarget())
	if res.Large != nil {
		ts = append(ts, res.largeTargets()...)
	}
	res.Targets = ts
}

// fetchTarget: server fetches per (path, kind) under copper, cold
// replay at N=maxN.
func (res *Results) fetchTarget(maxN int) Target {
	name := fmt.Sprintf("server fetches per (path, kind) under copper, cold replay, N=%d", maxN)
	goal := "= 1.00 (direct ≈ N×P)"
	c := res.find(WorkReplay, ModeCopper, maxN, "cold")
	if c == nil || c.Backend == nil {
		return notMeasured(name, goal, "copper cold replay not run")
	}
	t := Target{Name: name, Goal: goal, Value: c.Backend.Fetches.PerKey, Limit: 1.005}
	direct := "direct not run"
	if d := res.find(WorkReplay, ModeDirect, maxN, "cold"); d != nil && d.Backend != nil {
		direct = fmt.Sprintf("direct %.2f (N×P = %d)", d.Backend.Fetches.PerKey, maxN*res.Settings.Procs)
	}
	t.Result = fmt.Sprintf("%.2f (data read %.2f× the distinct bytes); %s", t.Value, c.Backend.Fetches.DataRatio, direct)
	t.judge(true)
	return t
}

// scalingTarget: cold replay under copper at N=maxN vs N=1.
func (res *Results) scalingTarget(maxN int) Target {
	name := fmt.Sprintf("cold replay, copper N=%d vs copper N=1", maxN)
	goal := "≤ 1.5×"
	c1, cN := res.find(WorkReplay, ModeCopper, 1, "cold"), res.find(WorkReplay, ModeCopper, maxN, "cold")
	if c1 == nil || cN == nil || !(c1.RunS > 0) { // NaN too
		return notMeasured(name, goal, "copper cold replay at N=1 or N=max not run")
	}
	t := Target{Name: name, Goal: goal, Value: cN.RunS / c1.RunS, Limit: 1.5}
	t.Result = fmt.Sprintf("%.2f× (%.3f s vs %.3f s)", t.Value, cN.RunS, c1.RunS)
	t.judge(true)
	return t
}

// warmImportTarget: the warm real import through a non-root mount vs
// local disk.
func (res *Results) warmImportTarget() Target {
	name := "warm real import through a non-root mount vs local disk"
	goal := "≤ 1.10×"
	w := res.WarmImport
	if w == nil || !(w.LocalMedS > 0) { // NaN too
		return notMeasured(name, goal, "not run")
	}
	t := Target{Name: name, Goal: goal, Value: w.Ratio, Limit: 1.10}
	t.Result = fmt.Sprintf("%.2f× (%.1f ms vs %.1f ms, medians of %d)", w.Ratio, w.MountMedS*1e3, w.LocalMedS*1e3, w.Rounds)
	t.judge(true)
	return t
}

// readyTarget: the slowest of maxN local copper nodes to become
// tree-ready.
func (res *Results) readyTarget(maxN int) Target {
	name := fmt.Sprintf("%d local copper nodes tree-ready", maxN)
	goal := "≤ 2 s"
	ready := math.NaN()
	for _, r := range res.Runs {
		if r.Mode == ModeCopper && r.Nodes == maxN && r.Phase == "cold" && r.Error == "" {
			ready = math.Max(nanTo(ready, 0), r.SetupS)
		}
	}
	if math.IsNaN(ready) {
		return notMeasured(name, goal, "no copper run at that scale")
	}
	t := Target{Name: name, Goal: goal, Value: ready, Limit: 2}
	t.Result = fmt.Sprintf("%.2f s (slowest of the N=%d starts)", ready, maxN)
	t.judge(true)
	return t
}

func nanTo(v, alt float64) float64 {
	if math.IsNaN(v) {
		return alt
	}
	return v
}

// maxF is the largest of v, 0 for none.
func maxF(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// writeJSON writes results.json.
func (res *Results) writeJSON(dir string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644)
}

// csvHeader is results.csv's first line.
var csvHeader = []string{"workload", "mode", "nodes", "procs_per_node", "phase", "setup_s", "run_s", "total_s",
	"proc_median_s", "proc_max_s", "backend_metadata_ops", "backend_data_bytes", "fetches_per_key",
	"data_ratio", "paths", "lookup", "getattr", "open", "opendir", "readdir", "readlink", "read",
	"divergences", "cpu_clients_s", "cpu_daemons_s", "cpu_emulator_s", "cpu_floor_s",
	"cpu_client_per_node_max_s", "cpu_daemon_per_node_max_s", "error", "command"}

// writeCSV writes results.csv, one row per run.
func (res *Results) writeCSV(dir string) error {
	f, err := os.Create(filepath.Join(dir, "results.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(csvHeader)
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	for _, r := range res.Runs {
		row := []string{r.Workload, r.Mode, strconv.Itoa(r.Nodes), strconv.Itoa(r.Procs), r.Phase,
			num(r.SetupS), num(r.RunS), num(r.TotalS), num(r.ProcMedianS), num(r.ProcMaxS)}
		if b := r.Backend; b != nil {
			row = append(row, strconv.FormatInt(b.MetadataOps, 10), strconv.FormatInt(b.DataBytes, 10),
				num(b.Fetches.PerKey), num(b.Fetches.DataRatio), strconv.Itoa(b.Fetches.Paths))
			for _, op := range []string{slowpfs.OpLookup, slowpfs.OpGetattr, slowpfs.OpOpen, slowpfs.OpOpendir,
				slowpfs.OpReaddir, slowpfs.OpReadlink, slowpfs.OpRead} {
				row = append(row, strconv.FormatInt(b.Ops[op], 10))
			}
		} else {
			row = append(row, make([]string, 12)...)
		}
		row = append(row, strconv.Itoa(r.Divergences), num(r.CPUClientsS), num(r.CPUDaemonsS), num(r.CPUEmulatorS),
			num(r.CPUFloorS), num(maxF(r.CPUClientPerNodeS)), num(maxF(r.CPUDaemonPerNodeS)), r.Error, r.Command)
		_ = w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// speedupTarget judges direct's run time over copper's against the ≥ 5×
// goal; missing says why when either row is absent.
func speedupTarget(name string, direct, copper *Row, missing string) Target {
	const goal = "≥ 5× faster"
	if direct == nil || copper == nil || copper.RunS <= 0 {
		return notMeasured(name, goal, missing)
	}
	t := Target{Name: name, Goal: goal, Value: direct.RunS / copper.RunS, Limit: 5}
	t.Result = fmt.Sprintf("%.2f× (direct %.3f s, copper %.3f s)", t.Value, direct.RunS, copper.RunS)
	t.judge(false)
	return t
}
