package pfsbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// WorkLarge is the large-file workload (issue #10): N nodes each read one
// file far over max_cacheable_bytes, directly from their own PFS client
// or through copper (chunked through the tree).
const WorkLarge = "large"

// LargeConfig sizes the large-file workload; Bytes 0 = not run.
type LargeConfig struct {
	Bytes       int64 // the file's size
	Nodes       int   // readers, one per node
	ChunkBytes  int64 // copper's chunk_bytes
	CacheBytes  int64 // copper's cache_memory_bytes (the per-node memory target is this + 64 MiB)
	WarmRounds  int   // alternations of the warm copper vs native measurements
	SpillBudget int64 // copper's spill_budget_bytes; 0 = the file's size + one chunk
	// Timeout bounds one pass of N readers; 0 = 10 minutes. A pass cut
	// short fails the workload; stopping copper and the emulator then
	// ends the reads still waiting.
	Timeout time.Duration
	// Scale model (ScaleBytes 0 = none): the same N nodes read a file of
	// ScaleBytes from an emulated server of RefServerBandwidth × N /
	// RefNodes, so that each node has the share of one server (one
	// Lustre OST: the default stripe count is 1) that a node of a
	// RefNodes-node job has when all of them read the file at once.
	ScaleBytes         int64
	RefNodes           int
	RefServerBandwidth int64 // bytes/s of the reference server
}

// LargeNodeMemory is one copper node after the cold read.
type LargeNodeMemory struct {
	Rank        int    `json:"rank"`
	RSSBytes    int64  `json:"rss_bytes"`
	CacheBudget int64  `json:"cache_budget_bytes"`
	LimitBytes  int64  `json:"limit_bytes"` // cache budget + 64 MiB
	SpillMode   string `json:"spill_mode"`
	SpillBytes  int64  `json:"spill_bytes"`
	SpillBudget int64  `json:"spill_budget_bytes"`
	Fetched     int64  `json:"chunks_fetched"`
	Served      int64  `json:"chunks_served"`
}

// LargeResult is the large-file workload's measurements.
type LargeResult struct {
	FileBytes  int64 `json:"file_bytes"`
	Nodes      int   `json:"nodes"`
	ChunkBytes int64 `json:"chunk_bytes"`

	DirectS            float64 `json:"direct_s"` // all N nodes read the file, own PFS client each
	DirectBackendBytes int64   `json:"direct_backend_bytes"`
	CopperS            float64 `json:"copper_s"` // all N nodes read it through their copper mounts (cold)
	CopperSetupS       float64 `json:"copper_setup_s"`
	CopperBackendBytes int64   `json:"copper_backend_bytes"`

	WarmSeqMiBs    float64 `json:"warm_seq_mib_s"` // median, a non-root mount, after the cold read
	NativeSeqMiBs  float64 `json:"native_seq_mib_s"`
	WarmMmapMiBs   float64 `json:"warm_mmap_mib_s"` // mmap and touch every page
	NativeMmapMiBs float64 `json:"native_mmap_mib_s"`
	WarmRounds     int     `json:"warm_rounds"`
	// Page faults of one mmap+touch pass (medians): the kernel maps a
	// FUSE file's pages a fault-around window at a time, a local file's
	// large folios whole.
	WarmMmapFaults   int64 `json:"warm_mmap_faults"`
	NativeMmapFaults int64 `json:"native_mmap_faults"`
	// Folio sizes backing one mapping of each (root only; see
	// folioCensus): the fault counts' cause.
	WarmFolios   []FolioShare `json:"warm_folios,omitempty"`
	NativeFolios []FolioShare `json:"native_folios,omitempty"`

	// One reader on a non-root mount: a file no node has read, fetched
	// through the tree (cold), then the same file with the mount's pages
	// dropped, read from the node's chunk store (median).
	ServedColdMiBs  float64 `json:"served_cold_mib_s"`
	ServedSpillMiBs float64 `json:"served_spill_mib_s"`

	// Passes with their bounds: today's (model "machine") and the scale
	// model's (see LargeConfig).
	Passes             []LargeModeRow `json:"passes"`
	RefNodes           int            `json:"ref_nodes,omitempty"`
	RefServerBandwidth int64          `json:"ref_server_bandwidth_bytes_per_s,omitempty"`

	// Every node maps and dlopens a large shared library at once.
	Dlopen *LargeDlopen `json:"dlopen,omitempty"`

	Memory      []LargeNodeMemory `json:"memory"`
	KernelPath  string            `json:"kernel_path"`
	CopperFlags string            `json:"copper_flags"`
	Error       string            `json:"error,omitempty"`
}

// largeFile is the workload's file in the emulated filesystem;
// largeScaleFile the scale model's.
const (
	largeFile      = "large/big.bin"
	largeScaleFile = "large/scale.bin"
	// largeServedFile is read by one node only, after the N-node pass:
	// written with the others, before any tree lists its directory.
	largeServedFile = "large/served.bin"
)

// runLarge runs the large-file workload and records it (or its failure).
func (r *runner) runLarge(ctx context.Context) {
	lc := r.cfg.Large
	res := &LargeResult{FileBytes: lc.Bytes, Nodes: lc.Nodes, ChunkBytes: lc.ChunkBytes, WarmRounds: lc.WarmRounds}
	r.res.Large = res
	mark := r.cleanup.mark()
	err := r.large(ctx, lc, res)
	if cerr := r.cleanup.popTo(mark); cerr != nil {
		err = errors.Join(err, fmt.Errorf("stop: %w", cerr))
	}
	if err != nil {
		res.Error = err.Error()
		r.res.Errors = append(r.res.Errors, fmt.Sprintf("%s N=%d: %v", WorkLarge, lc.Nodes, err))
		r.progress("%s N=%d: FAILED: %v", WorkLarge, lc.Nodes, err)
	}
	_ = os.Remove(filepath.Join(r.backing, largeFile))
	_ = os.Remove(filepath.Join(r.backing, largeScaleFile))
	_ = os.Remove(filepath.Join(r.backing, largeServedFile))
	_ = os.Remove(filepath.Join(r.backing, largeLibFile))
}

// large runs the workload's steps in order: the files, the direct and
// copper passes, memory, the warm and served reads, the dlopen, the
// scale model.
func (r *runner) large(ctx context.Context, lc LargeConfig, res *LargeResult) error {
	host := filepath.Join(r.backing, largeFile)
	if lc.Timeout <= 0 {
		lc.Timeout = 10 * time.Minute
	}
	r.progress("large file: writing %d MiB", lc.Bytes>>20)
	sum, err := writeLargeFile(host, lc.Bytes)
	if err != nil {
		return err
	}
	servedSum, err := writeLargeFile(filepath.Join(r.backing, largeServedFile), lc.Bytes)
	if err != nil {
		return err
	}
	libSum, libWhy, err := copyLargeLib(r.backing)
	if err != nil {
		return err
	}
	params := r.cfg.Params

	// Direct: one PFS client per node, each with its own kernel cache,
	// so the emulator sees (and charges) every node's reads.
	r.progress("large file: direct, %d nodes each read %d MiB from their own PFS client", lc.Nodes, lc.Bytes>>20)
	direct, err := r.largeDirect(ctx, lc, largeFile, lc.Bytes, sum, params)
	if err != nil {
		return err
	}
	direct.Model = "machine"
	res.DirectS, res.DirectBackendBytes = direct.WallS, direct.BackendBytes

	// Copper: the root reads PFS client 0; every node reads its mount.
	r.progress("large file: copper, %d nodes each read %d MiB through their mount", lc.Nodes, lc.Bytes>>20)
	spillBudget := lc.SpillBudget
	if spillBudget == 0 {
		spillBudget = lc.Bytes + lc.ChunkBytes
	}
	flags := []string{"--large-files", "chunked", "--chunk-bytes", strconv.FormatInt(lc.ChunkBytes, 10),
		"--spill-dir", filepath.Join(r.work, "spill"), "--spill-budget-bytes", strconv.FormatInt(spillBudget, 10),
		"--cache-memory-bytes", strconv.FormatInt(lc.CacheBytes, 10)}
	res.CopperFlags = strings.Join(flags, " ")
	copperMark := r.cleanup.mark()
	copperRow, tree, em, err := r.largeCopper(ctx, lc, largeFile, lc.Bytes, sum, params, flags)
	if err != nil {
		return err
	}
	copperRow.Model = "machine"
	res.CopperSetupS = tree.ready.Seconds()
	res.CopperS, res.CopperBackendBytes = copperRow.WallS, copperRow.BackendBytes
	res.Passes = append(res.Passes, direct, copperRow)

	if res.Memory, res.KernelPath, err = largeMemory(ctx, tree, lc.CacheBytes); err != nil {
		return err
	}

	// Warm: a non-root mount against the same file in this host's page
	// cache, alternating, medians.
	leafMount := tree.mounts[len(tree.mounts)-1]
	if err := r.largeWarm(lc, res, filepath.Join(leafMount, largeFile), host, sum); err != nil {
		return err
	}
	// Served: one reader on the same mount, a file no node has read.
	if err := r.largeServed(ctx, lc, res, leafMount, servedSum); err != nil {
		return err
	}
	res.Dlopen = &LargeDlopen{Skipped: libWhy}
	if libWhy == "" {
		if res.Dlopen, err = r.largeDlopen(ctx, lc, tree, em, libSum); err != nil {
			return fmt.Errorf("dlopen: %w", err)
		}
	}
	if err := r.cleanup.popTo(copperMark); err != nil {
		return err
	}
	return r.largeScale(ctx, lc, res, flags)
}
