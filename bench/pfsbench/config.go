// Package pfsbench measures job startup on an emulated shared parallel
// filesystem: the same Python import, really run and replayed from a
// trace, by N nodes × P processes, with every process reading the
// filesystem directly, through copper, or from a staged local copy, all
// side by side on one emulated server (package bench/slowpfs) whose
// counters say how often each path was fetched.
//
// Run drives everything; it starts its helpers (slowpfs, copper-node
// daemons, replay workers, python processes) as child processes and
// removes every one of them, and every mount, before it returns —
// including when it fails or its context is cancelled by a signal.
package pfsbench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hpc-copper/copper/bench/slowpfs"
)

// Mode names, in report order.
const (
	ModeLocal    = "local"           // reference: the tree on this node's disk, no emulator
	ModeDirect   = "direct"          // every process reads the emulated PFS
	ModeCopper   = "copper"          // every process reads its node's copper mount; the root reads the PFS
	ModeStaging  = "staging"         // tar the tree from the PFS, untar on each node, read locally
	ModePrefetch = "copper+prefetch" // copper with the trace's paths prefetched on every node before the processes start
)

// Workload names.
const (
	WorkReplay = "replay" // the recorded import's file operations, replayed by Go clients
	WorkImport = "import" // the real python3 import
	// WorkScale is the replay against the scale model's server (see
	// ScaleModel): the same clients, a server scaled down to the share
	// of a real one they would get among the reference machine's.
	WorkScale = "replay-scale"
)

// ScaleModel is a row set whose emulated server has its metadata
// capacity divided by the ratio of the reference machine's client
// processes (RefNodes × RefProcs, all on one metadata server) to this
// run's (Nodes × Procs): then clients per unit of server capacity at
// Nodes match the reference machine, the regime users live in.
type ScaleModel struct {
	Nodes    int      // node count of the scale rows; 0 = no scale rows
	RefNodes int      // reference machine's nodes (2,048: the Copper paper's Aurora runs)
	RefProcs int      // its processes per node (12 Python processes per node in the paper)
	Modes    []string // modes of the scale rows
	// StepTimeout bounds one run of the scale rows: direct mode there is
	// server-bound by design and takes minutes.
	StepTimeout time.Duration
}

// Ratio is reference client processes over this run's at Nodes.
func (s ScaleModel) Ratio(procs int) float64 {
	if s.Nodes < 1 || procs < 1 {
		return 0
	}
	return float64(s.RefNodes*s.RefProcs) / float64(s.Nodes*procs)
}

// DefaultScale is N = 32 against 2,048 nodes × 12 processes, direct
// against copper.
func DefaultScale() ScaleModel {
	return ScaleModel{Nodes: 32, RefNodes: 2048, RefProcs: 12, Modes: []string{ModeDirect, ModeCopper}, StepTimeout: 15 * time.Minute}
}

// Config is one benchmark run.
type Config struct {
	Label string // "quick" or "full", for reports

	Out  string // results directory (created)
	Work string // scratch directory for trees and mounts; "" = a new one under /tmp, removed at the end

	Bin    string // directory holding copper-node and slowpfs
	Self   string // pfsbench binary, run as "pfsbench replay-worker"; "" = this executable
	Python string // python3 with the packages to import
	Strace string // strace, to record the import once

	// Import is the comma-separated list of modules the workload
	// imports ("numpy" runs python3 -c "import numpy").
	Import string
	// Packages are the directories (or single-file modules) copied into
	// the emulated filesystem's site/ directory; empty = the top-level
	// packages the import loads from Python's dist-packages.
	Packages []string

	Modes       []string // from the Mode constants; local is a reference line
	ReplayNodes []int    // node counts for the replay workload
	ImportNodes []int    // node counts for the real import (CPU-bound on this machine)
	Procs       int      // processes per node
	// Repeats is how many times a replay at N ≤ RepeatMaxNodes runs,
	// each phase keeping its median run (repeats.go); 1 = once.
	Repeats, RepeatMaxNodes int

	Params        slowpfs.Params
	Scale         ScaleModel    // the scale-model rows; Nodes 0 = none
	ClientCache   time.Duration // each PFS client's kernel cache lifetime
	DirectClients string        // "node": one PFS client per node (Lustre); "process": one per process

	CopperFlags []string // extra copper-node flags
	// HeapProfiles is a directory for each copper node's memory by class
	// and heap profile (copper-node memory), taken when its RSS is read;
	// "" = none.
	HeapProfiles string

	Large LargeConfig // the large-file workload; Bytes 0 = not run

	WarmImportRounds int           // alternations for the warm import vs local disk target
	StepTimeout      time.Duration // bound on one step (start, one run, stop)

	Progress io.Writer // progress lines; nil = discard
}

// Quick is the subset that runs in under two minutes, plus the
// scale-model rows, which take several minutes more (direct mode is
// server-bound there by design).
func Quick() Config {
	c := base("quick")
	c.ReplayNodes = []int{1, 4, 8, 32} // 8: issue #9's slow-filesystem target
	c.ImportNodes = []int{1, 4}
	c.Scale = DefaultScale()
	c.WarmImportRounds = 5
	c.Large = LargeConfig{Bytes: 256 << 20, Nodes: 8, ChunkBytes: 4 << 20, CacheBytes: 64 << 20, WarmRounds: 3,
		ScaleBytes: 64 << 20, RefNodes: DefaultLargeRefNodes, RefServerBandwidth: DefaultLargeRefBandwidth}
	return c
}

// Full is the whole matrix, under fifteen minutes.
func Full() Config {
	c := base("full")
	c.ReplayNodes = []int{1, 2, 4, 8, 16, 32}
	c.ImportNodes = []int{1, 2, 4, 8, 16, 32}
	c.Scale = DefaultScale()
	c.WarmImportRounds = 9
	c.Large = LargeConfig{Bytes: 1 << 30, Nodes: 32, ChunkBytes: 4 << 20, CacheBytes: 64 << 20, WarmRounds: 5,
		ScaleBytes: 256 << 20, RefNodes: DefaultLargeRefNodes, RefServerBandwidth: DefaultLargeRefBandwidth}
	return c
}

func base(label string) Config {
	return Config{
		Label:         label,
		Python:        "/usr/bin/python3",
		Strace:        "strace",
		Import:        "numpy",
		Modes:         []string{ModeLocal, ModeDirect, ModeCopper, ModeStaging, ModePrefetch},
		Procs:         4,
		Params:        slowpfs.DefaultParams(),
		ClientCache:   time.Hour,
		DirectClients: "node",
		StepTimeout:   3 * time.Minute,
		// The N=1 rows' phases last tens of ms: one run is mostly the
		// shared host's noise (the committed staging N=1 rows: 0.021 s
		// cold, 0.019 s warm; a later run: 0.017 s, 0.035 s).
		Repeats:        5,
		RepeatMaxNodes: 1,
	}
}

// knownModes lists every mode the driver understands.
var knownModes = []string{ModeLocal, ModeDirect, ModeCopper, ModeStaging, ModePrefetch}

func (c *Config) check() error {
	var errs []error
	if c.Out == "" {
		errs = append(errs, errors.New("no output directory"))
	}
	if c.Procs < 1 || c.Procs > 64 {
		errs = append(errs, fmt.Errorf("processes per node %d outside [1, 64]", c.Procs))
	}
	for _, n := range append(append([]int{}, c.ReplayNodes...), c.ImportNodes...) {
		if n < 1 || n > 256 {
			errs = append(errs, fmt.Errorf("node count %d outside [1, 256]", n))
		}
	}
	for _, m := range c.Modes {
		if !slices.Contains(knownModes, m) {
			errs = append(errs, fmt.Errorf("unknown mode %q (known: %v)", m, knownModes))
		}
	}
	errs = append(errs, c.checkScale()...)
	errs = append(errs, c.checkLarge()...)
	if c.DirectClients != "node" && c.DirectClients != "process" {
		errs = append(errs, fmt.Errorf("direct clients %q: want node or process", c.DirectClients))
	}
	if c.Import == "" {
		errs = append(errs, errors.New("nothing to import"))
	}
	if c.WarmImportRounds < 1 {
		c.WarmImportRounds = 1
	}
	if c.Repeats < 1 {
		c.Repeats = 1
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = 3 * time.Minute
	}
	if err := c.Params.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Self == "" {
		self, err := os.Executable()
		if err != nil {
			errs = append(errs, fmt.Errorf("own executable: %w", err))
		}
		c.Self = self
	}
	if c.Bin == "" {
		c.Bin = filepath.Dir(c.Self)
	}
	for _, tool := range []string{"copper-node", "slowpfs"} {
		if _, err := os.Stat(filepath.Join(c.Bin, tool)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (build it: go build -o bin/ ./cmd/... ./bench/cmd/...)", tool, err))
		}
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return errors.Join(errs...)
}

// checkScale checks the scale model's settings (Scale.Nodes 0 = not
// run) and fills in its step timeout.
func (c *Config) checkScale() []error {
	var errs []error
	if s := &c.Scale; s.Nodes != 0 {
		if s.Nodes < 1 || s.Nodes > 256 {
			errs = append(errs, fmt.Errorf("scale-model node count %d outside [1, 256]", s.Nodes))
		}
		if s.RefNodes < 1 || s.RefProcs < 1 {
			errs = append(errs, fmt.Errorf("scale model reference %d nodes × %d processes: want both ≥ 1", s.RefNodes, s.RefProcs))
		} else if _, err := c.Params.ScaleCapacity(s.Ratio(max(c.Procs, 1))); err != nil {
			errs = append(errs, fmt.Errorf("scale model: %w", err))
		}
		for _, m := range s.Modes {
			if m != ModeDirect && m != ModeCopper && m != ModePrefetch {
				errs = append(errs, fmt.Errorf("scale-model mode %q: want direct, copper or copper+prefetch", m))
			}
		}
		if s.StepTimeout <= 0 {
			s.StepTimeout = 15 * time.Minute
		}
	}
	return errs
}

// checkLarge checks the large-file workload's settings (Large.Bytes 0 =
// not run) and fills in its warm rounds.
func (c *Config) checkLarge() []error {
	var errs []error
	if l := &c.Large; l.Bytes != 0 {
		if l.Bytes < 1<<20 || l.Nodes < 1 || l.Nodes > 256 || l.ChunkBytes < 64<<10 || l.CacheBytes < 1<<20 {
			errs = append(errs, fmt.Errorf("large-file workload %+v: want ≥ 1 MiB, 1..256 nodes, chunks ≥ 64 KiB, cache ≥ 1 MiB", *l))
		}
		l.WarmRounds = max(l.WarmRounds, 1)
		if l.ScaleBytes != 0 {
			if l.ScaleBytes < 1<<20 || l.RefNodes < 1 || l.ScaleBandwidth() < 1<<20 {
				errs = append(errs, fmt.Errorf("large-file scale model: file %d bytes, %d reference nodes, server %d B/s: want a file ≥ 1 MiB and a scaled server (bandwidth × %d nodes / reference nodes) ≥ 1 MiB/s",
					l.ScaleBytes, l.RefNodes, l.RefServerBandwidth, l.Nodes))
			}
		}
	}
	return errs
}
