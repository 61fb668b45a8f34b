package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/service"
)

// Bounds on child processes. A node starts in milliseconds; these are
// the point at which a hang is a failure, not a slow machine.
const (
	serveTimeout = 45 * time.Second
	stopTimeout  = 20 * time.Second
	walkTimeout  = 50 * time.Second
)

// e2eToken is the job token of every test cluster.
const e2eToken = "e2e-cluster-job-token"

// requireFuse fails (never skips) when the machine cannot run these tests.
func requireFuse(t *testing.T) {
	t.Helper()
	testkit.RequireFuse(t)
	require.NotEmpty(t, copperNode, "TestMain did not build copper-node")
}

// clusterConfig describes the nodes of one test.
type clusterConfig struct {
	nodes  int
	fanout int
	target string   // "" = the default, "/"
	flags  []string // more serve flags
}

// cluster is the copper nodes of one test, all on this host, with their
// book, mounts, logs and control sockets under one scratch directory.
// Its cleanup leaves no process, mount or socket behind, even when the
// test fails: it stops the nodes, and the scratch directory's cleanup
// kills, detaches and aborts what is left.
type cluster struct {
	t          *testing.T
	cfg        clusterConfig
	scratch    *testkit.Scratch
	dir        string // scratch.Dir
	runtimeDir string // XDG_RUNTIME_DIR of every copper-node run
	logDir     string
	jobID      string
	book       string
	token      string // the job token file every node gets (0600)
	endpoints  []string
}

func newCluster(t *testing.T, cfg clusterConfig) *cluster {
	t.Helper()
	requireFuse(t)
	scratch := testkit.NewScratch(t, "copper-e2e-")
	dir := scratch.Dir
	c := &cluster{
		t: t, cfg: cfg, scratch: scratch, dir: dir,
		runtimeDir: filepath.Join(dir, "run"),
		logDir:     filepath.Join(dir, "logs"),
		jobID:      "e2e",
		book:       filepath.Join(dir, "book"),
		token:      filepath.Join(dir, "token"),
	}
	t.Cleanup(c.stopAll) // before the scratch directory's cleanup
	require.NoError(t, os.MkdirAll(c.runtimeDir, 0o700))
	require.NoError(t, os.WriteFile(c.token, []byte(e2eToken+"\n"), 0o600))
	if cfg.nodes > 0 {
		c.endpoints = testkit.FreeAddrs(t, cfg.nodes)
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
		"--book", c.book, "--rank", strconv.Itoa(rank), "--token-file", c.token,
		"--mount", filepath.Join(c.dir, "mnt{rank}"),
		"--log-dir", c.logDir, "--job-id", c.jobID, "--log-level", "4",
		"--fanout", strconv.Itoa(c.cfg.fanout),
		"--max-cacheable-bytes", strconv.Itoa(testMaxCacheable),
		"--cache-memory-bytes", strconv.Itoa(256 << 20),
		"--ready-timeout-s", "20", "--rpc-timeout-s", "20", "--stop-timeout", "10s",
		// Tests that count backend operations must not see a parent
		// dropped by a heartbeat false alarm (make test runs packages
		// at once on few cores); the failover tests and the soak pass
		// the default, 1000, again.
		"--heartbeat-timeout-ms", "5000",
		// Chunk stores under the scratch directory: a node killed by a
		// test cannot remove its own.
		"--spill-dir", filepath.Join(c.dir, "spill"),
	}
	if c.cfg.target != "" {
		args = append(args, "--target", c.cfg.target)
	}
	return append(args, c.cfg.flags...)
}

// result is one finished child process (testkit.Result in the field
// names e2e_test.go uses).
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return testkit.Result{Stdout: r.stdout, Stderr: r.stderr, Code: r.code}.String()
}

// run runs copper-node with the cluster's environment.
func (c *cluster) run(timeout time.Duration, args ...string) (result, error) {
	cmd := exec.Command(copperNode, args...)
	cmd.Env = c.env()
	return runBounded(cmd, timeout)
}

// runBounded is testkit.RunBounded returning a result.
func runBounded(cmd *exec.Cmd, timeout time.Duration) (result, error) {
	r, err := testkit.RunBounded(cmd, timeout)
	return result{stdout: r.Stdout, stderr: r.Stderr, code: r.Code}, err
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
	if m[1] != strconv.Itoa(rank) || m[2] != c.mount(rank) {
		return started{out: r}, fmt.Errorf("start rank %d: ready line names rank %s mount %s, want mount %s", rank, m[1], m[2], c.mount(rank))
	}
	c.scratch.NoteConnections()
	return started{rank: rank, pid: pid, log: m[4], out: r}, nil
}

// startAll starts every rank at once, as a job launcher does: children
// start before their parents serve and must wait for them.
func (c *cluster) startAll() []started {
	c.t.Helper()
	return everyRank(c, c.tryStart)
}

// everyRank runs f for every rank at once and requires all to succeed.
func everyRank[T any](c *cluster, f func(rank int) (T, error)) []T {
	c.t.Helper()
	out := make([]T, c.cfg.nodes)
	errs := make([]error, c.cfg.nodes)
	var wg sync.WaitGroup
	for r := range c.cfg.nodes {
		wg.Go(func() { out[r], errs[r] = f(r) })
	}
	wg.Wait()
	require.NoError(c.t, errors.Join(errs...))
	return out
}

// stop runs `copper-node stop` for rank's mount.
func (c *cluster) stop(rank int) (result, error) {
	return c.run(stopTimeout, "stop", "--mount", c.mount(rank), "--timeout", "15s")
}

// status is `copper-node stats --json`, decoded into the node's own type
// (service.TestStatusJSONKeys pins the keys scripts rely on).
type status service.Status

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
	return everyRank(c, c.walk)
}

// within runs f, which touches a mount from this process, bounded by d.
func within(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	return testkit.Within(t, d, what, f)
}

// processesMentioning lists live processes whose command line names dir.
func processesMentioning(dir string) []int { return osutil.ProcessesMentioning(dir) }

// waitGone waits until pid is no longer a live process of this cluster.
func (c *cluster) waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for osutil.ProcessMentions(pid, c.dir) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// mountsUnder lists the mounts at or below dir, in mountinfo order.
func mountsUnder(t *testing.T, dir string) []osutil.Mount {
	t.Helper()
	ms, err := osutil.MountsUnder(dir)
	require.NoError(t, err)
	return ms
}

// mountsAt counts the mounts stacked at exactly dir.
func mountsAt(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, m := range mountsUnder(t, dir) {
		if m.Point == dir {
			n++
		}
	}
	return n
}

// sockets lists the control sockets in the cluster's runtime directory.
func (c *cluster) sockets() []string {
	socks, _ := filepath.Glob(filepath.Join(c.runtimeDir, "copper", "*.sock"))
	return socks
}

// stopAll stops every node still mounted, at once; the scratch
// directory's cleanup then kills, detaches and aborts what is left.
func (c *cluster) stopAll() {
	c.scratch.NoteConnections()
	var wg sync.WaitGroup
	for r := range c.cfg.nodes {
		if mountsAt(c.t, c.mount(r)) == 0 {
			continue
		}
		wg.Go(func() { _, _ = c.stop(r) })
	}
	wg.Wait()
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
