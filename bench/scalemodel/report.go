package scalemodel

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// Plan is what Evaluate runs besides validation.
type Plan struct {
	Nodes        []int // projected node counts (32 is the base of the ≤ 1.5× target)
	Procs        int   // processes per node
	TreeCounts   []int // copper -T variants at VariantNodes
	Fanouts      []int // copper fan-out variants at VariantNodes (0 = automatic)
	VariantNodes []int
	LargeBytes   int64 // the large-file variant's file
	LargeNodes   []int
	// Capacity factors for the sensitivity rows: the reference metadata
	// server's service time divided by each, at SensitivityNodes.
	Capacity         []float64
	SensitivityNodes int
}

// DefaultPlan is the projection: 12 processes per node.
func DefaultPlan() Plan {
	return Plan{
		Nodes: []int{32, 128, 512, 2048, 8300, 20000}, Procs: 12,
		TreeCounts: []int{1, 4, 16}, Fanouts: []int{0, 8, 32}, VariantNodes: []int{8300},
		LargeBytes: 1 << 30, LargeNodes: []int{2048, 8300},
		Capacity: []float64{0.25, 4, 16}, SensitivityNodes: 2048,
	}
}

// ValidationRow sets one measured quantity against the model.
type ValidationRow struct {
	Mode     string  `json:"mode"`
	Nodes    int     `json:"nodes"`
	What     string  `json:"what"` // "cold run", "warm run", "setup"
	Measured float64 `json:"measured_s"`
	Modelled float64 `json:"modelled_s"`
	Error    float64 `json:"error"` // (modelled − measured) / measured
	// ModelledIdle is the model with the host's cores all ours (no
	// other load): the bound the measured run would meet on an idle host.
	ModelledIdle float64 `json:"modelled_idle_s"`
	// Scatter is the measured run's own noise: its slowest process's
	// time minus its median's (every process replays the same trace, so
	// the gap is scheduling; each row is one run, no repeats). 0 = not
	// recorded or a setup row.
	Scatter float64 `json:"scatter_s,omitempty"`
	Repeats int     `json:"repeats,omitempty"` // the measured row is the median of this many runs; 0 = one
	Command string  `json:"command,omitempty"`
	// Available is the cores' worth the model gave the row: measured
	// during the row (AvailableMeasured) or the calibration's probe.
	Available         float64 `json:"available_cores"`
	AvailableMeasured bool    `json:"available_measured,omitempty"`
	// AvailableSched: from the replays' schedstat (SchedAvailable).
	AvailableSched bool `json:"available_sched,omitempty"`
	// HeldOut: the row's N was left out of every fit (hostfit.go).
	HeldOut bool `json:"held_out,omitempty"`
	// The row's CPU seconds, measured (rusage, schedstat) and modelled
	// (a setup's: its own window's; 0 = not measured).
	CPUMeasured float64 `json:"cpu_measured_s,omitempty"`
	CPUModelled float64 `json:"cpu_modelled_s,omitempty"`
}

// WithinNoise reports whether the model is within the measured run's
// own scatter of it (see Scatter): a run of tens of milliseconds on a
// loaded host cannot be held to ±25% of itself.
func (v ValidationRow) WithinNoise() bool {
	return v.Scatter > 0 && math.Abs(v.Modelled-v.Measured) <= v.Scatter
}

// Sensitivity is a projection row on a metadata server Factor times
// as fast as the reference.
type Sensitivity struct {
	Factor float64 `json:"factor"`
	Result
}

// CountRow sets one filesystem counter of a measured run (the
// emulator's) against the model's count: no timing, so no host noise.
type CountRow struct {
	Mode     string `json:"mode"`
	Nodes    int    `json:"nodes"`
	What     string `json:"what"`
	Measured int64  `json:"measured"`
	Modelled int64  `json:"modelled"`
}

// FuseRow sets a copper cold row's FUSE requests of one operation per
// node (the nodes' stats, mean over nodes; "pushed": files pushed into the
// kernel's page cache) against the model's: no timing involved.
type FuseRow struct {
	Nodes    int     `json:"nodes"`
	Op       string  `json:"op"`
	Measured float64 `json:"measured"`
	Modelled float64 `json:"modelled"`
}

// DaemonRow sets a copper cold row's daemon CPU, the root's and a
// non-root's mean, against the model's.
type DaemonRow struct {
	Nodes    int     `json:"nodes"`
	Role     string  `json:"role"` // "root" or "non-root, mean"
	Measured float64 `json:"measured_s"`
	Modelled float64 `json:"modelled_s"`
}

// CPURow sets the CPU seconds a measured run's processes spent (rusage
// and /proc: clients, daemons, emulator) against the model's: the cost
// structure, free of the host's other load.
type CPURow struct {
	Mode     string  `json:"mode"`
	Nodes    int     `json:"nodes"`
	Phase    string  `json:"phase"`
	Measured float64 `json:"measured_s"`
	Modelled float64 `json:"modelled_s"`
}

// Report is one Evaluate.
type Report struct {
	Command         string            `json:"command"`
	CalibrationFile string            `json:"calibration_file"`
	Created         string            `json:"calibration_created"`
	CalibrateCmd    string            `json:"calibrate_command,omitempty"`
	MeasuredBy      string            `json:"measured_by,omitempty"`
	Costs           Costs             `json:"costs"`
	Emulator        Server            `json:"emulator"`
	Reference       Server            `json:"reference"`
	Machine         Machine           `json:"machine"`
	Sources         map[string]string `json:"sources"`
	HostCores       int               `json:"host_cores"`
	HostAvailable   float64           `json:"host_available_cores"`
	Procs           int               `json:"procs_per_node"`
	ValidationProcs int               `json:"validation_procs_per_node"`
	FitNodes        []int             `json:"fit_nodes,omitempty"`
	HostCosts       *Costs            `json:"host_costs,omitempty"`
	Probe           ProbeSchedule     `json:"ready_probe"`
	HeldOutNodes    int               `json:"held_out_nodes,omitempty"`
	Validation      []ValidationRow   `json:"validation"`
	Counts          []CountRow        `json:"counts"`
	Fuse            []FuseRow         `json:"fuse,omitempty"`
	// Listing is the calibration's listing structure (READDIRPLUS per
	// listing, dir_files_max_bytes).
	Listing struct {
		ReaddirplusPerListing float64 `json:"readdirplus_per_listing,omitempty"`
		DirFiles              int64   `json:"dir_files_max_bytes,omitempty"`
		FuseMaxRead           int64   `json:"fuse_max_read_bytes,omitempty"`
		FuseReadahead         int64   `json:"fuse_readahead_bytes,omitempty"`
	} `json:"listing"`
	Daemons    []DaemonRow `json:"daemons,omitempty"`
	CPU        []CPURow    `json:"cpu"`
	Projection []Result    `json:"projection"`
	// Book are copper's projection rows launched with a facility's
	// address book (LaunchBook) instead of the all-gather.
	Book      []Result   `json:"book,omitempty"`
	RoundTrip *RoundTrip `json:"round_trip,omitempty"` // the calibration's
	// OtherPolicy are copper's projection rows (Book's launch, if any)
	// under the readiness policy the measured copper does not use.
	OtherPolicy     []Result      `json:"other_policy,omitempty"`
	OtherPolicyName string        `json:"other_policy_name,omitempty"`
	Variants        []Result      `json:"variants"`
	Large           []Result      `json:"large"`
	Sensitivity     []Sensitivity `json:"sensitivity"`
	TraceOps        int           `json:"trace_ops"`
	Tree            TreeSize      `json:"tree"`
}

// MaxAbsError is the largest |error| of the validation rows matching what
// ("" = all).
func (rep *Report) MaxAbsError(what string) (float64, ValidationRow) {
	worst, row := -1.0, ValidationRow{}
	for _, v := range rep.Validation {
		if what != "" && v.What != what {
			continue
		}
		if math.Abs(v.Error) > worst {
			worst, row = math.Abs(v.Error), v
		}
	}
	return worst, row
}

// findBook returns copper's facility-book projection row at n.
func (rep *Report) findBook(n int) (Result, bool) {
	for _, r := range rep.Book {
		if r.Nodes == n {
			return r, true
		}
	}
	return Result{}, false
}

// find returns the projection row of mode at n.
func (rep *Report) find(mode string, n int) (Result, bool) {
	for _, r := range rep.Projection {
		if r.Mode == mode && r.Nodes == n {
			return r, true
		}
	}
	return Result{}, false
}

// WriteAll writes model.json, model.md and scalemodel.svg into dir.
func (rep *Report) WriteAll(dir string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "model.md"), []byte(rep.Markdown()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "scalemodel.svg"), []byte(rep.SVG()), 0o644)
}

func pct(e float64) string { return fmt.Sprintf("%+.0f%%", e*100) }

func secsStr(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 0.1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func us(v float64) string { return fmt.Sprintf("%.1f µs", v*1e6) }

// repeatNote says how many runs each measured row is: one, or for the
// rows pfsbench repeated, the median of several.
func (rep *Report) repeatNote() string {
	runs, nodes := 0, map[int]bool{}
	for _, v := range rep.Validation {
		if v.Repeats > 1 {
			runs, nodes[v.Nodes] = max(runs, v.Repeats), true
		}
	}
	if runs == 0 {
		return "each row is one run, repeat count 1"
	}
	var ns []int
	for n := range nodes {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return fmt.Sprintf("the rows at N = %s are each the median of %d runs, every run from a fresh setup, a cold row ranked by its setup + cold run and a warm row by its run, the kept run whole (its time, CPU and counters; pfsbench --repeats); the other rows one run each", fmtInts(ns), runs)
}
