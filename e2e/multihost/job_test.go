package multihost

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
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
	"github.com/hpc-copper/copper/internal/testkit/hosts"
	"github.com/hpc-copper/copper/service"
)

// Bounds on child processes: the point at which a hang is a failure, not
// a slow machine. None is a speed claim.
const (
	launchBound = 60 * time.Second
	ctlBound    = 30 * time.Second
	readBound   = 30 * time.Second
)

// job is one copper job across the hosts of a hosts.Net: a shared backing
// tree, the job's key and records in the shared directory, and per host
// a mount point and a runtime directory of its own.
type job struct {
	t       *testing.T
	nw      *hosts.Net
	scratch *testkit.Scratch
	dir     string
	target  string // the backing tree every host sees
	logDir  string // log_dir: the job's records
	key     string
	id      string
}

// newJob makes hosts sharing a fresh directory. Its cleanup stops every
// node still mounted, before the hosts and the directory are removed.
func newJob(t *testing.T, hostsN int, id string) *job {
	t.Helper()
	testkit.RequireFuse(t)
	require.NotEmpty(t, copperLaunch, "TestMain did not build copper-launch")
	scratch := testkit.NewScratch(t, "copper-multihost-")
	j := &job{t: t, scratch: scratch, dir: scratch.Dir, id: id,
		target: filepath.Join(scratch.Dir, "shared"),
		logDir: filepath.Join(scratch.Dir, "jobs"),
		key:    filepath.Join(scratch.Dir, "key")}
	require.NoError(t, os.MkdirAll(j.target, 0o755))
	j.nw = hosts.New(t, hostsN, scratch.Dir)
	t.Cleanup(j.stopAll) // runs before the hosts' and the scratch's cleanups
	for _, h := range j.nw.Hosts {
		require.NoError(t, os.MkdirAll(j.mount(h.Index), 0o755))
		require.NoError(t, os.MkdirAll(j.runtime(h.Index), 0o700))
	}
	return j
}

func (j *job) mount(i int) string   { return filepath.Join(j.dir, "mnt", j.nw.Hosts[i].Hostname) }
func (j *job) runtime(i int) string { return filepath.Join(j.dir, "run", j.nw.Hosts[i].Hostname) }

// launcherVars are the variables of the test process a launcher on a host
// must not inherit: the test's own MPI, Slurm or PBS job, runtime dir.
var launcherVars = regexp.MustCompile(`^(PMI_|PMIX_|PALS_|OMPI_|SLURM_|PBS_|XDG_RUNTIME_DIR=|COPPER_)`)

// env is host i's environment: the test's, less any launcher's, plus
// extra (what mpiexec or srun would set) and the host's runtime dir.
func (j *job) env(i int, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !launcherVars.MatchString(kv) {
			env = append(env, kv)
		}
	}
	env = append(env, "XDG_RUNTIME_DIR="+j.runtime(i))
	return append(env, extra...)
}

// mpiEnv is what MPICH's Hydra gives rank i of n, with a PBS node file.
func (j *job) mpiEnv(i int) []string {
	nodefile := filepath.Join(j.dir, "nodefile")
	if _, err := os.Stat(nodefile); err != nil {
		require.NoError(j.t, os.WriteFile(nodefile, []byte(strings.Join(j.nw.Hostnames(), "\n")+"\n"), 0o644))
	}
	n := len(j.nw.Hosts)
	return []string{"PMI_RANK=" + strconv.Itoa(i), "PMI_SIZE=" + strconv.Itoa(n), "PBS_NODEFILE=" + nodefile}
}

// slurmEnv is what srun gives task i of n, with the Slurm hostlist.
func (j *job) slurmEnv(i int) []string {
	n := len(j.nw.Hosts)
	return []string{"SLURM_PROCID=" + strconv.Itoa(i), "SLURM_NTASKS=" + strconv.Itoa(n),
		"SLURM_NNODES=" + strconv.Itoa(n), fmt.Sprintf("SLURM_JOB_NODELIST=nid[00000-%05d]", n-1),
		"SLURM_JOB_ID=" + j.id}
}

// baseArgs are the settings every launcher of the job gets: short
// timeouts so a failure shows in seconds, a small cache, fan-out 2 (with
// four hosts: 0 → 1, 2; 1 → 3). Small files do not ride with their
// directory (dir_files_max_bytes 0): the failover checks count one
// filesystem read per file read, and a file shipped with the directory
// would already be held when the link goes down.
func (j *job) baseArgs(i int) []string {
	return []string{
		"--site", "local", "--target", j.target, "--mount", j.mount(i),
		"--log-dir", j.logDir, "--key-file", j.key, "--job-id", j.id, "--log-level", "4",
		"--fanout", "2", "--cache-memory-bytes", strconv.Itoa(64 << 20),
		"--ready-timeout-s", "30", "--rpc-timeout-s", "20", "--bootstrap-timeout-s", "20",
		"--heartbeat-timeout-ms", "1000", "--dir-files-max-bytes", "0",
	}
}

// launch runs copper-launch on host i with env and args, as the job
// launcher would, and returns how it ended.
func (j *job) launch(i int, env []string, args ...string) (testkit.Result, error) {
	cmd := j.nw.Hosts[i].Command(copperLaunch, args...)
	cmd.Env = env
	r, err := testkit.RunBounded(cmd, launchBound)
	j.scratch.NoteConnections()
	return r, err
}

// launchAll starts the ranks at once, one per host (as mpiexec -ppn 1
// does) and returns each one's result.
func (j *job) launchAll(ranks []int, envOf func(i int) []string, argsOf func(i int) []string) []testkit.Result {
	j.t.Helper()
	out := make([]testkit.Result, len(ranks))
	errs := make([]error, len(ranks))
	var wg sync.WaitGroup
	for k, i := range ranks {
		wg.Go(func() { out[k], errs[k] = j.launch(i, envOf(i), argsOf(i)...) })
	}
	wg.Wait()
	for k, err := range errs {
		require.NoError(j.t, err, "launcher on %s", j.nw.Hosts[ranks[k]].Hostname)
	}
	return out
}

// requireStarted requires every launch to have succeeded.
func (j *job) requireStarted(results []testkit.Result) {
	j.t.Helper()
	for i, r := range results {
		require.Zero(j.t, r.Code, "copper-launch on %s: %s", j.nw.Hosts[i].Hostname, r)
	}
}

// ctl runs `copper-launch CMD --mount M` for host i on that host.
func (j *job) ctl(i int, cmd string, more ...string) testkit.Result {
	j.t.Helper()
	c := j.nw.Hosts[i].Command(copperLaunch, append([]string{cmd, "--site", "local", "--mount", j.mount(i), "--timeout", "20s"}, more...)...)
	c.Env = j.env(i)
	r, err := testkit.RunBounded(c, ctlBound)
	require.NoError(j.t, err)
	return r
}

// stats is host i's node status.
func (j *job) stats(i int) service.Status {
	j.t.Helper()
	c := j.nw.Hosts[i].Command(copperNode, "stats", "--mount", j.mount(i), "--json")
	c.Env = j.env(i)
	r, err := testkit.RunBounded(c, ctlBound)
	require.NoError(j.t, err)
	require.Zero(j.t, r.Code, "stats of %s: %s", j.nw.Hosts[i].Hostname, r)
	var st service.Status
	require.NoError(j.t, json.Unmarshal([]byte(r.Stdout), &st), "stats JSON of %s: %s", j.nw.Hosts[i].Hostname, r.Stdout)
	return st
}

// stopAll stops every node still mounted, all at once.
func (j *job) stopAll() {
	var wg sync.WaitGroup
	for _, h := range j.nw.Hosts {
		ms, _ := osutil.MountsUnder(j.mount(h.Index))
		if len(ms) == 0 {
			continue
		}
		wg.Go(func() {
			c := h.Command(copperLaunch, "stop", "--site", "local", "--mount", j.mount(h.Index), "--timeout", "15s")
			c.Env = j.env(h.Index)
			_, _ = testkit.RunBounded(c, ctlBound)
		})
	}
	wg.Wait()
}

// writeFile puts size random bytes at the backing path rel and returns
// their SHA-256.
func (j *job) writeFile(rel string, size int) string {
	j.t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(j.target, rel)
	require.NoError(j.t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(j.t, os.WriteFile(p, b, 0o644))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// read reads rel through host i's mount, on that host, and returns the
// SHA-256 of what it got and how long the read took.
func (j *job) read(i int, rel string) (string, time.Duration, error) {
	p := filepath.Join(j.mount(i), rel)
	c := j.nw.Hosts[i].Command("sha256sum", p)
	c.Env = j.env(i)
	start := time.Now()
	r, err := testkit.RunBounded(c, readBound)
	took := time.Since(start)
	if err != nil {
		return "", took, err
	}
	if r.Code != 0 {
		return "", took, fmt.Errorf("sha256sum %s on %s: %s", p, j.nw.Hosts[i].Hostname, r)
	}
	f := strings.Fields(r.Stdout)
	if len(f) == 0 {
		return "", took, fmt.Errorf("sha256sum %s: no output", p)
	}
	return f[0], took, nil
}

// requireClean requires that nothing of the job is left: no mount below
// its directory but the directory's own shared bind, no process naming
// it.
func (j *job) requireClean() {
	j.t.Helper()
	for _, m := range j.scratch.Mounts() {
		require.Equal(j.t, j.dir, m.Point, "mount left below the job's directory")
	}
	require.Empty(j.t, j.scratch.Processes(), "processes naming %s left", j.dir)
}

// writeText writes a test input file.
func writeText(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}
