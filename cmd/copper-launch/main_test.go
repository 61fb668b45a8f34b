package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
)

// Bounds on child processes: the point at which a hang is a failure, not
// a slow machine.
const (
	launchTimeout = 60 * time.Second
	stopTimeout   = 30 * time.Second
)

// binDir holds copper-launch and copper-node, built by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testkit.RunWithBinaries(m, func(dir string) { binDir = dir }, "./cmd/copper-launch", "./cmd/copper-node"))
}

func launcher() string { return filepath.Join(binDir, "copper-launch") }

// job is one test's scratch directory: target, mounts, logs and the
// runtime directory of every process it starts. Its cleanup leaves no
// process, mount or file behind, even when the test fails: it stops the
// nodes, and the scratch directory's cleanup kills, detaches and aborts
// what is left.
type job struct {
	t          *testing.T
	scratch    *testkit.Scratch
	dir        string // scratch.Dir
	target     string
	runtimeDir string
	logDir     string
}

func newJob(t *testing.T) *job {
	t.Helper()
	testkit.RequireFuse(t)
	scratch := testkit.NewScratch(t, "copper-launch-test-")
	dir := scratch.Dir
	j := &job{t: t, scratch: scratch, dir: dir, target: filepath.Join(dir, "target"), runtimeDir: filepath.Join(dir, "run"),
		logDir: filepath.Join(dir, "logs")}
	t.Cleanup(j.stopAll) // before the scratch directory's cleanup
	require.NoError(t, os.MkdirAll(filepath.Join(j.target, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(j.target, "sub", "hello.txt"), []byte("hello from the target\n"), 0o644))
	return j
}

func (j *job) mountTemplate() string { return filepath.Join(j.dir, "m{rank}") }
func (j *job) mount(r int) string    { return filepath.Join(j.dir, "m"+strconv.Itoa(r)) }

// common are the flags every start of the job gets.
func (j *job) common() []string {
	return []string{"--site", "local", "--target", j.target, "--mount", j.mountTemplate(), "--log-dir", j.logDir, "--log-level", "4",
		"--spill-dir", filepath.Join(j.dir, "spill")} // chunk stores die with the test, even a killed node's
}

// home is the job's HOME: the default key_file, ~/.copper/key, is created
// there, never in the real home.
func (j *job) home() string { return filepath.Join(j.dir, "home") }

func (j *job) env() []string {
	env := []string{"XDG_RUNTIME_DIR=" + j.runtimeDir, "HOME=" + j.home()}
	for _, kv := range os.Environ() {
		// A rank or job from an enclosing launcher must not leak in.
		switch name, _, _ := strings.Cut(kv, "="); {
		case name == "XDG_RUNTIME_DIR", name == "HOME", name == "COPPER_NODE_DAEMON", strings.HasPrefix(name, "PMI_"),
			strings.HasPrefix(name, "SLURM_"), strings.HasPrefix(name, "PBS_"), strings.HasPrefix(name, "PALS_"),
			strings.HasPrefix(name, "OMPI_"), strings.HasPrefix(name, "PMIX_"), name == "COPPER_JOB_ID":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// run runs a command of the job, bounded in time.
func (j *job) run(timeout time.Duration, name string, args ...string) testkit.Result {
	j.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = j.env()
	r, err := testkit.RunBounded(cmd, timeout)
	require.NoError(j.t, err, "%s %q: %s", name, args, r)
	j.scratch.NoteConnections()
	return r
}

func (j *job) launch(args ...string) testkit.Result {
	j.t.Helper()
	return j.run(launchTimeout, launcher(), args...)
}

// readThrough reads a file through a mount in a child process, so that a
// hung mount cannot hang the test.
func (j *job) readThrough(path string) string {
	j.t.Helper()
	r := j.run(stopTimeout, "cat", path)
	require.Equal(j.t, 0, r.Code, "cat %s: %s", path, r)
	return r.Stdout
}

// requireNothingLeft checks that no mount and no process of the job remain.
func (j *job) requireNothingLeft() {
	j.t.Helper()
	require.Empty(j.t, j.scratch.Mounts(), "mounts left")
	deadline := time.Now().Add(stopTimeout)
	for len(j.scratch.Processes()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Empty(j.t, j.scratch.Processes(), "processes left")
}

// stopAll stops the node of every mount still there; the scratch
// directory's cleanup then kills, detaches and aborts what is left.
func (j *job) stopAll() {
	j.scratch.NoteConnections()
	for _, m := range j.scratch.Mounts() {
		cmd := exec.Command(filepath.Join(binDir, "copper-node"), "stop", "--mount", m.Point, "--timeout", "10s")
		cmd.Env = j.env()
		_, _ = testkit.RunBounded(cmd, stopTimeout)
	}
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
