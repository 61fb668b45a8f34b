package pfsbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/bench/slowpfs"
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

// DefaultLargeRef is the scale model's reference: 2,048 nodes reading a
// file on one OST of 5 GB/s. The per-OST figure is an assumption (an
// NVMe or large-HDD ClusterStor OST); Orion, Frontier's Lustre, reads
// 14 TB/s in aggregate over all of its OSTs.
const (
	DefaultLargeRefNodes     = 2048
	DefaultLargeRefBandwidth = 5_000_000_000
)

// ScaleBandwidth is the emulated server's bandwidth in the scale model.
func (lc LargeConfig) ScaleBandwidth() int64 {
	if lc.RefNodes <= 0 {
		return 0
	}
	return lc.RefServerBandwidth * int64(lc.Nodes) / int64(lc.RefNodes)
}

// LargeModeRow is one pass of N readers of one file in one mode, with
// the pass's two lower bounds: its CPU floor (CPU seconds of readers,
// copper daemons and emulator over the cores: all nodes share this
// machine) and its server time (backend bytes over the emulated
// bandwidth).
type LargeModeRow struct {
	Model        string  `json:"model"` // "machine" (the emulator's default bandwidth) or "scale"
	Mode         string  `json:"mode"`  // direct or copper
	Nodes        int     `json:"nodes"`
	FileBytes    int64   `json:"file_bytes"`
	Bandwidth    int64   `json:"bandwidth_bytes_per_s"`
	WallS        float64 `json:"wall_s"`
	BackendBytes int64   `json:"backend_bytes"`
	CPUReadersS  float64 `json:"cpu_readers_s"`
	CPUDaemonsS  float64 `json:"cpu_daemons_s"`
	CPUEmulatorS float64 `json:"cpu_emulator_s"`
	CPUFloorS    float64 `json:"cpu_floor_s"`
	ServerS      float64 `json:"server_s"`
	Verdict      string  `json:"verdict"`
}

// judge sets the floor, server time and verdict, as bottleneck does
// for the metadata rows.
func (m *LargeModeRow) judge(cores int) {
	m.CPUFloorS = (m.CPUReadersS + m.CPUDaemonsS + m.CPUEmulatorS) / float64(max(cores, 1))
	if m.Bandwidth > 0 {
		m.ServerS = float64(m.BackendBytes) / float64(m.Bandwidth)
	}
	switch {
	case m.CPUFloorS >= m.ServerS && m.CPUFloorS > 0 && m.WallS <= 1.25*m.CPUFloorS:
		m.Verdict = "CPU-bound on this machine"
	case m.ServerS > m.CPUFloorS && m.WallS <= 1.25*m.ServerS:
		m.Verdict = "server-bound"
	default:
		m.Verdict = "bound by neither"
	}
}

// cpuMark is the CPU time of this process (the readers) and of the
// helper processes at one moment.
type cpuMark struct {
	self, emulator time.Duration
	daemons        []time.Duration
}

func markCPU(daemons []int, emulator int) cpuMark {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpuMark{self: self, emulator: cpuTime([]int{emulator}), daemons: cpuTimes(daemons)}
}

// since fills m's CPU columns with what was spent after start.
func (m *LargeModeRow) since(start cpuMark, daemons []int, emulator int) {
	end := markCPU(daemons, emulator)
	m.CPUReadersS = secs(end.self - start.self)
	m.CPUEmulatorS = secs(max(end.emulator-start.emulator, 0))
	for i := range end.daemons {
		m.CPUDaemonsS += secs(max(end.daemons[i]-start.daemons[i], 0))
	}
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

// writeLargeFile writes n bytes of a fixed pattern that differs in every
// 4 KiB page (a page mixed up with another fails the checksum) and
// returns their CRC-32C.
func writeLargeFile(path string, n int64) (uint32, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	table := crc32.MakeTable(crc32.Castagnoli)
	var sum uint32
	buf := make([]byte, 1<<20)
	for off := int64(0); off < n; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), n-off)]
		for i := 0; i < len(b); i += 8 {
			v := uint64(off+int64(i))*0x9E3779B97F4A7C15 + 1
			for k := 0; k < 8 && i+k < len(b); k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
		sum = crc32.Update(sum, table, b)
		if _, err := f.Write(b); err != nil {
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return sum, f.Close()
}

// readSum reads path whole with 1 MiB reads and returns its size and CRC-32C.
func readSum(path string) (int64, uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	return n, h.Sum32(), err
}

// servedReads reads path (a file no node has read) once, then rounds
// times more with the mount's pages of it dropped before each read, so
// that every READ reaches copper-node and is answered from its chunk
// store; it returns the cold and the median chunk-store MiB/s.
// posix_fadvise(DONTNEED) drops a FUSE file's clean pages (the kernel's
// generic fadvise), and only this mount's: no global drop_caches.
func servedReads(path string, size int64, sum uint32, rounds int) (cold, spill float64, err error) {
	read := func() (float64, error) {
		start := time.Now()
		n, got, err := readSum(path)
		if err != nil || n != size || got != sum {
			return 0, fmt.Errorf("read %s: %d bytes crc32c %08x: %v", path, n, got, err)
		}
		return mibPerS(n, time.Since(start)), nil
	}
	if cold, err = read(); err != nil {
		return 0, 0, err
	}
	var v []float64
	for range rounds {
		f, err := os.Open(path)
		if err != nil {
			return 0, 0, err
		}
		err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("drop the pages of %s: %w", path, err)
		}
		m, err := read()
		if err != nil {
			return 0, 0, err
		}
		v = append(v, m)
	}
	return cold, medianF(v), nil
}

// readersAt reads the file once from each of paths at the same time and
// checks every copy; it returns the wall time, or an error after timeout.
func readersAt(paths []string, size int64, sum uint32, timeout time.Duration) (time.Duration, error) {
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	start := time.Now()
	for i, p := range paths {
		wg.Go(func() {
			n, got, err := readSum(p)
			switch {
			case err != nil:
				errs[i] = err
			case n != size || got != sum:
				errs[i] = fmt.Errorf("%s: read %d bytes with crc32c %08x, want %d bytes %08x", p, n, got, size, sum)
			}
		})
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(timeout):
		return 0, fmt.Errorf("%d readers not done after %v", len(paths), timeout)
	}
	return time.Since(start), firstErrors(errs, 2)
}

// mmapTouch maps path and reads one byte of every page; it returns the
// time of the touching alone, its minor page faults (this process's:
// nothing else runs during the warm pass) and the XOR of the bytes read
// (used, so the compiler keeps the loads, and compared between copies
// of the file).
func mmapTouch(path string) (time.Duration, int64, byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("mmap %s: %w", path, err)
	}
	defer unix.Munmap(m)
	var before, after unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &before)
	start := time.Now()
	var x byte
	for i := 0; i < len(m); i += 4096 {
		x ^= m[i]
	}
	d := time.Since(start)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &after)
	return d, after.Minflt - before.Minflt, x, nil
}

func mibPerS(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}

// largeStatus is the part of `copper-node stats --json` the workload reads.
type largeStatus struct {
	PID  int `json:"pid"`
	Node struct {
		Rank   int `json:"rank"`
		Chunks *struct {
			Fetched    int64 `json:"fetched"`
			Served     int64 `json:"served"`
			LocalBytes int64 `json:"local_bytes"`
			Store      struct {
				Mode        string `json:"mode"`
				Bytes       int64  `json:"bytes"`
				BudgetBytes int64  `json:"budget_bytes"`
			} `json:"store"`
		} `json:"chunks"`
	} `json:"node"`
	LargeFiles struct {
		KernelPath  string `json:"kernel_path"`
		Passthrough bool   `json:"kernel_offers_passthrough"`
	} `json:"large_files"`
}

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
}

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
	copperRow, tree, err := r.largeCopper(ctx, lc, largeFile, lc.Bytes, sum, params, flags)
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
	leaf := filepath.Join(tree.mounts[len(tree.mounts)-1], largeFile)
	r.progress("large file: warm sequential read and mmap, %s vs native, %d rounds", leaf, lc.WarmRounds)
	if _, _, err := readSum(host); err != nil { // native pages in
		return err
	}
	var seq, nseq, mm, nmm, flt, nflt []float64
	var leafX byte
	for range lc.WarmRounds {
		for _, p := range []string{leaf, host} {
			start := time.Now()
			n, got, err := readSum(p)
			if err != nil || n != lc.Bytes || got != sum {
				return fmt.Errorf("warm read %s: %d bytes crc32c %08x: %v", p, n, got, err)
			}
			v := mibPerS(n, time.Since(start))
			dm, faults, x, err := mmapTouch(p)
			if err != nil {
				return err
			}
			if p == leaf {
				leafX = x
				seq, mm, flt = append(seq, v), append(mm, mibPerS(n, dm)), append(flt, float64(faults))
			} else {
				if x != leafX {
					return fmt.Errorf("mmap of %s and %s: pages differ", leaf, p)
				}
				nseq, nmm, nflt = append(nseq, v), append(nmm, mibPerS(n, dm)), append(nflt, float64(faults))
			}
		}
	}
	res.WarmSeqMiBs, res.NativeSeqMiBs = medianF(seq), medianF(nseq)
	res.WarmMmapMiBs, res.NativeMmapMiBs = medianF(mm), medianF(nmm)
	res.WarmMmapFaults, res.NativeMmapFaults = int64(medianF(flt)), int64(medianF(nflt))

	// Served: one reader on the same mount, a file no node has read.
	leafMount := tree.mounts[len(tree.mounts)-1]
	served := filepath.Join(leafMount, largeServedFile)
	r.progress("large file: one reader, %s cold, then from its node's chunk store, %d rounds", served, lc.WarmRounds)
	before, err := r.chunkLocalBytes(ctx, leafMount)
	if err != nil {
		return err
	}
	if res.ServedColdMiBs, res.ServedSpillMiBs, err = servedReads(served, lc.Bytes, servedSum, lc.WarmRounds); err != nil {
		return err
	}
	after, err := r.chunkLocalBytes(ctx, leafMount)
	if err != nil {
		return err
	}
	// Every read must have reached copper-node, or the chunk-store
	// figure would be the page cache's.
	if want := int64(lc.WarmRounds+1) * lc.Bytes; after-before < want {
		return fmt.Errorf("served reads of %s: copper-node read %d bytes for the mount, want ≥ %d (pages not dropped?)", served, after-before, want)
	}
	if err := r.cleanup.popTo(copperMark); err != nil {
		return err
	}
	return r.largeScale(ctx, lc, res, flags)
}

// largeScale runs the scale model's passes (LargeConfig.ScaleBytes).
func (r *runner) largeScale(ctx context.Context, lc LargeConfig, res *LargeResult, flags []string) error {
	if lc.ScaleBytes <= 0 || lc.ScaleBandwidth() <= 0 {
		return nil
	}
	res.RefNodes, res.RefServerBandwidth = lc.RefNodes, lc.RefServerBandwidth
	params := r.cfg.Params
	params.Bandwidth = lc.ScaleBandwidth()
	r.progress("large file, scale model: writing %d MiB; server %.1f MiB/s = %d B/s × %d / %d nodes",
		lc.ScaleBytes>>20, float64(params.Bandwidth)/(1<<20), lc.RefServerBandwidth, lc.Nodes, lc.RefNodes)
	sum, err := writeLargeFile(filepath.Join(r.backing, largeScaleFile), lc.ScaleBytes)
	if err != nil {
		return err
	}
	direct, err := r.largeDirect(ctx, lc, largeScaleFile, lc.ScaleBytes, sum, params)
	if err != nil {
		return fmt.Errorf("scale model: %w", err)
	}
	mark := r.cleanup.mark()
	copperRow, _, err := r.largeCopper(ctx, lc, largeScaleFile, lc.ScaleBytes, sum, params, flags)
	if err != nil {
		return fmt.Errorf("scale model: %w", err)
	}
	if err := r.cleanup.popTo(mark); err != nil {
		return err
	}
	direct.Model, copperRow.Model = "scale", "scale"
	res.Passes = append(res.Passes, direct, copperRow)
	return nil
}

// largeDirect is one pass of N nodes reading file from their own PFS
// clients of an emulator with params; the emulator is stopped after.
func (r *runner) largeDirect(ctx context.Context, lc LargeConfig, file string, size int64, sum uint32, params slowpfs.Params) (LargeModeRow, error) {
	row := LargeModeRow{Mode: ModeDirect, Nodes: lc.Nodes, FileBytes: size, Bandwidth: params.Bandwidth}
	mark := r.cleanup.mark()
	em, err := r.startEmulator(ctx, lc.Nodes, params)
	if err != nil {
		return row, err
	}
	if _, err := em.reset(ctx); err != nil {
		return row, err
	}
	paths := make([]string, lc.Nodes)
	for i := range paths {
		paths[i] = filepath.Join(em.clients[i], file)
	}
	cpu := markCPU(nil, em.cmd.Process.Pid)
	d, err := readersAt(paths, size, sum, lc.Timeout)
	if err != nil {
		return row, fmt.Errorf("direct: %w", err)
	}
	row.since(cpu, nil, em.cmd.Process.Pid)
	snap, err := em.reset(ctx)
	if err != nil {
		return row, err
	}
	row.WallS, row.BackendBytes = d.Seconds(), snap.Model.DataBytes
	row.judge(runtime.NumCPU())
	return row, r.cleanup.popTo(mark)
}

// largeCopper is one pass of N nodes reading file through a copper
// tree over one PFS client of an emulator with params. The tree and
// the emulator stay up (the caller pops them).
func (r *runner) largeCopper(ctx context.Context, lc LargeConfig, file string, size int64, sum uint32, params slowpfs.Params,
	flags []string) (LargeModeRow, *copperTree, error) {
	row := LargeModeRow{Mode: ModeCopper, Nodes: lc.Nodes, FileBytes: size, Bandwidth: params.Bandwidth}
	em, err := r.startEmulator(ctx, 1, params)
	if err != nil {
		return row, nil, err
	}
	job := fmt.Sprintf("pfsbench-large-%d", time.Now().UnixNano())
	tree, err := r.startCopper(ctx, lc.Nodes, em.clients[0], job, flags...)
	if err != nil {
		return row, nil, err
	}
	if _, err := em.reset(ctx); err != nil {
		return row, nil, err
	}
	paths := make([]string, lc.Nodes)
	for i := range paths {
		paths[i] = filepath.Join(tree.mounts[i], file)
	}
	cpu := markCPU(tree.pids, em.cmd.Process.Pid)
	d, err := readersAt(paths, size, sum, lc.Timeout)
	if err != nil {
		return row, nil, fmt.Errorf("copper: %w", err)
	}
	row.since(cpu, tree.pids, em.cmd.Process.Pid)
	snap, err := em.reset(ctx)
	if err != nil {
		return row, nil, err
	}
	row.WallS, row.BackendBytes = d.Seconds(), snap.Model.DataBytes
	row.judge(runtime.NumCPU())
	return row, tree, nil
}

// chunkLocalBytes is the large-file bytes mount's copper-node has read
// for its own mount (stats chunks.local_bytes).
func (r *runner) chunkLocalBytes(ctx context.Context, mount string) (int64, error) {
	res, err := runBounded(ctx, 30*time.Second, r.copperEnv(), filepath.Join(r.cfg.Bin, "copper-node"), "stats", "--mount", mount, "--json")
	if err != nil {
		return 0, err
	}
	var st largeStatus
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		return 0, fmt.Errorf("copper-node stats --mount %s --json: %w", mount, err)
	}
	if st.Node.Chunks == nil {
		return 0, fmt.Errorf("%s: no chunk store in its stats", mount)
	}
	return st.Node.Chunks.LocalBytes, nil
}

// largeMemory reads every node's RSS and chunk store.
func largeMemory(ctx context.Context, t *copperTree, cacheBudget int64) ([]LargeNodeMemory, string, error) {
	out := make([]LargeNodeMemory, len(t.mounts))
	kernel := ""
	for rank, m := range t.mounts {
		res, err := runBounded(ctx, 30*time.Second, t.r.copperEnv(), filepath.Join(t.r.cfg.Bin, "copper-node"), "stats", "--mount", m, "--json")
		if err != nil {
			return nil, "", err
		}
		var st largeStatus
		if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
			return nil, "", fmt.Errorf("copper-node stats --mount %s --json: %w", m, err)
		}
		if st.Node.Chunks == nil {
			return nil, "", fmt.Errorf("rank %d: no chunk store in its stats", rank)
		}
		rss, err := rssBytes(st.PID)
		if err != nil {
			return nil, "", fmt.Errorf("rank %d pid %d: %w", rank, st.PID, err)
		}
		c := st.Node.Chunks
		out[rank] = LargeNodeMemory{Rank: rank, RSSBytes: rss, CacheBudget: cacheBudget, LimitBytes: cacheBudget + 64<<20,
			SpillMode: c.Store.Mode, SpillBytes: c.Store.Bytes, SpillBudget: c.Store.BudgetBytes, Fetched: c.Fetched, Served: c.Served}
		kernel = st.LargeFiles.KernelPath
		if st.LargeFiles.Passthrough {
			kernel += " (this kernel offers FUSE passthrough; unused)"
		} else {
			kernel += " (this kernel does not offer FUSE passthrough)"
		}
	}
	return out, kernel, nil
}

// largeTargets are the targets for the large-file workload.
func (res *Results) largeTargets() []Target {
	const (
		bytesGoal = "backend bytes read = 1.00× the file size"
		fastGoal  = "copper ≥ 5× faster than direct"
		seqGoal   = "warm sequential read ≥ 0.8× native page cache"
		mmapGoal  = "warm mmap+touch ≥ 0.8× native"
		memGoal   = "per-node RSS ≤ cache budget + 64 MiB"
		spillGoal = "spill usage ≤ spill budget"
	)
	l := res.Large
	names := []string{"large file: backend bytes / file size", "large file: direct / copper time", "large file: warm sequential read / native",
		"large file: warm mmap+touch / native", "large file: worst node RSS / (cache budget + 64 MiB)", "large file: worst node spill / spill budget",
		"large file, scale model: direct / copper time"}
	goals := []string{bytesGoal, fastGoal, seqGoal, mmapGoal, memGoal, spillGoal, fastGoal + " (server scaled to the reference machine's share per node)"}
	if l == nil || l.Error != "" {
		why := "not run"
		if l != nil {
			why = "failed: " + l.Error
		}
		out := make([]Target, len(names))
		for i := range names {
			out[i] = notMeasured(names[i], goals[i], why)
		}
		return out
	}
	var worstRSS, worstSpill float64
	for _, m := range l.Memory {
		worstRSS = max(worstRSS, float64(m.RSSBytes)/float64(m.LimitBytes))
		if m.SpillBudget > 0 {
			worstSpill = max(worstSpill, float64(m.SpillBytes)/float64(m.SpillBudget))
		}
	}
	ts := []Target{
		{Name: names[0], Goal: goals[0], Value: float64(l.CopperBackendBytes) / float64(l.FileBytes), Limit: 1.0,
			Result: fmt.Sprintf("%.2f× (%d of %d bytes; direct: %.2f×)", float64(l.CopperBackendBytes)/float64(l.FileBytes),
				l.CopperBackendBytes, l.FileBytes, float64(l.DirectBackendBytes)/float64(l.FileBytes))},
		{Name: names[1], Goal: goals[1] + fmt.Sprintf(" (N=%d here; the issue's N is 32)", l.Nodes), Value: l.DirectS / l.CopperS, Limit: 5,
			Result: fmt.Sprintf("%.2f× (direct %.1f s, copper %.1f s)", l.DirectS/l.CopperS, l.DirectS, l.CopperS)},
		{Name: names[2], Goal: goals[2], Value: l.WarmSeqMiBs / l.NativeSeqMiBs, Limit: 0.8,
			Result: fmt.Sprintf("%.2f× (%.0f vs %.0f MiB/s)", l.WarmSeqMiBs/l.NativeSeqMiBs, l.WarmSeqMiBs, l.NativeSeqMiBs)},
		{Name: names[3], Goal: goals[3], Value: l.WarmMmapMiBs / l.NativeMmapMiBs, Limit: 0.8,
			Result: fmt.Sprintf("%.2f× (%.0f vs %.0f MiB/s)", l.WarmMmapMiBs/l.NativeMmapMiBs, l.WarmMmapMiBs, l.NativeMmapMiBs)},
		{Name: names[4], Goal: goals[4], Value: worstRSS, Limit: 1, Result: fmt.Sprintf("%.2f", worstRSS)},
		{Name: names[5], Goal: goals[5], Value: worstSpill, Limit: 1, Result: fmt.Sprintf("%.2f", worstSpill)},
	}
	ts[0].judge(true)
	ts[1].judge(false)
	ts[2].judge(false)
	ts[3].judge(false)
	ts[4].judge(true)
	ts[5].judge(true)
	sd, sc := l.pass("scale", ModeDirect), l.pass("scale", ModeCopper)
	if sd == nil || sc == nil || sc.WallS <= 0 {
		ts = append(ts, notMeasured(names[6], goals[6], "scale model not run"))
	} else {
		t := Target{Name: names[6], Goal: goals[6], Value: sd.WallS / sc.WallS, Limit: 5,
			Result: fmt.Sprintf("%.2f× (direct %.1f s, %s; copper %.1f s, %s)", sd.WallS/sc.WallS, sd.WallS, sd.Verdict, sc.WallS, sc.Verdict)}
		t.judge(false)
		ts = append(ts, t)
	}
	return ts
}

// pass returns the pass of model and mode, nil if not run.
func (l *LargeResult) pass(model, mode string) *LargeModeRow {
	for i := range l.Passes {
		if l.Passes[i].Model == model && l.Passes[i].Mode == mode {
			return &l.Passes[i]
		}
	}
	return nil
}

// largeSection writes the large-file workload's part of the fragment.
func (res *Results) largeSection(b *strings.Builder) {
	l := res.Large
	if l == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### Large files through the tree (issue #10)\n\n")
	if l.Error != "" {
		w("The large-file workload failed: %s.\n\n", l.Error)
		return
	}
	s := res.Settings
	w("%d nodes each read one %d MiB file (a fixed pattern, checked with CRC-32C on every read) at the same time: "+
		"*direct*, each node from its own PFS client mount of the emulated filesystem (%.0f MiB/s shared by all clients); "+
		"*copper*, each node through its copper mount, the root reading PFS client 0, chunks of %d MiB "+
		"(`%s`). Every PFS client mount has its own kernel page cache and the emulator counts and charges "+
		"every byte a client reads, so readers on this one host do not share pages at the backend: direct costs "+
		"N × the file, as on a real cluster.\n\n",
		l.Nodes, l.FileBytes>>20, float64(s.Params.Bandwidth)/(1<<20), l.ChunkBytes>>20, l.CopperFlags)
	w("| mode | wall time, all nodes | backend bytes | × file size |\n|---|---|---|---|\n")
	w("| direct | %.2f s | %d | %.2f |\n", l.DirectS, l.DirectBackendBytes, float64(l.DirectBackendBytes)/float64(l.FileBytes))
	w("| copper (cold; tree start %.2f s not included) | %.2f s | %d | %.2f |\n\n", l.CopperSetupS, l.CopperS, l.CopperBackendBytes,
		float64(l.CopperBackendBytes)/float64(l.FileBytes))
	w("Direct mode's time is the emulator's bandwidth model (its readers wait; the emulator's own CPU is in the passes table below); copper's is the work of %d "+
		"copper-node daemons moving %d MiB each (TCP to their children, the chunk store, FUSE) on this machine's %d cores "+
		"at the load average in the header, where on a cluster each node has its own.\n\n", l.Nodes, l.FileBytes>>20, res.Machine.Cores)
	w("Warm, on rank %d's mount after the cold read, against the same file in this host's page cache, "+
		"median of %d alternating rounds: sequential read (1 MiB reads) %.0f vs %.0f MiB/s native; "+
		"mmap and touch one byte per 4 KiB page %.0f vs %.0f MiB/s native. Kernel path: `%s`.\n\n",
		l.Nodes-1, l.WarmRounds, l.WarmSeqMiBs, l.NativeSeqMiBs, l.WarmMmapMiBs, l.NativeMmapMiBs, l.KernelPath)
	if strings.HasPrefix(l.KernelPath, "page_cache") {
		w("The warm copper numbers are the kernel's page cache of the FUSE inode (no passthrough, see docs/DESIGN.md): " +
			"no request reaches copper-node; a mapping of it is filled page fault by page fault, the native one by the local " +
			"file system's own fault path.\n\n")
	}
	if l.ServedColdMiBs > 0 {
		w("One reader on rank %d's mount (1 MiB reads): a %d MiB file no node had read, fetched through the tree, %.0f MiB/s; "+
			"the same file with the mount's pages of it dropped (posix_fadvise DONTNEED), every READ answered from the node's chunk "+
			"store, %.0f MiB/s (median of %d).\n\n", l.Nodes-1, l.FileBytes>>20, l.ServedColdMiBs, l.ServedSpillMiBs, l.WarmRounds)
	}
	if l.WarmMmapFaults > 0 && l.NativeMmapFaults > 0 {
		mibs := float64(l.FileBytes) / (1 << 20)
		w("Page faults of one mmap+touch pass (medians, this process's minor faults): %d through the mount (%.0f KiB mapped per fault), "+
			"%d native (%.0f KiB per fault), %.0f× as many. The kernel maps a FUSE file's cached pages one fault-around window at a time; "+
			"the local file system keeps the file in large folios that a fault maps whole. The gap is the kernel's FUSE page cache, "+
			"not a request to copper-node (none is sent: TestWarmLargeFileStaysInTheKernel).\n\n",
			l.WarmMmapFaults, mibs*1024/float64(l.WarmMmapFaults), l.NativeMmapFaults, mibs*1024/float64(l.NativeMmapFaults),
			float64(l.WarmMmapFaults)/float64(l.NativeMmapFaults))
	}
	if len(l.Passes) > 0 {
		w("Each pass against its two lower bounds: the *CPU floor* (CPU seconds of the readers, the copper daemons and the emulator over "+
			"this machine's %d cores: every node shares them) and the *server time* (backend bytes over the emulated bandwidth). "+
			"A pass within 1.25× of the larger bound is called bound by it.\n\n", res.Machine.Cores)
		w("| model | mode | N | file MiB | server MiB/s | wall s | backend × file | CPU s (readers + daemons + emulator) | CPU floor s | server time s | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, p := range l.Passes {
			w("| %s | %s | %d | %d | %.1f | %.2f | %.2f | %.2f + %.2f + %.2f | %.2f | %.2f | %s |\n", p.Model, p.Mode, p.Nodes, p.FileBytes>>20,
				float64(p.Bandwidth)/(1<<20), p.WallS, float64(p.BackendBytes)/float64(max(p.FileBytes, 1)),
				p.CPUReadersS, p.CPUDaemonsS, p.CPUEmulatorS, p.CPUFloorS, p.ServerS, p.Verdict)
		}
		w("\n")
	}
	if sd := l.pass("scale", ModeDirect); sd != nil && l.RefNodes > 0 {
		ref := float64(l.RefServerBandwidth)
		w("Scale model: on the reference machine, %d nodes read one file that sits on one Lustre OST (the default stripe count is 1) "+
			"of %.1f GB/s (*assumption*: a per-OST rate for an NVMe or large-HDD ClusterStor OST; Orion, Frontier's Lustre, reads 14 TB/s "+
			"over all of its OSTs). When all read at once each node has %.2f MB/s of that OST; here %d nodes share an emulated server of "+
			"%.1f GB/s × %d / %d = %.2f MB/s, so each has the same share. Direct on the reference machine would take %d × the file / %.1f GB/s "+
			"(%.0f s for a 1 GiB file); copper reads the file from the OST once (%.2f s for 1 GiB) plus the tree's chunk latencies.\n\n",
			l.RefNodes, ref/1e9, ref/float64(l.RefNodes)/1e6, sd.Nodes, ref/1e9, sd.Nodes, l.RefNodes, float64(sd.Bandwidth)/1e6,
			l.RefNodes, ref/1e9, float64(l.RefNodes)*(1<<30)/ref, (1<<30)/ref)
	}
	w("| rank | RSS MiB | limit MiB (cache budget + 64) | chunks fetched | chunks served | spill | spill MiB | spill budget MiB |\n|---|---|---|---|---|---|---|---|\n")
	mem := slices.Clone(l.Memory)
	for _, m := range mem {
		w("| %d | %.1f | %.0f | %d | %d | %s | %.1f | %.0f |\n", m.Rank, mib(m.RSSBytes), mib(m.LimitBytes), m.Fetched, m.Served,
			m.SpillMode, mib(m.SpillBytes), mib(m.SpillBudget))
	}
	w("\n")
}
