// Package slurmtest runs copper-launch under a real Slurm: a private
// single-host cluster (munged, slurmctld, slurmd) that
// scripts/slurm-test-setup.sh installs and starts. One allocation, four
// tasks on this host: `srun copper-launch --foreground &`, then
// `srun --overlap copper-launch wait`, reads through every mount, and
// `srun --overlap copper-launch stop`, the way a Slurm job script uses
// copper. It holds tests only; run it as root (`make test-slurm`).
package slurmtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/testkit"
)

// Bounds on child processes: the point at which a hang is a failure, not
// a slow machine. The whole test stays well under three minutes.
const (
	setupTimeout = 150 * time.Second // includes apt-get install on a fresh machine
	allocTimeout = 45 * time.Second
	stepTimeout  = 60 * time.Second // wait and stop steps
	readTimeout  = 15 * time.Second
	exitTimeout  = 30 * time.Second // the --foreground step, once its nodes stop
	killGrace    = 10 * time.Second
)

// ranks is the number of copper nodes, all on this host.
const ranks = 4

// cluster is what TestMain prepared; written once, before any test runs.
var cluster struct {
	binDir    string // copper-launch and copper-node
	slurmConf string // SLURM_CONF of the private cluster
	setupErr  error  // why the cluster is not there; nil when it is
}

func TestMain(m *testing.M) {
	os.Exit(prepareAndRun(m))
}

func prepareAndRun(m *testing.M) int {
	if os.Geteuid() != 0 {
		return m.Run() // the test skips, saying why
	}
	root, err := testkit.ModuleRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "slurmtest: %v\n", err)
		return 1
	}
	// slurmd execs the binaries as the job's user: a world-readable
	// directory, not a private test temp dir.
	bin, err := os.MkdirTemp("", "copper-slurm-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "slurmtest: %v\n", err)
		return 1
	}
	defer os.RemoveAll(bin)
	if err := os.Chmod(bin, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "slurmtest: %v\n", err)
		return 1
	}
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/copper-launch", "./cmd/copper-node")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "slurmtest: go build in %s: %v\n%s", root, err, out)
		return 1
	}
	cluster.binDir = bin

	script := filepath.Join(root, "scripts", "slurm-test-setup.sh")
	out, err := runSetup(script)
	started := ""
	if err == nil {
		cluster.slurmConf, started, err = parseSetup(out)
	}
	cluster.setupErr = err
	code := m.Run()
	if started != "" {
		// Only the daemons this run started: a cluster someone else
		// brought up stays up.
		if out, err := runSetup(script, "--stop"); err != nil {
			fmt.Fprintf(os.Stderr, "slurmtest: stopping the Slurm daemons this run started (%s): %v\n%s", started, err, out)
		}
	}
	return code
}

// runSetup runs the setup script, bounded; the error carries its output.
func runSetup(script string, args ...string) (string, error) {
	cmd := exec.Command(script, args...)
	cmd.Env = scrubbedEnv()
	r, err := runBounded(cmd, setupTimeout)
	if err == nil && r.code != 0 {
		err = fmt.Errorf("exit %d", r.code)
	}
	if err != nil {
		return r.stdout, fmt.Errorf("%s: %w\n%s", strings.Join(append([]string{script}, args...), " "), err, r.stderr)
	}
	return r.stdout, nil
}

// parseSetup reads the script's SLURM_CONF= and STARTED= lines.
func parseSetup(out string) (conf, started string, err error) {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "SLURM_CONF="); ok {
			conf = v
		}
		if v, ok := strings.CutPrefix(line, "STARTED="); ok {
			started = v
		}
	}
	if conf == "" {
		return "", started, fmt.Errorf("slurm-test-setup.sh printed no SLURM_CONF= line; stdout:\n%s", out)
	}
	return conf, started, nil
}

// requireCluster skips without root (Slurm daemons, FUSE mounts) and
// fails, never skips, when the cluster could not be set up.
func requireCluster(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to run slurmctld/slurmd and mount FUSE (euid %d); run `make test-slurm` as root", os.Geteuid())
	}
	require.NoError(t, cluster.setupErr, "the single-host Slurm cluster could not be set up")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("/dev/fuse: %v: this test mounts FUSE; run scripts/setup-test-deps.sh", err)
	}
}

// TestSrunForegroundWaitReadStop is the Slurm job script of the README,
// for real: four nodes started by one srun step in the background, a
// second step that returns once they are ready, reads through each
// mount, and a third step that stops them, which ends the first.
func TestSrunForegroundWaitReadStop(t *testing.T) {
	requireCluster(t)
	j := newJob(t)
	files := j.writeTarget()

	jobID := j.allocate()
	step := j.srunArgs(jobID, false)
	start := j.startBackground(append(step, j.launcher(), "--site", "local", "--target", j.target,
		"--mount", j.mountTemplate(), "--log-dir", j.logDir, "--log-level", "4",
		"--bootstrap-port", strconv.Itoa(freePort(t)), "--foreground")...)

	// Started at once, as in a job script: wait must itself cover the
	// nodes not having started yet.
	overlap := j.srunArgs(jobID, true)
	wait := j.run(stepTimeout, "srun", append(overlap, j.launcher(), "wait", "--site", "local",
		"--mount", j.mountTemplate(), "--timeout", "45s")...)
	require.Equal(t, 0, wait.code, "srun copper-launch wait: %s\nstart step so far: %s", wait, start.snapshot())

	// wait returned 0: every node is tree-ready, so every mount serves.
	mounted := j.fuseMountPoints()
	for r := range ranks {
		require.Contains(t, mounted, j.mount(r), "rank %d not mounted after wait returned 0 (mounts: %v)", r, mounted)
	}
	for r := range ranks {
		for rel, want := range files {
			got := j.readThrough(filepath.Join(j.mount(r), rel))
			require.Equal(t, want, got, "rank %d: %s differs from the target", r, rel)
		}
		link := j.run(readTimeout, "readlink", filepath.Join(j.mount(r), "link"))
		require.Equal(t, 0, link.code, "readlink through rank %d: %s", r, link)
		require.Equal(t, "sub/hello.txt\n", link.stdout, "rank %d: link target", r)
		ls := j.run(readTimeout, "ls", "-1A", filepath.Join(j.mount(r), "sub"))
		require.Equal(t, 0, ls.code, "ls through rank %d: %s", r, ls)
		require.Equal(t, "empty\nhello.txt\n", ls.stdout, "rank %d: listing of sub", r)
	}
	j.requireJobRecords(jobID)

	stop := j.run(stepTimeout, "srun", append(overlap, j.launcher(), "stop", "--site", "local",
		"--mount", j.mountTemplate(), "--timeout", "30s")...)
	require.Equal(t, 0, stop.code, "srun copper-launch stop: %s", stop)

	res, err := start.wait(exitTimeout)
	require.NoError(t, err, "the --foreground step did not end after stop: %s", res)
	require.Equal(t, 0, res.code, "the --foreground step: %s", res)
	// The launcher found its rank and nodes in Slurm's environment.
	require.Contains(t, res.stderr, "source=SLURM_PROCID/SLURM_NTASKS", "start step: %s", res)
	require.Contains(t, res.stderr, "source=SLURM_STEP_NODELIST", "start step: %s", res)

	j.requireNothingLeft()
	left, err := filepath.Glob(filepath.Join(j.runtimeDir, "copper", "*.book"))
	require.NoError(t, err)
	tokens, err := filepath.Glob(filepath.Join(j.runtimeDir, "copper", "*.token"))
	require.NoError(t, err)
	require.Empty(t, append(left, tokens...), "book or token copies the foreground nodes left behind")
}

// TestSrunFailedStartEndsWait is the Slurm job script's failed start, for
// real: the background --foreground step fails at once (an interface that
// does not exist), and the wait step beside it returns at once, non-zero,
// with each rank's reason, instead of waiting out its --timeout (5m here,
// against a step bound of stepTimeout).
func TestSrunFailedStartEndsWait(t *testing.T) {
	requireCluster(t)
	j := newJob(t)
	j.writeTarget()

	jobID := j.allocate()
	step := j.srunArgs(jobID, false)
	start := j.startBackground(append(step, j.launcher(), "--site", "local", "--target", j.target,
		"--mount", j.mountTemplate(), "--log-dir", j.logDir, "--interface", "nosuch0",
		"--bootstrap-port", strconv.Itoa(freePort(t)), "--foreground")...)

	overlap := append(j.srunArgs(jobID, true), "--kill-on-bad-exit=1")
	wait := j.run(stepTimeout, "srun", append(overlap, j.launcher(), "wait", "--site", "local",
		"--mount", j.mountTemplate(), "--timeout", "5m")...)
	require.NotEqual(t, 0, wait.code, "srun copper-launch wait: %s\nstart step: %s", wait, start.snapshot())
	require.Contains(t, wait.stderr, "failed to start: rank ", "wait: %s", wait)
	require.Contains(t, wait.stderr, "job "+jobID+" (copper-launch pid", "the record names the Slurm job: %s", wait)
	require.Contains(t, wait.stderr, `interface "nosuch0"`, "wait: %s", wait)

	res, err := start.wait(exitTimeout)
	require.NoError(t, err, "the failed --foreground step did not end: %s", res)
	require.NotEqual(t, 0, res.code, "the --foreground step failed: %s", res)

	// The job's stop removes the records; nothing was started, so nothing is left.
	stop := j.run(stepTimeout, "srun", append(j.srunArgs(jobID, true), j.launcher(), "stop", "--site", "local",
		"--mount", j.mountTemplate(), "--timeout", "30s")...)
	require.Equal(t, 0, stop.code, "srun copper-launch stop: %s", stop)
	failed, err := filepath.Glob(filepath.Join(j.runtimeDir, "copper", "*.failed"))
	require.NoError(t, err)
	require.Empty(t, failed, "start-failure records left after the stop")
	j.requireNothingLeft()
}

// TestSrunPMI2Bootstrap: under srun --mpi=pmi2 with no node list in the
// tasks' environment and no --bootstrap, rank 0 publishes its all-gather
// address through Slurm's PMI server (the PMI-1 wire over PMI_FD, which
// the mpi/pmi2 plugin serves) and the others read it there. Otherwise the
// job script of TestSrunForegroundWaitReadStop: start in the background
// with --foreground, wait, read, stop.
func TestSrunPMI2Bootstrap(t *testing.T) {
	requireCluster(t)
	j := newJob(t)
	files := j.writeTarget()
	list := j.run(stepTimeout, "srun", "--mpi=list")
	require.Contains(t, list.stdout+list.stderr, "pmi2", "this Slurm has no mpi/pmi2 plugin (Debian: slurm-wlm-basic-plugins): %s", list)

	jobID := j.allocate()
	step := append([]string{"--mpi=pmi2"}, j.srunArgs(jobID, false)...)
	// env -u: the tasks see no node list, so only PMI can say where rank 0 is.
	start := j.startBackground(append(step, "env", "-u", "SLURM_STEP_NODELIST", "-u", "SLURM_JOB_NODELIST", "-u", "SLURM_NODELIST",
		j.launcher(), "--site", "local", "--target", j.target, "--mount", j.mountTemplate(), "--log-dir", j.logDir,
		"--log-level", "4", "--interface", "lo", "--foreground")...)

	overlap := j.srunArgs(jobID, true)
	wait := j.run(stepTimeout, "srun", append(overlap, j.launcher(), "wait", "--site", "local",
		"--mount", j.mountTemplate(), "--timeout", "45s")...)
	require.Equal(t, 0, wait.code, "srun copper-launch wait: %s\nstart step so far: %s", wait, start.snapshot())
	for r := range ranks {
		for rel, want := range files {
			require.Equal(t, want, j.readThrough(filepath.Join(j.mount(r), rel)), "rank %d: %s differs from the target", r, rel)
		}
	}
	logs := filepath.Join(j.jobDir(jobID), "logs")
	book, err := os.ReadFile(filepath.Join(logs, "copper_address_book.txt"))
	require.NoError(t, err, "job directory named after SLURM_JOB_ID=%s", jobID)
	require.Len(t, strings.Split(strings.TrimSpace(string(book)), "\n"), ranks, "address book:\n%s", book)
	full, err := os.ReadFile(filepath.Join(logs, "copper_address_book_full_output.txt"))
	require.NoError(t, err)
	require.Contains(t, string(full), "(from PMI (PMI_FD=", "the record says rank 0's address came through PMI")

	stop := j.run(stepTimeout, "srun", append(overlap, j.launcher(), "stop", "--site", "local",
		"--mount", j.mountTemplate(), "--timeout", "30s")...)
	require.Equal(t, 0, stop.code, "srun copper-launch stop: %s", stop)
	res, err := start.wait(exitTimeout)
	require.NoError(t, err, "the --foreground step did not end after stop: %s", res)
	require.Equal(t, 0, res.code, "the --foreground step: %s", res)
	require.Equal(t, ranks, strings.Count(res.stderr, `bootstrap_from="PMI (PMI_FD=`), "every rank found rank 0 through PMI: %s", res)
	require.NotContains(t, res.stderr, "copper-launch: node list", "the tasks saw no node list: %s", res)
	j.requireNothingLeft()
}

// job is one test's directory: target, mounts, logs and the runtime
// directory (control sockets) of every process it starts, and its Slurm
// allocation. Its cleanup leaves no allocation, process, mount or file
// behind, even when the test fails.
type job struct {
	t          *testing.T
	dir        string
	target     string
	runtimeDir string
	logDir     string

	mu        sync.Mutex
	conns     map[uint32]bool // FUSE connection ids of our mounts
	jobID     string          // "" until allocated
	bg        []*background
	hostShort string
}

func newJob(t *testing.T) *job {
	t.Helper()
	// Not t.TempDir: its removal would descend into a mount left behind.
	// World-searchable: slurmstepd starts the tasks in it.
	dir, err := os.MkdirTemp("", "copper-slurm-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	host, err := os.Hostname()
	require.NoError(t, err)
	host, _, _ = strings.Cut(host, ".")
	j := &job{t: t, dir: dir, target: filepath.Join(dir, "target"), runtimeDir: filepath.Join(dir, "run"),
		logDir: filepath.Join(dir, "logs"), conns: map[uint32]bool{}, hostShort: host}
	t.Cleanup(j.teardown)
	require.NoError(t, os.MkdirAll(j.runtimeDir, 0o700))
	return j
}

func (j *job) launcher() string        { return filepath.Join(cluster.binDir, "copper-launch") }
func (j *job) mountTemplate() string   { return filepath.Join(j.dir, "m{rank}") }
func (j *job) mount(r int) string      { return filepath.Join(j.dir, "m"+strconv.Itoa(r)) }
func (j *job) jobDir(id string) string { return filepath.Join(j.logDir, id) }

// writeTarget fills the target tree and returns its regular files by
// relative path with their contents.
func (j *job) writeTarget() map[string]string {
	j.t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	blob := make([]byte, 300<<10) // several FUSE reads
	for i := range blob {
		blob[i] = byte(rng.Uint32())
	}
	files := map[string]string{
		"sub/hello.txt":     "hello from the target\n",
		"sub/empty":         "",
		"deep/a/b/c/d.txt":  "four levels down\n",
		"lib/libfake.so.1":  string(blob),
		"top-level-file.py": "print('through copper')\n",
	}
	for rel, data := range files {
		p := filepath.Join(j.target, rel)
		require.NoError(j.t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(j.t, os.WriteFile(p, []byte(data), 0o644))
	}
	require.NoError(j.t, os.Symlink("sub/hello.txt", filepath.Join(j.target, "link")))
	return files
}

// env is the environment of every command: the test's, less anything an
// enclosing launcher or job set (srun would join that job), plus the
// private cluster's config, the job's runtime directory and a HOME in the
// job's directory (the default key_file, ~/.copper/key, is created there;
// the last HOME in the list wins).
func (j *job) env() []string {
	return append(scrubbedEnv(), "SLURM_CONF="+cluster.slurmConf, "XDG_RUNTIME_DIR="+j.runtimeDir,
		"HOME="+filepath.Join(j.dir, "home"))
}

func scrubbedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); {
		case name == "XDG_RUNTIME_DIR", name == "COPPER_NODE_DAEMON", name == "COPPER_JOB_ID",
			strings.HasPrefix(name, "SLURM_"), strings.HasPrefix(name, "SALLOC_"), strings.HasPrefix(name, "SRUN_"),
			strings.HasPrefix(name, "SBATCH_"), strings.HasPrefix(name, "PMI_"), strings.HasPrefix(name, "PBS_"),
			strings.HasPrefix(name, "PALS_"), strings.HasPrefix(name, "OMPI_"), strings.HasPrefix(name, "PMIX_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

var grantedRE = regexp.MustCompile(`Granted job allocation (\d+)`)

// allocate makes the job's allocation: one node, four tasks. Every step
// then runs in it (srun --jobid), so all share SLURM_JOB_ID and so the
// job directory, as the steps of one job script do. Four tasks on a host
// with fewer CPUs need --overcommit; copper nodes are mostly idle
// daemons. --time bounds an allocation a killed test leaves behind.
func (j *job) allocate() string {
	j.t.Helper()
	r := j.run(allocTimeout, "salloc", "--nodes=1", "--ntasks="+strconv.Itoa(ranks), "--overcommit",
		"--no-shell", "--immediate=30", "--time=5", "--job-name=copper-slurmtest")
	m := grantedRE.FindStringSubmatch(r.stderr)
	require.Equal(j.t, 0, r.code, "salloc: %s", r)
	require.NotNil(j.t, m, "salloc granted no allocation: %s", r)
	j.mu.Lock()
	j.jobID = m[1]
	j.mu.Unlock()
	return m[1]
}

// srunArgs are the srun options of one step of the job: all tasks on the
// one node, labelled output, started in the job's directory; overlap lets
// a step share the CPUs of the running --foreground step.
func (j *job) srunArgs(jobID string, overlap bool) []string {
	args := []string{"--jobid=" + jobID, "--nodes=1", "--ntasks=" + strconv.Itoa(ranks), "--overcommit",
		"--label", "--chdir=" + j.dir}
	if overlap {
		args = append(args, "--overlap")
	}
	return args
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

// readThrough reads a file through a mount in a child process, so that a
// hung mount cannot hang the test.
func (j *job) readThrough(path string) string {
	j.t.Helper()
	r := j.run(readTimeout, "cat", path)
	require.Equal(j.t, 0, r.code, "cat %s: %s", path, r)
	return r.stdout
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

// background is a command the test does not wait for at once: the
// `srun ... --foreground &` of a job script.
type background struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // set before done is closed
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (j *job) startBackground(args ...string) *background {
	j.t.Helper()
	b := &background{cmd: exec.Command("srun", args...), done: make(chan struct{})}
	b.cmd.Env = j.env()
	b.cmd.Stdout = lockedWriter{&b.mu, &b.stdout}
	b.cmd.Stderr = lockedWriter{&b.mu, &b.stderr}
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.cmd.WaitDelay = time.Second
	require.NoError(j.t, b.cmd.Start(), "srun %q", args)
	j.mu.Lock()
	j.bg = append(j.bg, b)
	j.mu.Unlock()
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	return b
}

func (b *background) snapshot() result {
	b.mu.Lock()
	defer b.mu.Unlock()
	code := -1 // still running
	select {
	case <-b.done:
		code = b.cmd.ProcessState.ExitCode()
	default:
	}
	return result{stdout: b.stdout.String(), stderr: b.stderr.String(), code: code}
}

// wait waits up to timeout for the command to exit.
func (b *background) wait(timeout time.Duration) (result, error) {
	select {
	case <-b.done:
	case <-time.After(timeout):
		return b.snapshot(), fmt.Errorf("still running after %v", timeout)
	}
	var exit *exec.ExitError
	if b.err != nil && !errors.As(b.err, &exit) {
		return b.snapshot(), b.err
	}
	return b.snapshot(), nil
}

// kill ends the command's process group and waits for it, bounded.
func (b *background) kill() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-b.done:
	case <-time.After(killGrace):
	}
}

// requireJobRecords checks what rank 0 wrote in the job directory, which
// is named after the Slurm job id because every step saw the same one.
func (j *job) requireJobRecords(jobID string) {
	j.t.Helper()
	logs := filepath.Join(j.jobDir(jobID), "logs")
	nodes, err := os.ReadFile(filepath.Join(logs, "node_file.txt"))
	require.NoError(j.t, err, "job directory named after SLURM_JOB_ID=%s", jobID)
	require.Equal(j.t, j.hostShort+"\n", string(nodes), "node_file.txt from SLURM_STEP_NODELIST")
	book, err := os.ReadFile(filepath.Join(logs, "copper_address_book.txt"))
	require.NoError(j.t, err)
	lines := strings.Split(strings.TrimSpace(string(book)), "\n")
	require.Len(j.t, lines, ranks, "address book:\n%s", book)
	for r, line := range lines {
		require.True(j.t, strings.HasPrefix(line, j.hostShort+" "), "address book rank %d: %q", r, line)
	}
	full, err := os.ReadFile(filepath.Join(logs, "copper_address_book_full_output.txt"))
	require.NoError(j.t, err)
	require.Contains(j.t, string(full), fmt.Sprintf("job %s, %d ranks, source discover", jobID, ranks))
	outputs, err := filepath.Glob(filepath.Join(logs, "*-output.log"))
	require.NoError(j.t, err)
	require.Len(j.t, outputs, ranks, "one output log per node")
}

// freePort returns a port that was free on every interface a moment ago:
// rank 0 serves the all-gather there.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// processes lists live processes whose command line names the job's dir:
// the srun steps and the copper nodes slurmstepd started.
func (j *job) processes() []int { return osutil.ProcessesMentioning(j.dir) }

// mounts lists the mounts at or below the job's dir.
func (j *job) mounts() []osutil.Mount {
	ms, err := osutil.MountsUnder(j.dir)
	require.NoError(j.t, err)
	return ms
}

func (j *job) fuseMountPoints() []string {
	var out []string
	for _, m := range j.mounts() {
		if m.IsFUSE() {
			out = append(out, m.Point)
		}
	}
	slices.Sort(out)
	return out
}

func (j *job) noteConnections() {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, m := range j.mounts() {
		if m.IsFUSE() {
			j.conns[m.Minor] = true
		}
	}
}

// requireNothingLeft checks that no mount and no process of the job remain.
func (j *job) requireNothingLeft() {
	j.t.Helper()
	require.Empty(j.t, j.mounts(), "mounts left")
	deadline := time.Now().Add(exitTimeout)
	for len(j.processes()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Empty(j.t, j.processes(), "processes left")
}

// teardown ends the allocation (Slurm sends its tasks SIGTERM, on which a
// copper node unmounts and exits), stops what is left, kills what does
// not stop, detaches mounts, aborts FUSE connections still holding
// requests, and removes the dir.
func (j *job) teardown() {
	t := j.t
	j.noteConnections()
	j.mu.Lock()
	jobID, bg := j.jobID, j.bg
	j.mu.Unlock()
	if jobID != "" {
		cmd := exec.Command("scancel", jobID)
		cmd.Env = j.env()
		if r, err := runBounded(cmd, allocTimeout); err != nil || r.code != 0 {
			t.Logf("teardown: scancel %s: %v %s", jobID, err, r)
		}
	}
	for _, b := range bg {
		if _, err := b.wait(exitTimeout); err != nil {
			t.Logf("teardown: srun still running after scancel: %v; killing it", err)
			b.kill()
		}
	}
	for _, m := range j.mounts() {
		cmd := exec.Command(filepath.Join(cluster.binDir, "copper-node"), "stop", "--mount", m.Point, "--timeout", "10s")
		cmd.Env = j.env()
		_, _ = runBounded(cmd, exitTimeout)
	}
	for _, pid := range j.processes() {
		t.Logf("teardown: SIGKILL pid %d, still alive after stop", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	detachErr := testkit.DetachMountsUnder(j.dir)
	j.abortStuckConnections()
	if detachErr != nil {
		t.Errorf("teardown: %v; not removing %s", detachErr, j.dir)
		return
	}
	if err := os.RemoveAll(j.dir); err != nil {
		t.Errorf("teardown: %v", err)
	}
}

func (j *job) abortStuckConnections() {
	j.mu.Lock()
	defer j.mu.Unlock()
	testkit.AbortStuckConnections(j.t, j.conns)
}
