package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/book"
	"github.com/hpc-copper/copper/internal/testkit"
)

// firstCPU is a CPU this process may run on, for service_cores.
func firstCPU(t *testing.T) int {
	t.Helper()
	var set unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &set))
	for c := range 1024 {
		if set.IsSet(c) {
			return c
		}
	}
	t.Fatal("no CPU in this process's affinity")
	return -1
}

func cpusAllowed(t *testing.T, pid int) string {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Cpus_allowed_list for pid %d", pid)
	return ""
}

type nodeStatus struct {
	Mount string `json:"mount"`
	PID   int    `json:"pid"`
	Node  struct {
		Rank      int  `json:"rank"`
		TreeReady bool `json:"tree_ready"`
	} `json:"node"`
}

// statsJSON runs `copper-launch stats --json` with args and decodes one
// status per line.
func (j *job) statsJSON(args ...string) []nodeStatus {
	j.t.Helper()
	r := j.launch(append([]string{"stats", "--json", "--mount", j.mountTemplate()}, args...)...)
	require.Equal(j.t, 0, r.Code, "stats: %s", r)
	var out []nodeStatus
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	for dec.More() {
		var st nodeStatus
		require.NoError(j.t, dec.Decode(&st))
		out = append(out, st)
	}
	return out
}

func TestLocalFourServeAndStop(t *testing.T) {
	j := newJob(t)
	cpu := firstCPU(t)
	args := append(j.common(), "--local", "4", "--job-id", "local4", "--service-cores", fmt.Sprintf("%d,4000", cpu))
	r := j.launch(args...)
	require.Equal(t, 0, r.Code, "launch: %s", r)
	assert.Contains(t, r.Stdout, "4 local ranks tree-ready, job local4")
	assert.Contains(t, r.Stderr, "service_cores not available on this node, skipped", "CPU 4000 does not exist")
	pids := readyPIDs(t, r.Stdout)
	require.Len(t, pids, 4, "one ready line per rank: %s", r)
	// The four ranks raced to create the default key; one file, private.
	fi, err := os.Stat(filepath.Join(j.home(), ".copper", "key"))
	require.NoError(t, err, "key_file created at ~/.copper/key")
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.EqualValues(t, 32, fi.Size())
	di, err := os.Stat(filepath.Join(j.home(), ".copper"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	logs := filepath.Join(j.logDir, "local4", "logs")
	entries, err := book.Read(filepath.Join(logs, "copper_address_book.txt"))
	require.NoError(t, err)
	require.Len(t, entries, 4)
	for _, e := range entries {
		assert.True(t, strings.HasPrefix(e.Endpoint, "127.0.0.1:"), "loopback endpoint: %s", e.Endpoint)
	}
	assert.FileExists(t, filepath.Join(logs, "copper_address_book_full_output.txt"))
	assert.FileExists(t, filepath.Join(logs, "node_file.txt"))
	for _, sub := range []string{"tables", "profiling"} {
		assert.DirExists(t, filepath.Join(j.logDir, "local4", sub))
	}
	assert.Empty(t, j.privateLeftovers(), "book and token copies are removed once the nodes have read them")

	for rk := range 4 {
		assert.Equal(t, "hello from the target\n", j.readThrough(filepath.Join(j.mount(rk), "sub", "hello.txt")), "rank %d", rk)
		assert.Equal(t, strconv.Itoa(cpu), cpusAllowed(t, pids[rk]), "rank %d's node is pinned", rk)
	}

	sts := j.statsJSON("--local", "4")
	require.Len(t, sts, 4)
	for rk, st := range sts {
		assert.Equal(t, rk, st.Node.Rank)
		assert.True(t, st.Node.TreeReady)
		assert.Equal(t, j.mount(rk), st.Mount)
		assert.Equal(t, pids[rk], st.PID)
	}
	w := j.launch("wait", "--mount", j.mountTemplate(), "--rank", "3", "--timeout", "20s")
	require.Equal(t, 0, w.Code, "wait: %s", w)

	s := j.run(stopTimeout+10*time.Second, launcher(), "stop", "--mount", j.mountTemplate(), "--local", "4", "--timeout", "20s")
	require.Equal(t, 0, s.Code, "stop: %s", s)
	j.requireNothingLeft()
	socks, _ := filepath.Glob(filepath.Join(j.runtimeDir, "copper", "*.sock"))
	assert.Empty(t, socks, "control sockets left")
	locks, _ := filepath.Glob(filepath.Join(j.runtimeDir, "copper", "*.lock"))
	assert.Empty(t, locks, "mount and job directory locks are removed by their last holder")

	again := j.launch("stop", "--mount", j.mountTemplate(), "--local", "4")
	assert.Equal(t, 0, again.Code, "stopping nothing is not an error: %s", again)
}

// TestMPI runs the launcher the way a job does: one process per rank
// under MPICH's mpiexec, which sets PMI_RANK and PMI_SIZE. It names
// MPICH's own command, not `mpiexec`: with Open MPI installed too, the
// machine's alternatives may point `mpiexec` at Open MPI (which refuses
// root), and those alternatives are the machine owner's, not ours.
func TestMPI(t *testing.T) {
	mpiexec, err := exec.LookPath("mpiexec.mpich")
	if err != nil {
		t.Fatalf("mpiexec.mpich not found (%v): run scripts/setup-test-deps.sh (Debian package mpich)", err)
	}
	j := newJob(t)
	args := append([]string{"-n", "4", launcher()}, j.common()...)
	args = append(args, "--bootstrap", testkit.FreeAddr(t), "--interface", "lo")
	r := j.run(launchTimeout, mpiexec, args...)
	require.Equal(t, 0, r.Code, "mpiexec copper-launch: %s", r)
	require.Len(t, readyPIDs(t, r.Stdout), 4, "%s", r)
	for rk := range 4 {
		assert.Contains(t, r.Stderr, fmt.Sprintf("identity\" rank=%d size=4 source=PMI_RANK/PMI_SIZE", rk))
	}

	j.discoveredJob(4)

	for _, st := range j.statsJSON("--local", "4") {
		assert.True(t, st.Node.TreeReady, "rank %d", st.Node.Rank)
	}
	for rk := range 4 {
		assert.Equal(t, "hello from the target\n", j.readThrough(filepath.Join(j.mount(rk), "sub", "hello.txt")), "rank %d", rk)
	}
	w := j.run(launchTimeout, mpiexec, "-n", "4", launcher(), "wait", "--mount", j.mountTemplate(), "--timeout", "20s")
	require.Equal(t, 0, w.Code, "mpiexec copper-launch wait: %s", w)

	s := j.run(launchTimeout, mpiexec, "-n", "4", launcher(), "stop", "--mount", j.mountTemplate(), "--timeout", "20s")
	require.Equal(t, 0, s.Code, "mpiexec copper-launch stop: %s", s)
	j.requireNothingLeft()
}

// discoveredJob returns the one job directory a discover-mode start left
// under log_dir, after checking that its address book has n ranks.
func (j *job) discoveredJob(n int) string {
	j.t.Helper()
	jobDirs, err := filepath.Glob(filepath.Join(j.logDir, "copper-*"))
	require.NoError(j.t, err)
	require.Len(j.t, jobDirs, 1, "rank 0 chose one job id for all")
	entries, err := book.Read(filepath.Join(jobDirs[0], "logs", "copper_address_book.txt"))
	require.NoError(j.t, err)
	require.Len(j.t, entries, n)
	return jobDirs[0]
}

// openMPIRun is Open MPI's launcher by its own name (not `mpirun`, which
// the machine's alternatives may point at MPICH) with what it needs here:
// it refuses root without --allow-run-as-root, and 4 ranks on a host with
// fewer cores need --oversubscribe.
func openMPIRun(t *testing.T, n int) (string, []string) {
	t.Helper()
	mpirun, err := exec.LookPath("mpirun.openmpi")
	if err != nil {
		t.Fatalf("mpirun.openmpi not found (%v): run scripts/setup-test-deps.sh (Debian package openmpi-bin)", err)
	}
	return mpirun, []string{"--allow-run-as-root", "--oversubscribe", "-n", strconv.Itoa(n)}
}

// TestOpenMPI runs the launcher under Open MPI's mpirun, which gives each
// rank PMIX_RANK and OMPI_COMM_WORLD_SIZE and no node list: discover mode
// is given rank 0's address with --bootstrap.
func TestOpenMPI(t *testing.T) {
	mpirun, mpiArgs := openMPIRun(t, 4)
	j := newJob(t)
	args := append(append(mpiArgs, launcher()), j.common()...)
	args = append(args, "--bootstrap", testkit.FreeAddr(t), "--interface", "lo")
	r := j.run(launchTimeout, mpirun, args...)
	require.Equal(t, 0, r.Code, "mpirun.openmpi copper-launch: %s", r)
	require.Len(t, readyPIDs(t, r.Stdout), 4, "%s", r)
	for rk := range 4 {
		assert.Contains(t, r.Stderr, fmt.Sprintf("identity\" rank=%d size=4 source=PMIX_RANK/OMPI_COMM_WORLD_SIZE", rk))
	}

	j.discoveredJob(4)

	mounted := map[string]bool{}
	for _, m := range j.scratch.Mounts() {
		mounted[m.Point] = true
	}
	for rk := range 4 {
		assert.True(t, mounted[j.mount(rk)], "rank %d's mount %s is mounted", rk, j.mount(rk))
		assert.Equal(t, "hello from the target\n", j.readThrough(filepath.Join(j.mount(rk), "sub", "hello.txt")), "rank %d", rk)
	}
	// stats and wait under Open MPI too: each rank finds its own mount.
	// Open MPI forwards each rank's stdout from a pseudo-terminal in chunks
	// that can interleave mid-line (it once broke this test's JSON), so the
	// ranks write their stats to files.
	out := t.TempDir()
	st := j.run(launchTimeout, mpirun, append(append(mpiArgs, launcher()), "stats", "--json", "--output", out, "--mount", j.mountTemplate())...)
	require.Equal(t, 0, st.Code, "mpirun.openmpi copper-launch stats: %s", st)
	files, err := filepath.Glob(filepath.Join(out, "*"))
	require.NoError(t, err)
	require.Len(t, files, 4, "one file per rank, no temporary left: %v", files)
	for rk := range 4 {
		raw, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("copper-stats.rank%d.json", rk)))
		require.NoError(t, err)
		var s nodeStatus
		require.NoError(t, json.Unmarshal(raw, &s), "rank %d: %s", rk, raw)
		assert.Equal(t, rk, s.Node.Rank)
		assert.True(t, s.Node.TreeReady, "rank %d", rk)
		assert.Equal(t, j.mount(rk), s.Mount)
	}
	w := j.run(launchTimeout, mpirun, append(append(mpiArgs, launcher()), "wait", "--mount", j.mountTemplate(), "--timeout", "20s")...)
	require.Equal(t, 0, w.Code, "mpirun.openmpi copper-launch wait: %s", w)

	s := j.run(launchTimeout, mpirun, append(append(mpiArgs, launcher()), "stop", "--mount", j.mountTemplate(), "--timeout", "20s")...)
	require.Equal(t, 0, s.Code, "mpirun.openmpi copper-launch stop: %s", s)
	j.requireNothingLeft()
}

// TestMPIBootstrapThroughPMI: under MPICH's mpiexec with no node file, no
// Slurm node list and no --bootstrap, rank 0 publishes its all-gather
// address in Hydra's PMI key-value space and the others read it there.
func TestMPIBootstrapThroughPMI(t *testing.T) {
	mpiexec, err := exec.LookPath("mpiexec.mpich")
	if err != nil {
		t.Fatalf("mpiexec.mpich not found (%v): run scripts/setup-test-deps.sh (Debian package mpich)", err)
	}
	j := newJob(t)
	args := append([]string{"-n", "3", launcher()}, j.common()...)
	args = append(args, "--interface", "lo")
	r := j.run(launchTimeout, mpiexec, args...)
	require.Equal(t, 0, r.Code, "mpiexec copper-launch: %s", r)
	require.Len(t, readyPIDs(t, r.Stdout), 3, "%s", r)
	for rk := range 3 {
		assert.Regexp(t, fmt.Sprintf(`rank=%d endpoint=127\.0\.0\.1:\d+ from="interface lo" bootstrap=127\.0\.0\.1:\d+ bootstrap_from="PMI \(PMI_FD=\d+, PMI-1, key copper-bootstrap\)"`, rk), r.Stderr)
	}
	// Finalized before exiting: Hydra reports nothing about any rank (a
	// rank that did PMI init and exits without finalize is a "BAD
	// TERMINATION" to Hydra, which then kills the others).
	assert.NotContains(t, r.Stdout, "BAD TERMINATION", "%s", r)
	assert.NotContains(t, r.Stderr, "[mpiexec@", "%s", r)
	assert.NotContains(t, r.Stderr, "[proxy:", "%s", r)

	jobDir := j.discoveredJob(3)
	prov, err := os.ReadFile(filepath.Join(jobDir, "logs", "copper_address_book_full_output.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(prov), "(from PMI (PMI_FD=", "the record says where rank 0's address came from")

	sts := j.statsJSON("--local", "3")
	require.Len(t, sts, 3)
	for _, st := range sts {
		assert.True(t, st.Node.TreeReady, "rank %d", st.Node.Rank)
	}
	for rk := range 3 {
		assert.Equal(t, "hello from the target\n", j.readThrough(filepath.Join(j.mount(rk), "sub", "hello.txt")), "rank %d", rk)
	}
	s := j.run(launchTimeout, mpiexec, "-n", "3", launcher(), "stop", "--mount", j.mountTemplate(), "--timeout", "20s")
	require.Equal(t, 0, s.Code, "mpiexec copper-launch stop: %s", s)
	j.requireNothingLeft()
}

// TestMPIPMIPort: mpiexec -pmi-port gives no PMI_RANK, only PMI_PORT and
// PMI_ID; start, wait and stop learn their rank from the PMI server, and
// start also finds rank 0's address there.
func TestMPIPMIPort(t *testing.T) {
	mpiexec, err := exec.LookPath("mpiexec.mpich")
	if err != nil {
		t.Fatalf("mpiexec.mpich not found (%v): run scripts/setup-test-deps.sh (Debian package mpich)", err)
	}
	j := newJob(t)
	args := append([]string{"-pmi-port", "-n", "3", launcher()}, j.common()...)
	args = append(args, "--interface", "lo")
	r := j.run(launchTimeout, mpiexec, args...)
	require.Equal(t, 0, r.Code, "mpiexec -pmi-port copper-launch: %s", r)
	require.Len(t, readyPIDs(t, r.Stdout), 3, "%s", r)
	for rk := range 3 {
		assert.Contains(t, r.Stderr, fmt.Sprintf("identity\" rank=%d size=3 source=PMI_PORT/PMI_ID", rk))
	}
	assert.Equal(t, 3, strings.Count(r.Stderr, `bootstrap_from="PMI (PMI_PORT=`), "%s", r)
	assert.NotContains(t, r.Stderr, "[mpiexec@", "%s", r)
	assert.NotContains(t, r.Stderr, "[proxy:", "%s", r)
	for rk := range 3 {
		assert.Equal(t, "hello from the target\n", j.readThrough(filepath.Join(j.mount(rk), "sub", "hello.txt")), "rank %d", rk)
	}
	w := j.run(launchTimeout, mpiexec, "-pmi-port", "-n", "3", launcher(), "wait", "--mount", j.mountTemplate(), "--timeout", "20s")
	require.Equal(t, 0, w.Code, "mpiexec -pmi-port copper-launch wait: %s", w)
	s := j.run(launchTimeout, mpiexec, "-pmi-port", "-n", "3", launcher(), "stop", "--mount", j.mountTemplate(), "--timeout", "20s")
	require.Equal(t, 0, s.Code, "mpiexec -pmi-port copper-launch stop: %s", s)
	assert.NotContains(t, w.Stderr+s.Stderr, "[mpiexec@", "%s\n%s", w, s)
	assert.NotContains(t, r.Stdout+w.Stdout+s.Stdout, "BAD TERMINATION", "%s\n%s\n%s", r, w, s)
	j.requireNothingLeft()
}

// TestNoBootstrapAddressSaysWhichLauncher: with neither a node list, a
// --bootstrap nor a PMI server, every rank fails at once naming what
// would supply the address.
func TestNoBootstrapAddressSaysWhichLauncher(t *testing.T) {
	j := newJob(t)
	r := j.runEnv(map[string]string{"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}, j.common()...)
	require.NotEqual(t, 0, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "copper-launch rank 1: discover mode needs rank 0's address and has no way to find it")
	assert.Contains(t, r.Stderr, "This looks like Open MPI (PMIx), which offers no PMI-1/PMI-2 server: pass --nodefile FILE or --bootstrap HOST:PORT")
	assert.Contains(t, r.Stderr, "MPICH's mpiexec (Hydra) and srun --mpi=pmi2 supply PMI")
	j.requireNothingLeft()
}

// TestMissingRankFailsEveryStartedRank starts two ranks of three: both
// must give up at the bootstrap timeout, naming the missing rank, having
// mounted and started nothing.
func TestMissingRankFailsEveryStartedRank(t *testing.T) {
	j := newJob(t)
	addr := testkit.FreeAddr(t)
	results := make([]testkit.Result, 2)
	done := make(chan int, 2)
	for rk := range 2 {
		go func() {
			cmd := exec.Command(launcher(), append(j.common(), "--rank", strconv.Itoa(rk), "--size", "3",
				"--bootstrap", addr, "--bootstrap-timeout-s", "2", "--interface", "lo")...)
			cmd.Env = j.env()
			results[rk], _ = testkit.RunBounded(cmd, launchTimeout)
			done <- rk
		}()
	}
	<-done
	<-done
	for rk, r := range results {
		assert.NotEqual(t, 0, r.Code, "rank %d: %s", rk, r)
		assert.Contains(t, r.Stderr, fmt.Sprintf("copper-launch rank %d: ", rk))
		assert.Contains(t, r.Stderr, "missing rank 2 of 3", "rank %d: %s", rk, r)
	}
	j.requireNothingLeft()
	_, err := os.Stat(j.logDir)
	assert.ErrorIs(t, err, os.ErrNotExist, "no job directory for a job that never started")
}

// TestLocalRankFailureStopsTheOthers makes rank 1's mount impossible: the
// launch must fail naming it and leave rank 0 stopped, not serving.
func TestLocalRankFailureStopsTheOthers(t *testing.T) {
	j := newJob(t)
	require.NoError(t, os.WriteFile(j.mount(1), []byte("a file where a mount directory should be"), 0o644))
	r := j.launch(append(j.common(), "--local", "2", "--ready-timeout-s", "20")...)
	require.NotEqual(t, 0, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "--local 2: failed: rank 1; stopping the others")
	assert.Contains(t, r.Stderr, "copper-node rank 1")
	j.requireNothingLeft()
}

// TestLocalRootFailureEndsWaitingRanks fails the root: its children
// would wait for it until ready_timeout_s (longer than the test allows),
// so the launch returning at all shows they were wound down.
func TestLocalRootFailureEndsWaitingRanks(t *testing.T) {
	j := newJob(t)
	require.NoError(t, os.WriteFile(j.mount(0), []byte("a file where a mount directory should be"), 0o644))
	r := j.launch(append(j.common(), "--local", "3", "--ready-timeout-s", "600")...)
	require.NotEqual(t, 0, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "--local 3: failed: rank 0; stopping the others")
	j.requireNothingLeft()
}

// TestForegroundExecs checks that --foreground becomes copper-node (same
// pid, so srun's step stays attached) and that stop ends it cleanly.
func TestForegroundExecs(t *testing.T) {
	j := newJob(t)
	cmd := exec.Command(launcher(), append(j.common(), "--rank", "0", "--size", "1", "--bootstrap", testkit.FreeAddr(t),
		"--interface", "lo", "--job-id", "fg", "--foreground")...)
	cmd.Env = j.env()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	gone := make(chan struct{})
	go func() {
		exited <- cmd.Wait()
		close(gone)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-gone:
		case <-time.After(testkit.KillGrace):
		}
	})

	w := j.launch("wait", "--mount", j.mountTemplate(), "--rank", "0", "--timeout", "30s")
	require.Equal(t, 0, w.Code, "wait: %s\nlauncher output:\n%s", w, out.String())
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
	require.NoError(t, err)
	argv := strings.Split(string(cmdline), "\x00")
	assert.Equal(t, filepath.Join(binDir, "copper-node"), argv[0], "the launcher's pid now runs copper-node")
	assert.Contains(t, argv, "--foreground")
	assert.Equal(t, "hello from the target\n", j.readThrough(filepath.Join(j.mount(0), "sub", "hello.txt")))
	assert.Len(t, j.privateLeftovers(), 2, "a foreground node keeps its book and token copies until stop")

	s := j.launch("stop", "--mount", j.mountTemplate(), "--rank", "0", "--timeout", "20s")
	require.Equal(t, 0, s.Code, "stop: %s", s)
	select {
	case err := <-exited:
		require.NoError(t, err, "copper-node --foreground exits 0 after stop:\n%s", out.String())
	case <-time.After(stopTimeout):
		t.Fatal("copper-node --foreground still running after stop")
	}
	assert.Empty(t, j.privateLeftovers(), "stop removes the foreground node's copies")
	j.requireNothingLeft()
}

// TestPreparedLocal runs two ranks from a prepared book with a token
// beside it: no all-gather, the job id given, the token used.
func TestPreparedLocal(t *testing.T) {
	j := newJob(t)
	host, err := os.Hostname()
	require.NoError(t, err)
	bookPath := filepath.Join(j.dir, "job.book")
	require.NoError(t, os.WriteFile(bookPath, []byte(fmt.Sprintf("%s %s\n%s %s\n", host, testkit.FreeAddr(t), host, testkit.FreeAddr(t))), 0o644))
	require.NoError(t, os.WriteFile(bookPath+".token", []byte("prepared-token-0123456789\n"), 0o600))

	// The command word after the flags must reach the ranks as given.
	r := j.launch(append(j.common(), "start", "--local", "2", "-a", "prepared", "-F", bookPath, "--job-id", "prep")...)
	require.Equal(t, 0, r.Code, "%s", r)
	assert.NotContains(t, r.Stderr, "without peer authentication")
	for rk := range 2 {
		assert.Equal(t, "hello from the target\n", j.readThrough(filepath.Join(j.mount(rk), "sub", "hello.txt")))
	}
	got, err := book.Read(filepath.Join(j.logDir, "prep", "logs", "copper_address_book.txt"))
	require.NoError(t, err)
	want, err := book.Read(bookPath)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	s := j.launch("stop", "--mount", j.mountTemplate(), "--local", "2")
	require.Equal(t, 0, s.Code, "stop: %s", s)
	assert.FileExists(t, bookPath+".token", "the prepared token is not the launcher's to remove")
	j.requireNothingLeft()
}

// TestDryRunFacility filters a generated facility book to a node file and
// checks the order, the own-host check and missing hosts, without
// starting anything.
func TestDryRunFacility(t *testing.T) {
	dir := t.TempDir()
	host, err := os.Hostname()
	require.NoError(t, err)
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, "other%02d.example.gov 10.0.0.%d:7000\n", i, i)
	}
	fmt.Fprintf(&b, "%s.example.gov 10.0.1.1:7000\n", host)
	facility := filepath.Join(dir, "facility.book")
	require.NoError(t, os.WriteFile(facility, []byte(b.String()), 0o644))
	nodefile := filepath.Join(dir, "nodes")
	require.NoError(t, os.WriteFile(nodefile, []byte(host+"\n"+host+"\nother07\n"), 0o644))

	run := func(args ...string) testkit.Result {
		cmd := exec.Command(launcher(), append([]string{"--site", "aurora", "--log-dir", filepath.Join(dir, "logs"),
			"-a", "facility", "-F", facility, "--nodefile", nodefile, "--job-id", "dry", "--dry-run", "-l", "3", "-b", strconv.Itoa(firstCPU(t))}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"), "HOME="+filepath.Join(dir, "home"))
		r, err := testkit.RunBounded(cmd, launchTimeout)
		require.NoError(t, err)
		return r
	}

	r := run("--rank", "0", "--size", "2")
	require.Equal(t, 0, r.Code, "%s", r)
	assert.Contains(t, r.Stdout, fmt.Sprintf("# 0 %s.example.gov 10.0.1.1:7000\n# 1 other07.example.gov 10.0.0.7:7000\n", host))
	assert.Contains(t, r.Stdout, "rank 0: "+filepath.Join(binDir, "copper-node")+" serve --book <book> --rank 0 --job-id=dry")
	assert.Contains(t, r.Stdout, "--site=aurora")
	assert.Contains(t, r.Stdout, "--token-file <token>", "no <book>.token: the token derived from key_file")

	r = run("--rank", "1", "--size", "2")
	assert.NotEqual(t, 0, r.Code)
	assert.Contains(t, r.Stderr, fmt.Sprintf("rank 1 runs on host %s but the address map gives rank 1 to other07.example.gov", host))

	r = run("--rank", "0", "--size", "3")
	assert.NotEqual(t, 0, r.Code)
	assert.Contains(t, r.Stderr, "2 nodes but the job has 3 ranks")

	require.NoError(t, os.WriteFile(nodefile, []byte(host+"\nghost-a\nother01\nghost-b\n"), 0o644))
	r = run("--rank", "0", "--size", "4")
	assert.NotEqual(t, 0, r.Code)
	assert.Contains(t, r.Stderr, "2 of 4 allocation hosts are not in the address book: ghost-a, ghost-b")

	_, err = os.Stat(filepath.Join(dir, "logs"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a dry run writes nothing")
	_, err = os.Stat(filepath.Join(dir, "home"))
	assert.ErrorIs(t, err, os.ErrNotExist, "a dry run does not create the key")
}

func TestUsageAndIdentityErrors(t *testing.T) {
	cmd := exec.Command(launcher(), "--help")
	r, err := testkit.RunBounded(cmd, launchTimeout)
	require.NoError(t, err)
	require.Equal(t, 0, r.Code)
	assert.Contains(t, r.Stdout, "copper-launch --local N")

	cmd = exec.Command(launcher(), "--site", "local")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	r, err = testkit.RunBounded(cmd, launchTimeout)
	require.NoError(t, err)
	require.Equal(t, 1, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "PMI_RANK, PALS_RANKID, PMIX_RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID")

	cmd = exec.Command(launcher(), "--local", "2", "--mount", "/tmp/no-rank-here")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	r, err = testkit.RunBounded(cmd, launchTimeout)
	require.NoError(t, err)
	require.Equal(t, 1, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "must contain {rank}")

	cmd = exec.Command(launcher(), "--bogus")
	r, err = testkit.RunBounded(cmd, launchTimeout)
	require.NoError(t, err)
	require.Equal(t, 2, r.Code, "%s", r)
}

// TestLaunchRefusesBadKey: a key file others can read stops every rank
// before anything starts, naming the file; keygen then cannot fix it
// silently either.
func TestLaunchRefusesBadKey(t *testing.T) {
	j := newJob(t)
	key := filepath.Join(j.dir, "key")
	require.NoError(t, os.WriteFile(key, bytes.Repeat([]byte{7}, 32), 0o600))
	require.NoError(t, os.Chmod(key, 0o644))
	r := j.launch(append(j.common(), "--local", "2", "--key-file", key)...)
	require.NotEqual(t, 0, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "key file "+key+" has mode 0644")
	assert.Empty(t, j.scratch.Mounts())
	r = j.launch("keygen", "--key-file", key)
	assert.Equal(t, 1, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "key file "+key+" has mode 0644")
	j.requireNothingLeft()
}

// TestKeygenConcurrentProcesses: 64 launcher processes started at once
// with no key file all succeed; exactly one creates the key and the
// others find it, as thousands of ranks on a shared home would.
func TestKeygenConcurrentProcesses(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "home", ".copper", "key")
	const procs = 64
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*bytes.Buffer, procs)
	for i := range cmds {
		cmds[i] = exec.Command(launcher(), "keygen", "--key-file", key)
		cmds[i].Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Join(dir, "home")}
		outs[i] = &bytes.Buffer{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
	}
	for i, cmd := range cmds {
		require.NoError(t, cmd.Start(), "start %d", i)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	}
	created := 0
	for i, cmd := range cmds {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err, "keygen %d: %s", i, outs[i])
		case <-time.After(launchTimeout):
			t.Fatalf("keygen %d still running", i)
		}
		if strings.Contains(outs[i].String(), "created key file") {
			created++
		} else {
			assert.Contains(t, outs[i].String(), "exists and is usable", "keygen %d", i)
		}
	}
	assert.Equal(t, 1, created, "processes that created the key")
	fi, err := os.Stat(key)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.EqualValues(t, 32, fi.Size())
	leftovers, err := filepath.Glob(filepath.Join(filepath.Dir(key), ".key.tmp-*"))
	require.NoError(t, err)
	assert.Empty(t, leftovers)
}

// TestWaitFailsFastOnFailedStart: a `copper-launch wait` running beside a
// start (as the Slurm scripts run it beside `srun ... --foreground &`)
// returns at once, non-zero, when the start fails, with the reason, and
// names only log files that exist: in the foreground (whose stderr is the
// step's output) and daemonized (whose stderr is a file), whether the
// launcher or copper-node failed.
func TestWaitFailsFastOnFailedStart(t *testing.T) {
	for _, tc := range []struct {
		name       string
		foreground bool
		mountFile  bool   // the mount is a regular file: copper-node fails to mount
		iface      string // for the all-gather
		by, reason string
		logs       []string // log files the message names, relative to the job's logs/
	}{
		{name: "foreground launcher", foreground: true, iface: "nosuch0", by: "copper-launch pid", reason: `interface "nosuch0"`},
		// Its stderr is the step's; its log file (log level 4) exists.
		{name: "foreground node", foreground: true, mountFile: true, iface: "lo", by: "copper-node pid", reason: "not a directory",
			logs: []string{"-output.log"}},
		{name: "daemon node", mountFile: true, iface: "lo", by: "copper-node pid", reason: "not a directory",
			logs: []string{"-output.log", "-rank0-stderr.log"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(t)
			jobID := "wait-" + strings.ReplaceAll(tc.name, " ", "-")
			if tc.mountFile {
				require.NoError(t, os.WriteFile(j.mount(0), nil, 0o644))
			}
			waited := make(chan testkit.Result, 1)
			go func() {
				cmd := exec.Command(launcher(), "wait", "--site", "local", "--mount", j.mountTemplate(), "--rank", "0",
					"--job-id", jobID, "--timeout", "5m")
				cmd.Env = j.env()
				r, _ := testkit.RunBounded(cmd, launchTimeout)
				waited <- r
			}()
			args := append(j.common(), "--rank", "0", "--size", "1", "--job-id", jobID,
				"--bootstrap", testkit.FreeAddr(t), "--interface", tc.iface)
			if tc.foreground {
				args = append(args, "--foreground")
			}
			start := j.launch(args...)
			require.NotEqual(t, 0, start.Code, "the start fails: %s", start)

			w := <-waited
			require.NotEqual(t, 0, w.Code, "wait: %s", w)
			require.NotEqual(t, -1, w.Code, "wait returned before its bound, not killed by it: %s", w)
			assert.Contains(t, w.Stderr, "failed to start: rank 0 on host ")
			assert.Contains(t, w.Stderr, "job "+jobID+" ("+tc.by)
			assert.Contains(t, w.Stderr, tc.reason)
			named := regexp.MustCompile(`/\S+\.log`).FindAllString(w.Stderr, -1)
			for _, p := range named {
				assert.FileExists(t, p, "wait names only logs that exist")
			}
			require.Len(t, named, len(tc.logs), "%s", w.Stderr)
			for i, suffix := range tc.logs {
				assert.True(t, strings.HasSuffix(named[i], suffix), "%s names %s", named[i], suffix)
				assert.Equal(t, filepath.Join(j.logDir, jobID, "logs"), filepath.Dir(named[i]))
				b, err := os.ReadFile(named[i])
				require.NoError(t, err)
				assert.Contains(t, string(b), tc.reason, "the log named holds the reason")
			}
			if !tc.foreground {
				assert.NotContains(t, w.Stderr, "stderr went to the output", "a daemon's stderr is its file")
			}
			if len(tc.logs) == 0 {
				assert.Contains(t, w.Stderr, "its stderr went to the output of the job step that started it")
			}

			// Another job's wait on the same mount is not failed by this record.
			other := j.launch("wait", "--site", "local", "--mount", j.mountTemplate(), "--rank", "0", "--job-id", "another-job", "--timeout", "1s")
			assert.NotEqual(t, 0, other.Code)
			assert.Contains(t, other.Stderr, "within the timeout, and none recorded a failure", "%s", other)
			// The job's stop removes the record.
			s := j.launch("stop", "--site", "local", "--mount", j.mountTemplate(), "--rank", "0")
			require.Equal(t, 0, s.Code, "stop: %s", s)
			again := j.launch("wait", "--site", "local", "--mount", j.mountTemplate(), "--rank", "0", "--job-id", jobID, "--timeout", "1s")
			assert.Contains(t, again.Stderr, "none recorded a failure", "%s", again)
			j.requireNothingLeft()
		})
	}
}

// TestLocalFailedStartEndsEveryWait: when one rank of --local N fails,
// the launch stops the ranks that did start; a wait for any of the N
// mounts then returns at once, naming the rank that failed, instead of
// waiting out its timeout for nodes that were stopped.
func TestLocalFailedStartEndsEveryWait(t *testing.T) {
	j := newJob(t)
	require.NoError(t, os.WriteFile(j.mount(1), nil, 0o644)) // rank 1 cannot mount
	r := j.launch(append(j.common(), "--local", "3", "--job-id", "local3")...)
	require.NotEqual(t, 0, r.Code, "launch: %s", r)
	assert.Contains(t, r.Stderr, "failed: rank 1")

	w := j.launch("wait", "--site", "local", "--mount", j.mountTemplate(), "--local", "3", "--job-id", "local3", "--timeout", "5m")
	require.NotEqual(t, 0, w.Code, "wait: %s", w)
	require.NotEqual(t, -1, w.Code, "wait returned before its bound: %s", w)
	assert.Contains(t, w.Stderr, "rank 1 on host ")
	assert.Contains(t, w.Stderr, "not a directory")
	for _, rk := range []int{0, 2} {
		assert.Contains(t, w.Stderr, fmt.Sprintf("rank %d on host ", rk))
	}
	assert.Equal(t, 2, strings.Count(w.Stderr, "stopped because the --local 3 start failed at rank 1"), "%s", w.Stderr)
	j.requireNothingLeft()
}
