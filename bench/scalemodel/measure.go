package scalemodel

// What the calibration measures on this machine: the cores this process
// gets, the parent↔child call, and tar on local disk.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/bench/pfsbench"
	cnet "github.com/hpc-copper/copper/net"
	"github.com/hpc-copper/copper/op"
)

// ProbeCores spins one thread per CPU for d and returns the CPU time it
// got over d: the cores' worth this process gets on a shared host.
func ProbeCores(d time.Duration) float64 {
	n := runtime.NumCPU()
	done := make(chan float64, n)
	start := time.Now()
	for range n {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var ts0, ts1 unix.Timespec
			_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts0)
			x := 0
			for time.Since(start) < d {
				for i := range 10000 {
					x += i
				}
			}
			_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts1)
			done <- float64(ts1.Nano()-ts0.Nano())/1e9 + float64(x&0)
		}()
	}
	var cpu float64
	for range n {
		cpu += <-done
	}
	return cpu / time.Since(start).Seconds()
}

// measureHere measures the parent↔child call on this machine and, with
// tar, times tar of the run's packages on local disk.
func (cal *Calibration) measureHere(ctx context.Context, res *pfsbench.Results, tar bool, self string) error {
	hop, hopByte, err := measureHop(ctx)
	if err != nil {
		return fmt.Errorf("measure the parent-child call: %w", err)
	}
	cal.Costs.HopCPU, cal.Costs.HopByte = hop, hopByte
	cal.Sources["costs.hop_cpu_s"] = "measured: CPU (getrusage) of 2,000 in-process net.Client.Call round trips with a 4 KiB answer, both ends, minus the per-byte part"
	cal.Sources["costs.hop_byte_s"] = "measured: the same with a 128 KiB answer; the difference per answer byte"
	if self != "" {
		if hop, hopByte, err = measureHopProcesses(ctx, self); err != nil {
			return fmt.Errorf("measure the parent-child call between processes: %w", err)
		}
		cal.Costs.HopCPU, cal.Costs.HopByte = hop, hopByte
		cal.Sources["costs.hop_cpu_s"] = "measured: CPU of 3,000 net.Client.Call round trips between two processes over loopback (this one and its `scalemodel hop-server` child; getrusage here, the child's own reported), both ends, 4 KiB answer less the per-byte part: two processes with cores to spare, as a cluster node's daemon and its parent"
		cal.Sources["costs.hop_byte_s"] = "measured: the same with a 128 KiB answer; the difference per answer byte"
	}
	if !tar {
		return nil
	}
	c, x, xcpu, err := timeTar(ctx, res.Tree.Packages)
	if err != nil {
		return fmt.Errorf("time tar: %w", err)
	}
	cal.Costs.TarCreate, cal.Costs.TarExtract, cal.Costs.TarExtractCPU = c, x, min(xcpu, x)
	cal.Sources["costs.tar_extract_cpu_s"] = "measured: user + system time of that tar -xf (rusage of the child)"
	cal.Sources["costs.tar_create_s"] = "measured: wall time of tar -cf of the packages on local disk"
	cal.Sources["costs.tar_extract_s"] = "measured: wall time of tar -xf of that archive on local disk, the least disturbed of 3 (least wall beyond its CPU)"
	return nil
}

// measureWorkerStart runs the run's replay worker (pfsbench's
// replay-worker) up to its "ready" 20 times with stdin closed, so each
// exits before replaying, and keeps the mean CPU (rusage) of one: the
// Go start and the trace's parse, which the clients' CPU of every
// measured row holds once per node and the timed run does not.
func (cal *Calibration) measureWorkerStart(ctx context.Context, bin, trace string) error {
	prefix, err := tracePrefix(trace)
	if err != nil {
		return err
	}
	const runs = 20
	var cpu float64
	for range runs {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		cmd := exec.CommandContext(ctx, bin, pfsbench.WorkerCommand, "--trace", trace, "--prefix", prefix,
			"--root", os.TempDir())
		out, _ := cmd.CombinedOutput() // it fails waiting for go on a closed stdin, after "ready"
		cancel()
		if cmd.ProcessState == nil || !strings.HasPrefix(string(out), "ready") {
			return fmt.Errorf("replay worker %s: no ready: %s", bin, out)
		}
		cpu += (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	cal.Costs.WorkerStartCPU = cpu / runs
	cal.Sources["costs.worker_start_cpu_s"] = fmt.Sprintf("measured: mean CPU (rusage) of %d starts of `%s %s` up to its ready (Go start, trace parse), stdin closed; taken off the N=1 clients' CPU before the per-operation fits and added once per node to the modelled CPU", runs, filepath.Base(bin), pfsbench.WorkerCommand)
	return nil
}

// measureHop times in-process round trips over loopback and returns
// the CPU per call (4 KiB answer, less its bytes) and per answer byte.
func measureHop(ctx context.Context) (perCall, perByte float64, err error) {
	const calls = 2000
	token := []byte("scalemodel-calibration-token")
	cpuPer := func(size int) (float64, error) {
		answer := op.Result{Attr: op.Attr{Size: int64(size)}, Data: make([]byte, size)}
		srv, err := cnet.Listen(ctx, "127.0.0.1:0", func(context.Context, op.Op, string) op.Result { return answer },
			cnet.Config{Token: token, MaxFrame: 4 << 20})
		if err != nil {
			return 0, err
		}
		defer srv.Shutdown(context.Background())
		c, err := cnet.Dial(ctx, srv.Addr(), cnet.Config{Token: token, MaxFrame: 4 << 20})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		for range 100 { // warm up connections and buffers
			if _, err := c.Call(ctx, op.Read, "/x"); err != nil {
				return 0, err
			}
		}
		before := cpuNow()
		for range calls {
			r, err := c.Call(ctx, op.Read, "/lib/libpython3.so")
			if err != nil || len(r.Data) != size {
				return 0, fmt.Errorf("call: %v (%d bytes)", err, len(r.Data))
			}
		}
		return (cpuNow() - before) / calls, nil
	}
	small, err := cpuPer(4 << 10)
	if err != nil {
		return 0, 0, err
	}
	big, err := cpuPer(128 << 10)
	if err != nil {
		return 0, 0, err
	}
	perByte = max(0, (big-small)/float64(124<<10))
	return max(0, small-perByte*4096), perByte, nil
}

func cpuNow() float64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// tarRuns is how many extractions timeTar times.
const tarRuns = 3

// timeTar measures tar -c of the packages and tar -x of the result on
// local disk (the least disturbed of tarRuns), in a temporary directory
// it removes.
func timeTar(ctx context.Context, pkgs []string) (create, extract, extractCPU float64, err error) {
	if len(pkgs) == 0 {
		return 0, 0, 0, errors.New("no packages to tar")
	}
	dir, err := os.MkdirTemp("", "scalemodel-tar-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	tarFile := filepath.Join(dir, "site.tar")
	args := []string{"-cf", tarFile}
	for _, p := range pkgs {
		args = append(args, "-C", filepath.Dir(p), filepath.Base(p))
	}
	run := func(args ...string) (wall, cpu float64, err error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		start := time.Now()
		cmd := exec.CommandContext(ctx, "tar", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("tar %v: %w: %s", args, err, out)
		}
		cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
		return time.Since(start).Seconds(), cpu, nil
	}
	if create, _, err = run(args...); err != nil {
		return 0, 0, 0, err
	}
	// The extraction's time beyond its CPU is taken as the disk's; on a
	// shared host one run's also holds its waits for a CPU (one calibration
	// here: 2.7 s of wall for 1.0 s of CPU, added to every node's
	// extraction). The least of tarRuns is the least disturbed.
	extract = math.Inf(1)
	for i := range tarRuns {
		x := filepath.Join(dir, fmt.Sprint("x", i))
		if err := os.Mkdir(x, 0o700); err != nil {
			return 0, 0, 0, err
		}
		wall, cpu, err := run("-xf", tarFile, "-C", x)
		if err != nil {
			return 0, 0, 0, err
		}
		if wall-cpu < extract-extractCPU {
			extract, extractCPU = wall, cpu
		}
	}
	return create, extract, extractCPU, nil
}
