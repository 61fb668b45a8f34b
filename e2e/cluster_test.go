package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Bounds on child processes. A node starts in milliseconds; these are
// the point at which a hang is a failure, not a slow machine.
const (
	serveTimeout = 45 * time.Second
	stopTimeout  = 20 * time.Second
	walkTimeout  = 50 * time.Second
	killGrace    = 10 * time.Second
)

const fuseConnections = "/sys/fs/fuse/connections"

// requireFuse fails (never skips) when the machine cannot run these tests.
func requireFuse(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Fatalf("fusermount3 not found (%v): install the test dependencies with `make test` or scripts/setup-test-deps.sh", err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("/dev/fuse: %v: this test needs FUSE; run `make test` or scripts/setup-test-deps.sh", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("e2e tests mount, unmount and abort FUSE connections: run them as root (euid %d)", os.Geteuid())
	}
	require.NotEmpty(t, copperNode, "TestMain did not build copper-node")
}

// freePorts returns n loopback endpoints that were free a moment ago.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addrs[i] = ln.Addr().String()
		require.NoError(t, ln.Close())
	}
	return addrs
}

// clusterConfig describes the nodes of one test.
type clusterConfig struct {
	nodes  int
	fanout int
	target string   // "" = the default, "/"
	flags  []string // more serve flags
}

// cluster is the copper nodes of one test, all on this host, with their
// book, mounts, logs and control sockets under one directory. Its cleanup
// leaves no process, mount or socket behind, even when the test fails.
type cluster struct {
	t          *testing.T
	cfg        clusterConfig
	dir        string
	runtimeDir string // XDG_RUNTIME_DIR of every copper-node run
	logDir     string
	jobID      string
	book       string
	endpoints  []string

	mu    sync.Mutex
	pids  map[int]bool    // every daemon pid ever reported
	conns map[uint32]bool // FUSE connection ids of our mounts
}

func newCluster(t *testing.T, cfg clusterConfig) *cluster {
	t.Helper()
	requireFuse(t)
	// Not t.TempDir: its removal would descend into a mount left behind;
	// teardown removes the directory only once nothing is mounted in it.
	dir, err := os.MkdirTemp("", "copper-e2e-")
	require.NoError(t, err)
	c := &cluster{
		t: t, cfg: cfg, dir: dir,
		runtimeDir: filepath.Join(dir, "run"),
		logDir:     filepath.Join(dir, "logs"),
		jobID:      "e2e",
		book:       filepath.Join(dir, "book"),
		pids:       map[int]bool{},
		conns:      map[uint32]bool{},
	}
	t.Cleanup(c.teardown)
	require.NoError(t, os.MkdirAll(c.runtimeDir, 0o700))
	if cfg.nodes > 0 {
		c.endpoints = freePorts(t, cfg.nodes)
		var b strings.Builder
		for _, ep := range c.endpoints {
			fmt.Fprintf(&b, "localhost %s\n", ep)
		}
		require.NoError(t, os.WriteFile(c.book, []byte(b.String()), 0o644))
	}
	return c
}

// mount is rank's mount directory.
func (c *cluster) mount(rank int) string { return filepath.Join(c.dir, fmt.Sprintf("mnt%d", rank)) }

func (c *cluster) env() []string {
	env := []string{"XDG_RUNTIME_DIR=" + c.runtimeDir}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") && !strings.HasPrefix(kv, "COPPER_NODE_DAEMON=") {
			env = append(env, kv)
		}
	}
	return env
}

// serveArgs are the flags every node of the cluster gets.
func (c *cluster) serveArgs(rank int) []string {
	args := []string{
		"--book", c.book, "--rank", strconv.Itoa(rank),
		"--mount", filepath.Join(c.dir, "mnt{rank}"),
		"--log-dir", c.logDir, "--job-id", c.jobID, "--log-level", "4",
		"--fanout", strconv.Itoa(c.cfg.fanout),
		"--max-cacheable-bytes", strconv.Itoa(testMaxCacheable),
		"--cache-memory-bytes", strconv.Itoa(256 << 20),
		"--ready-timeout-s", "20", "--rpc-timeout-s", "20", "--stop-timeout", "10s",
	}
	if c.cfg.target != "" {
		args = append(args, "--target", c.cfg.target)
	}
	return append(args, c.cfg.flags...)
}

// result is one finished child process.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// run runs copper-node with the cluster's environment.
func (c *cluster) run(timeout time.Duration, args ...string) (result, error) {
	cmd := exec.Command(copperNode, args...)
	cmd.Env = c.env()
	return runBounded(cmd, timeout)
}

// runBounded runs cmd in its own process group and kills the group after
// timeout. A child stuck in a dead FUSE mount may not even die; then it
// is left to teardown (which aborts the connection) and an error says so.
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
		return r, fmt.Errorf("%s %q: killed after %v", cmd.Path, cmd.Args[1:], timeout)
	case <-time.After(killGrace):
		return result{code: -1}, fmt.Errorf("%s %q: still not gone %v after SIGKILL (stuck in a FUSE mount?)",
			cmd.Path, cmd.Args[1:], killGrace)
	}
}

// started is what a successful `copper-node serve` reported.
type started struct {
	rank int
	pid  int
	log  string
	out  result
}

var readyLine = regexp.MustCompile(`copper-node: ready rank=(\d+) mount=(\S+) tree_ready_ms=\d+ pid=(\d+) log=(\S+)`)

// start starts rank as a daemon and requires it to come up.
func (c *cluster) start(rank int) started {
	c.t.Helper()
	s, err := c.tryStart(rank)
	require.NoError(c.t, err)
	return s
}

func (c *cluster) tryStart(rank int) (started, error) {
	r, err := c.run(serveTimeout, c.serveArgs(rank)...)
	if err != nil {
		return started{out: r}, fmt.Errorf("start rank %d: %w", rank, err)
	}
	if r.code != 0 {
		return started{out: r}, fmt.Errorf("start rank %d: %s", rank, r)
	}
	m := readyLine.FindStringSubmatch(r.stdout)
	if m == nil {
		return started{out: r}, fmt.Errorf("start rank %d: no ready line: %s", rank, r)
	}
	pid, _ := strconv.Atoi(m[3])
	c.mu.Lock()
	c.pids[pid] = true
	c.mu.Unlock()
	if m[1] != strconv.Itoa(rank) || m[2] != c.mount(rank) {
		return started{out: r}, fmt.Errorf("start rank %d: ready line names rank %s mount %s, want mount %s", rank, m[1], m[2], c.mount(rank))
	}
	c.noteConnections()
	return started{rank: rank, pid: pid, log: m[4], out: r}, nil
}

// startAll starts every rank at once, as a job launcher does: children
// start before their parents serve and must wait for them.
func (c *cluster) startAll() []started {
	c.t.Helper()
	out := make([]started, c.cfg.nodes)
	errs := make([]error, c.cfg.nodes)
	var wg sync.WaitGroup
	for r := range c.cfg.nodes {
		wg.Go(func() { out[r], errs[r] = c.tryStart(r) })
	}
	wg.Wait()
	require.NoError(c.t, errors.Join(errs...))
	return out
}

// stop runs `copper-node stop` for rank's mount.
func (c *cluster) stop(rank int) (result, error) {
	return c.run(stopTimeout, "stop", "--mount", c.mount(rank), "--timeout", "15s")
}

// status is the part of `copper-node stats --json` scripts rely on; the
// field names here are that contract.
type status struct {
	Mount  string `json:"mount"`
	Parent int    `json:"parent"`
	PID    int    `json:"pid"`
	Depth  int    `json:"depth"`
	Node   struct {
		Rank      int  `json:"rank"`
		Root      bool `json:"root"`
		TreeReady bool `json:"tree_ready"`
		Ops       []struct {
			Op         string `json:"op"`
			Hits       int64  `json:"hits"`
			Misses     int64  `json:"misses"`
			Coalesced  int64  `json:"coalesced_waits"`
			Forwarded  int64  `json:"forwarded"`
			BackendOps int64  `json:"backend_ops"`
		} `json:"ops"`
	} `json:"node"`
}

// opCounts returns the counters of one operation ("getattr", "read", ...).
func (s status) op(name string) (forwarded, backend int64, ok bool) {
	for _, o := range s.Node.Ops {
		if o.Op == name {
			return o.Forwarded, o.BackendOps, true
		}
	}
	return 0, 0, false
}

func (c *cluster) stats(rank int) status {
	c.t.Helper()
	r, err := c.run(stopTimeout, "stats", "--mount", c.mount(rank), "--json")
	require.NoError(c.t, err)
	require.Zero(c.t, r.code, "copper-node stats --mount %s --json: %s", c.mount(rank), r)
	var st status
	require.NoError(c.t, json.Unmarshal([]byte(r.stdout), &st), "stats JSON: %s", r.stdout)
	return st
}

// walk builds the manifest of rank's mount in a child process.
func (c *cluster) walk(rank int) (manifest, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), walkEnv+"="+c.mount(rank))
	r, err := runBounded(cmd, walkTimeout)
	if err != nil {
		return nil, fmt.Errorf("walk of rank %d's mount %s: %w", rank, c.mount(rank), err)
	}
	if r.code != 0 {
		return nil, fmt.Errorf("walk of rank %d's mount %s: %s", rank, c.mount(rank), r)
	}
	var m manifest
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		return nil, fmt.Errorf("walk of rank %d's mount: decode: %w", rank, err)
	}
	return m, nil
}

// walkAll walks every mount at once.
func (c *cluster) walkAll() []manifest {
	c.t.Helper()
	out := make([]manifest, c.cfg.nodes)
	errs := make([]error, c.cfg.nodes)
	var wg sync.WaitGroup
	for r := range c.cfg.nodes {
		wg.Go(func() { out[r], errs[r] = c.walk(r) })
	}
	wg.Wait()
	require.NoError(c.t, errors.Join(errs...))
	return out
}

// within runs f, which touches a mount from this process, and fails the
// test if it does not return in time: a dead FUSE server would otherwise
// hang the test forever. A stuck f is released by teardown's abort.
func within(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s: no answer after %v (FUSE server hung or dead?)", what, d)
		return nil
	}
}

// processAlive reports whether pid is a running (not zombie) process
// whose command line mentions dir, so a recycled pid is never taken for
// one of ours.
func processAlive(pid int, dir string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cmdline, []byte(dir))
}

// processesMentioning lists live processes whose command line names dir.
func processesMentioning(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if processAlive(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitGone waits until pid is no longer a live process of this cluster.
func (c *cluster) waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for processAlive(pid, c.dir) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// mountEntry is one line of /proc/self/mountinfo.
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
		out = append(out, mountEntry{minor: uint32(minor), point: unescapeOctal(fields[4]), fstype: fields[sep+1]})
	}
	require.NoError(t, sc.Err())
	return out
}

// unescapeOctal undoes mountinfo's \040-style escapes.
func unescapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsUnder lists the mounts at or below dir, outermost last.
func mountsUnder(t *testing.T, dir string) []mountEntry {
	t.Helper()
	var out []mountEntry
	for _, m := range readMountinfo(t) {
		if m.point == dir || strings.HasPrefix(m.point, dir+"/") {
			out = append(out, m)
		}
	}
	return out
}

// mountsAt counts the mounts stacked at exactly dir.
func mountsAt(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, m := range readMountinfo(t) {
		if m.point == dir {
			n++
		}
	}
	return n
}

// noteConnections records the FUSE connection ids of our mounts while
// they are still listed, so teardown can abort them after unmounting.
func (c *cluster) noteConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range mountsUnder(c.t, c.dir) {
		if strings.HasPrefix(m.fstype, "fuse") {
			c.conns[m.minor] = true
		}
	}
}

// sockets lists the control sockets in the cluster's runtime directory.
func (c *cluster) sockets() []string {
	socks, _ := filepath.Glob(filepath.Join(c.runtimeDir, "copper", "*.sock"))
	return socks
}

// teardown stops every node, kills what is left, unmounts what is left
// and aborts FUSE connections still holding requests, then removes the
// cluster directory if nothing is mounted in it any more.
func (c *cluster) teardown() {
	t := c.t
	c.noteConnections()
	var wg sync.WaitGroup
	for r := range c.cfg.nodes {
		if mountsAt(t, c.mount(r)) == 0 {
			continue
		}
		wg.Go(func() { _, _ = c.stop(r) })
	}
	wg.Wait()

	c.mu.Lock()
	pids := make([]int, 0, len(c.pids))
	for pid := range c.pids {
		pids = append(pids, pid)
	}
	c.mu.Unlock()
	pids = append(pids, processesMentioning(c.dir)...)
	for _, pid := range pids {
		if processAlive(pid, c.dir) {
			t.Logf("teardown: SIGKILL pid %d, still alive after stop", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			c.waitGone(pid, 5*time.Second)
		}
	}

	for range 8 {
		left := mountsUnder(t, c.dir)
		if len(left) == 0 {
			break
		}
		for i := len(left) - 1; i >= 0; i-- {
			if err := syscall.Unmount(left[i].point, syscall.MNT_DETACH); err != nil {
				t.Logf("teardown: umount -l %s: %v", left[i].point, err)
			}
		}
	}

	c.abortStuckConnections()

	if left := mountsUnder(t, c.dir); len(left) > 0 {
		t.Errorf("teardown: %d mounts left under %s; not removing it", len(left), c.dir)
		return
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Errorf("teardown: %v", err)
	}
}

// abortStuckConnections aborts those of our FUSE connections that still
// have requests waiting: their server is dead or hung, and whoever waits
// on them would sleep uninterruptibly.
func (c *cluster) abortStuckConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.conns) == 0 {
		return
	}
	if ents, err := os.ReadDir(fuseConnections); err == nil && len(ents) == 0 {
		if err := syscall.Mount("fusectl", fuseConnections, "fusectl", 0, ""); err != nil {
			c.t.Logf("teardown: mount fusectl at %s: %v", fuseConnections, err)
		}
	}
	for id := range c.conns {
		dir := filepath.Join(fuseConnections, strconv.FormatUint(uint64(id), 10))
		waiting, err := os.ReadFile(filepath.Join(dir, "waiting"))
		if err != nil {
			continue // gone: nothing waits on it
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(string(waiting))); n > 0 {
			c.t.Logf("teardown: aborting FUSE connection %d (%d requests waiting)", id, n)
			if err := os.WriteFile(filepath.Join(dir, "abort"), []byte("1"), 0); err != nil {
				c.t.Logf("teardown: abort FUSE connection %d: %v", id, err)
			}
		}
	}
}

// readLog returns a node's log file.
func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err, "log file")
	return string(b)
}

// eventually polls cond until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return true
}
