package pfsbench

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/bench/slowpfs"
)

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
	flags []string) (LargeModeRow, *copperTree, *emulator, error) {
	row := LargeModeRow{Mode: ModeCopper, Nodes: lc.Nodes, FileBytes: size, Bandwidth: params.Bandwidth}
	em, err := r.startEmulator(ctx, 1, params)
	if err != nil {
		return row, nil, nil, err
	}
	job := fmt.Sprintf("pfsbench-large-%d", time.Now().UnixNano())
	tree, err := r.startCopper(ctx, lc.Nodes, em.clients[0], job, flags...)
	if err != nil {
		return row, nil, nil, err
	}
	if _, err := em.reset(ctx); err != nil {
		return row, nil, nil, err
	}
	paths := make([]string, lc.Nodes)
	for i := range paths {
		paths[i] = filepath.Join(tree.mounts[i], file)
	}
	cpu := markCPU(tree.pids, em.cmd.Process.Pid)
	d, err := readersAt(paths, size, sum, lc.Timeout)
	if err != nil {
		return row, nil, nil, fmt.Errorf("copper: %w", err)
	}
	row.since(cpu, tree.pids, em.cmd.Process.Pid)
	snap, err := em.reset(ctx)
	if err != nil {
		return row, nil, nil, err
	}
	row.WallS, row.BackendBytes = d.Seconds(), snap.Model.DataBytes
	row.judge(runtime.NumCPU())
	return row, tree, em, nil
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
