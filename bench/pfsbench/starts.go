package pfsbench

// What the scale model needs to see of a copper setup and of a FUSE
// round trip, beyond the rows' totals: each daemon's start, timed from
// the launch of every node, and the emulator's round trip at one
// request in flight.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/bench/replay"
)

// DaemonStart is one copper-node's start in a copper setup, in seconds
// from pfsbench's launch of every node (the setup's start).
type DaemonStart struct {
	Rank int `json:"rank"`
	// SpawnS: its copper-node command was started (the launcher's
	// spread); ReturnedS: that command returned, the daemon tree-ready
	// and mounted.
	SpawnS    float64 `json:"spawn_s"`
	ReturnedS float64 `json:"returned_s"`
	// From the daemon's log (its startup timing lines, ms clock): its
	// own start (the registration line less its "after <us> us"),
	// "provider registration completed" and "tree ready".
	StartS      float64 `json:"start_s,omitempty"`
	RegisteredS float64 `json:"registered_s,omitempty"`
	TreeReadyS  float64 `json:"tree_ready_s,omitempty"`
	// CPU seconds when its command returned: the daemon's own
	// (/proc/<pid>/stat) and the command's that daemonized it (rusage).
	DaemonCPUS   float64 `json:"daemon_cpu_s"`
	LauncherCPUS float64 `json:"launcher_cpu_s"`
	// DaemonWaitS is the time the daemon's threads were runnable but
	// waiting for a CPU (schedstat), up to its command's return.
	DaemonWaitS float64 `json:"daemon_wait_s"`
	// ReadyProbes is how many readiness probes it sent its parent, from
	// its stats after the run (nil: its copper does not count them).
	ReadyProbes *int64 `json:"ready_probes,omitempty"`
}

// Readiness policies of the measured copper (Row.ReadyPolicy).
const (
	// ReadyBackoff: a parent answers a probe at once; a child not told
	// "ready" waits a doubling interval before the next.
	ReadyBackoff = "backoff"
	// ReadyHold: a parent that is up holds a probe until it is
	// tree-ready (or a bound), so a child learns it one round trip after.
	ReadyHold = "wait-at-parent"
)

// readiness reads what a node's stats (copper-node stats --json) say of
// readiness: a copper that holds probes reports how many it holds
// (node.ready_held) and how many it sent (node.ready_probes).
func (t *copperTree) readiness(rank int, stats []byte) {
	var st struct {
		Node struct {
			Probes *int64 `json:"ready_probes"`
			Held   *int64 `json:"ready_held"`
		} `json:"node"`
	}
	if json.Unmarshal(stats, &st) != nil {
		return
	}
	t.starts[rank].ReadyProbes = st.Node.Probes
	switch {
	case st.Node.Held != nil:
		t.policy = ReadyHold
	case t.policy == "":
		t.policy = ReadyBackoff
	}
}

// RoundTrip is one process's FUSE requests to the emulator, one in
// flight at a time (opens and closes of one file on a node's client).
type RoundTrip struct {
	Opens        int     `json:"opens"`
	Requests     int64   `json:"requests"` // the emulator's counted requests
	WallS        float64 `json:"wall_s"`
	ClientCPUS   float64 `json:"client_cpu_s"` // the thread's (RUSAGE_THREAD)
	EmulatorCPUS float64 `json:"emulator_cpu_s"`
}

var (
	logTime       = regexp.MustCompile(`^time=(\S+) `)
	registeredMsg = regexp.MustCompile(`provider registration completed after (\d+) us`)
	treeReadyMsg  = regexp.MustCompile(`msg="tree ready"(?: \S+)* after_us=(\d+)`)
	readyLogPath  = regexp.MustCompile(`copper-node: ready .* log=(\S+)`)
)

// fromLog fills d's log timings from the daemon's log file, times taken
// relative to start. A log without the lines leaves them zero.
func (d *DaemonStart) fromLog(file string, start time.Time) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		m := logTime.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		off := at.Sub(start).Seconds()
		if r := registeredMsg.FindStringSubmatch(line); r != nil && d.RegisteredS == 0 {
			us, _ := strconv.ParseInt(r[1], 10, 64)
			d.RegisteredS, d.StartS = off, off-float64(us)/1e6
		}
		if r := treeReadyMsg.FindStringSubmatch(line); r != nil && d.TreeReadyS == 0 {
			d.TreeReadyS = off
		}
	}
}

// roundTripOpens is how many opens the round-trip probe makes: a few
// hundred requests, tens of milliseconds.
const roundTripOpens = 200

// measureRoundTrip opens and closes one file under root roundTripOpens
// times on one thread and reads the emulator's counters and CPU around
// it. The emulator's counters are reset afterwards.
func measureRoundTrip(ctx context.Context, em *emulator, root string) (*RoundTrip, error) {
	file, err := firstFile(root)
	if err != nil {
		return nil, err
	}
	if _, err := em.reset(ctx); err != nil {
		return nil, err
	}
	emuPid := []int{em.cmd.Process.Pid}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	emu0, cpu0 := cpuTime(emuPid), threadCPU()
	t0 := time.Now()
	for range roundTripOpens {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	wall := time.Since(t0)
	cpu, emu := threadCPU()-cpu0, cpuTime(emuPid)-emu0
	snap, err := em.reset(ctx)
	if err != nil {
		return nil, err
	}
	return &RoundTrip{Opens: roundTripOpens, Requests: backendOf(snap).Requests(), WallS: secs(wall), ClientCPUS: secs(cpu), EmulatorCPUS: secs(emu)}, nil
}

// firstFile is the first regular file under root, in walk order.
func firstFile(root string) (string, error) {
	var found string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if err == nil && found == "" {
		err = &fs.PathError{Op: "find a regular file", Path: root, Err: fs.ErrNotExist}
	}
	return found, err
}

// schedCPU is a process's CPU time and its time runnable but waiting for
// a CPU, summed over its threads' schedstat (ns, where /proc/<pid>/stat
// counts 10 ms ticks: a daemon's start is a few of them);
// /proc/<pid>/stat's CPU when schedstat is not there.
func schedCPU(pid int) (run, wait time.Duration) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return statTime(pid), 0
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if s, err := replay.ParseSchedstat(b); err == nil {
			run, wait = run+s.Run, wait+s.Wait
		}
	}
	return run, wait
}

// threadCPU is the calling thread's user and system time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
