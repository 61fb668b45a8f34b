package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Bounds on child processes: the point at which a hang is a failure, not
// a slow machine.
const (
	launchTimeout = 60 * time.Second
	stopTimeout   = 30 * time.Second
	killGrace     = 10 * time.Second
)

const fuseConnections = "/sys/fs/fuse/connections"

// binDir holds copper-launch and copper-node, built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "copper-launch-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-launch test: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-launch test: go env GOMOD: %v\n", err)
		return 1
	}
	build := exec.Command("go", "build", "-o", tmp+"/", "./cmd/copper-launch", "./cmd/copper-node")
	build.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "copper-launch test: go build in %s: %v\n%s", build.Dir, err, out)
		return 1
	}
	binDir = tmp
	return m.Run()
}

func launcher() string { return filepath.Join(binDir, "copper-launch") }

// requireFuse fails (never skips) when the machine cannot run these tests.
func requireFuse(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Fatalf("fusermount3 not found (%v): install the test dependencies with scripts/setup-test-deps.sh", err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("/dev/fuse: %v: this test needs FUSE; run scripts/setup-test-deps.sh", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("these tests mount, unmount and abort FUSE connections: run them as root (euid %d)", os.Geteuid())
	}
}

// job is one test's directory: target, mounts, logs and the runtime
// directory of every process it starts. Its cleanup leaves no process,
// mount or file behind, even when the test fails.
type job struct {
	t          *testing.T
	dir        string
	target     string
	runtimeDir string
	logDir     string

	mu    sync.Mutex
	conns map[uint32]bool // FUSE connection ids of our mounts
}

func newJob(t *testing.T) *job {
	t.Helper()
	requireFuse(t)
	// Not t.TempDir: its removal would descend into a mount left behind.
	dir, err := os.MkdirTemp("", "copper-launch-test-")
	require.NoError(t, err)
	j := &job{t: t, dir: dir, target: filepath.Join(dir, "target"), runtimeDir: filepath.Join(dir, "run"),
		logDir: filepath.Join(dir, "logs"), conns: map[uint32]bool{}}
	t.Cleanup(j.teardown)
	require.NoError(t, os.MkdirAll(filepath.Join(j.target, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(j.target, "sub", "hello.txt"), []byte("hello from the target\n"), 0o644))
	return j
}

func (j *job) mountTemplate() string { return filepath.Join(j.dir, "m{rank}") }
func (j *job) mount(r int) string    { return filepath.Join(j.dir, "m"+strconv.Itoa(r)) }

// common are the flags every start of the job gets.
func (j *job) common() []string {
	return []string{"--site", "local", "--target", j.target, "--mount", j.mountTemplate(), "--log-dir", j.logDir, "--log-level", "4"}
}

func (j *job) env() []string {
	env := []string{"XDG_RUNTIME_DIR=" + j.runtimeDir}
	for _, kv := range os.Environ() {
		// A rank or job from an enclosing launcher must not leak in.
		switch name, _, _ := strings.Cut(kv, "="); {
		case name == "XDG_RUNTIME_DIR", name == "COPPER_NODE_DAEMON", strings.HasPrefix(name, "PMI_"),
			strings.HasPrefix(name, "SLURM_"), strings.HasPrefix(name, "PBS_"), strings.HasPrefix(name, "PALS_"),
			strings.HasPrefix(name, "OMPI_"), strings.HasPrefix(name, "PMIX_"), name == "COPPER_JOB_ID":
			continue
		}
		env = append(env, kv)
	}
	return env
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs a command of the job, bounded in time.
func (j *job) run(timeout time.Duration, name string, args ...string) result {
	j.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = j.env()
	r, err := runBounded(cmd, timeout)
	require.NoError(j.t, err, "%s %q: %s", name, args, r)
	j.noteConnections()
	return r
}

func (j *job) launch(args ...string) result {
	j.t.Helper()
	return j.run(launchTimeout, launcher(), args...)
}

// runBounded runs cmd in its own process group and kills the group after
// timeout.
func runBounded(cmd *exec.Cmd, timeout time.Duration) (result, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return result{code: -1}, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	finish := func(err error) (result, error) {
		r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = nil // a non-zero exit is a result, not a failure to run
		}
		return r, err
	}
	select {
	case err := <-done:
		return finish(err)
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case err := <-done:
		r, _ := finish(err)
		return r, fmt.Errorf("killed after %v", timeout)
	case <-time.After(killGrace):
		return result{code: -1}, fmt.Errorf("still not gone %v after SIGKILL (stuck in a FUSE mount?)", killGrace)
	}
}

// readThrough reads a file through a mount in a child process, so that a
// hung mount cannot hang the test.
func (j *job) readThrough(path string) string {
	j.t.Helper()
	r := j.run(stopTimeout, "cat", path)
	require.Equal(j.t, 0, r.code, "cat %s: %s", path, r)
	return r.stdout
}

// alive reports whether pid is a running (not zombie) process whose
// command line mentions dir, so a recycled pid is never taken for ours.
func alive(pid int, dir string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cmdline, []byte(dir))
}

// processes lists live processes whose command line names the job's dir.
func (j *job) processes() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if alive(pid, j.dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

type mountEntry struct {
	minor  uint32 // for FUSE: the fusectl connection id
	point  string
	fstype string
}

func readMountinfo(t *testing.T) []mountEntry {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	require.NoError(t, err)
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 6 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		_, minorText, _ := strings.Cut(fields[2], ":")
		minor, _ := strconv.ParseUint(minorText, 10, 32)
		out = append(out, mountEntry{minor: uint32(minor), point: fields[4], fstype: fields[sep+1]})
	}
	require.NoError(t, sc.Err())
	return out
}

// mounts lists the mounts at or below the job's dir.
func (j *job) mounts() []mountEntry {
	var out []mountEntry
	for _, m := range readMountinfo(j.t) {
		if m.point == j.dir || strings.HasPrefix(m.point, j.dir+"/") {
			out = append(out, m)
		}
	}
	return out
}

func (j *job) noteConnections() {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, m := range j.mounts() {
		if strings.HasPrefix(m.fstype, "fuse") {
			j.conns[m.minor] = true
		}
	}
}

// requireNothingLeft checks that no mount and no process of the job remain.
func (j *job) requireNothingLeft() {
	j.t.Helper()
	require.Empty(j.t, j.mounts(), "mounts left")
	deadline := time.Now().Add(stopTimeout)
	for len(j.processes()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Empty(j.t, j.processes(), "processes left")
}

// teardown stops what is left, kills what does not stop, detaches mounts,
// aborts FUSE connections still holding requests, and removes the dir.
func (j *job) teardown() {
	t := j.t
	j.noteConnections()
	for _, m := range j.mounts() {
		cmd := exec.Command(filepath.Join(binDir, "copper-node"), "stop", "--mount", m.point, "--timeout", "10s")
		cmd.Env = j.env()
		_, _ = runBounded(cmd, stopTimeout)
	}
	for _, pid := range j.processes() {
		t.Logf("teardown: SIGKILL pid %d, still alive after stop", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for range 8 {
		left := j.mounts()
		if len(left) == 0 {
			break
		}
		for i := len(left) - 1; i >= 0; i-- {
			if err := syscall.Unmount(left[i].point, syscall.MNT_DETACH); err != nil {
				t.Logf("teardown: umount -l %s: %v", left[i].point, err)
			}
		}
	}
	j.abortStuckConnections()
	if left := j.mounts(); len(left) > 0 {
		t.Errorf("teardown: %d mounts left under %s; not removing it", len(left), j.dir)
		return
	}
	if err := os.RemoveAll(j.dir); err != nil {
		t.Errorf("teardown: %v", err)
	}
}

func (j *job) abortStuckConnections() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.conns) == 0 {
		return
	}
	if !fusectlMounted(j.t) {
		if err := syscall.Mount("fusectl", fuseConnections, "fusectl", 0, ""); err != nil {
			j.t.Logf("teardown: mount fusectl at %s: %v", fuseConnections, err)
		}
	}
	for id := range j.conns {
		dir := filepath.Join(fuseConnections, strconv.FormatUint(uint64(id), 10))
		waiting, err := os.ReadFile(filepath.Join(dir, "waiting"))
		if err != nil {
			continue
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(string(waiting))); n > 0 {
			j.t.Logf("teardown: aborting FUSE connection %d (%d requests waiting)", id, n)
			_ = os.WriteFile(filepath.Join(dir, "abort"), []byte("1"), 0)
		}
	}
}

func fusectlMounted(t *testing.T) bool {
	for _, m := range readMountinfo(t) {
		if m.point == fuseConnections && m.fstype == "fusectl" {
			return true
		}
	}
	return false
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// readyPIDs parses copper-node's ready lines: rank → daemon pid.
func readyPIDs(t *testing.T, stdout string) map[int]int {
	t.Helper()
	pids := map[int]int{}
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(line, "copper-node: ready ") {
			continue
		}
		var r, pid int
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "rank="); ok {
				r, _ = strconv.Atoi(v)
			}
			if v, ok := strings.CutPrefix(f, "pid="); ok {
				pid, _ = strconv.Atoi(v)
			}
		}
		pids[r] = pid
	}
	return pids
}

// privateLeftovers lists book and token copies in the runtime directory.
func (j *job) privateLeftovers() []string {
	var out []string
	for _, pat := range []string{"*.book", "*.token"} {
		m, _ := filepath.Glob(filepath.Join(j.runtimeDir, "copper", pat))
		out = append(out, m...)
	}
	return out
}
