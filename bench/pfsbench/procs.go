package pfsbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/internal/osutil"
)

// cappedBuffer keeps the first limit bytes written to it: enough of a
// child's stderr to explain a failure, never unbounded.
type cappedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}

// prepare puts cmd in its own process group, so a terminal's Ctrl-C
// reaches only the driver, which then stops helpers in order (copper
// nodes before the filesystem they read), and so a whole group can be
// killed.
func prepare(cmd *exec.Cmd) *cappedBuffer {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	stderr := &cappedBuffer{limit: 16 << 10}
	if cmd.Stderr == nil {
		cmd.Stderr = stderr
	}
	return stderr
}

// killGroup kills cmd's process group.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// output is a finished short-lived command.
type output struct {
	stdout, stderr string
	cpu            time.Duration // the process's user + system time (rusage at exit)
}

// runBounded runs name with args and env, returning its output; it kills
// the process group when timeout passes or ctx ends. A non-zero exit is
// an error that quotes stderr.
func runBounded(ctx context.Context, timeout time.Duration, env []string, name string, args ...string) (output, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr := prepare(cmd)
	if err := cmd.Start(); err != nil {
		return output{}, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		killGroup(cmd)
		<-done
		err = fmt.Errorf("killed: %w", ctx.Err())
	}
	out := output{stdout: stdout.String(), stderr: stderr.String()}
	if ps := cmd.ProcessState; ps != nil {
		out.cpu = ps.UserTime() + ps.SystemTime()
	}
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out.stderr)
	}
	return out, nil
}

// environ is os.Environ with the given variables replaced.
func environ(set ...string) []string {
	env := make([]string, 0, len(os.Environ())+len(set))
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for _, s := range set {
			if strings.HasPrefix(s, name+"=") {
				replaced = true
				break
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}

// waitGone waits up to d for pid to stop being a live process of ours.
func waitGone(pid int, marker string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for osutil.ProcessMentions(pid, marker) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// rssBytes reads VmRSS of pid from /proc/<pid>/status.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("pid %d VmRSS %q: %w", pid, rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS line")
}

// userHz is the kernel's clock tick for /proc times: USER_HZ, 100 on
// every Linux architecture Go supports.
const userHz = 100

// cpuTime sums the CPU time of the live processes among pids (cpuTimes).
func cpuTime(pids []int) time.Duration {
	var d time.Duration
	for _, t := range cpuTimes(pids) {
		d += t
	}
	return d
}

// cpuTimes is the CPU time of each of pids (0 for a process that is gone
// or unreadable): its threads' schedstat (ns) where the kernel has it,
// else user and system time from /proc/<pid>/stat (10 ms ticks, coarse
// for a daemon's start or a phase of tens of milliseconds).
func cpuTimes(pids []int) []time.Duration {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		out[i], _ = schedCPU(pid)
	}
	return out
}

// statTime is user and system time from /proc/<pid>/stat (0 if gone).
func statTime(pid int) time.Duration {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		return statCPU(b)
	}
	return 0
}

// statCPU is utime + stime of one /proc/<pid>/stat line; 0 if it does
// not parse.
func statCPU(b []byte) time.Duration {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// After the command: state is field 3, utime 14, stime 15.
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	// Beyond maxTicks (about three years of CPU) the nanoseconds would
	// overflow: not a real process's time.
	const maxTicks = math.MaxInt64 / int64(time.Second)
	if err1 != nil || err2 != nil || u < 0 || s < 0 || u > maxTicks || s > maxTicks-u {
		return 0
	}
	return time.Duration(u+s) * time.Second / userHz
}
