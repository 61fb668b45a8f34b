package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
)

// sharedJobs are two --local jobs of one user on one host, as two
// engineers at one login node run them: one runtime directory, one
// key_file, the same job id (COPPER_JOB_ID), each with its own target and
// mounts. sameLogDir also gives them one log_dir, so one job directory.
func sharedJobs(t *testing.T, sameLogDir bool) (a, b *job) {
	t.Helper()
	a, b = newJob(t), newJob(t)
	b.runtimeDir = a.runtimeDir
	if sameLogDir {
		b.logDir = a.logDir
	}
	// Each target says whose it is: a node handed the other job's book
	// would serve the other job's tree.
	for _, j := range []*job{a, b} {
		require.NoError(t, os.WriteFile(filepath.Join(j.target, "sub", "hello.txt"), []byte("hello from "+j.dir+"\n"), 0o644))
	}
	return a, b
}

// start launches --local 2 with the shared job id and key.
func (j *job) startShared(key string, extra ...string) testkit.Result {
	j.t.Helper()
	args := append(j.common(), append([]string{"--local", "2", "--key-file", key}, extra...)...)
	return j.runEnv(map[string]string{"COPPER_JOB_ID": "shared"}, args...)
}

// requireOwnTree checks that both of j's mounts serve j's own target,
// from the nodes with pids.
func (j *job) requireOwnTree(pids map[int]int) {
	j.t.Helper()
	for rk := range 2 {
		assert.Equal(j.t, "hello from "+j.dir+"\n", j.readThrough(filepath.Join(j.mount(rk), "sub", "hello.txt")), "rank %d", rk)
	}
	sts := j.statsJSON("--local", "2")
	require.Len(j.t, sts, 2)
	for rk, st := range sts {
		assert.Equal(j.t, pids[rk], st.PID, "rank %d is served by its first node", rk)
		assert.True(j.t, st.Node.TreeReady, "rank %d", rk)
	}
}

func (j *job) stopLocal() {
	j.t.Helper()
	s := j.run(stopTimeout+10*time.Second, launcher(), "stop", "--site", "local", "--mount", j.mountTemplate(), "--local", "2", "--timeout", "20s")
	require.Equal(j.t, 0, s.Code, "stop: %s", s)
}

// bookArg is the --book a node was started with.
func bookArg(t *testing.T, pid int) string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	require.NoError(t, err)
	args := strings.Split(string(raw), "\x00")
	for i := range len(args) - 1 {
		if args[i] == "--book" {
			return args[i+1]
		}
	}
	t.Fatalf("pid %d has no --book: %q", pid, args)
	return ""
}

// launchBoth starts a and b at once and returns both results.
func launchBoth(t *testing.T, a, b *job, key string) (ra, rb testkit.Result) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() { ra = a.startShared(key) })
	wg.Go(func() { rb = b.startShared(key) })
	wg.Wait()
	return ra, rb
}

// TestLocalJobsSameIDKeepOwnFiles starts two --local jobs at once with
// the same job id in one runtime directory (each its own log_dir): both
// must start on their own books and tokens, and stopping one must leave
// the other serving. The private copies used to be named
// <job>-rank<R>.book, so one launch removed or overwrote the other's.
func TestLocalJobsSameIDKeepOwnFiles(t *testing.T) {
	a, b := sharedJobs(t, false)
	key := filepath.Join(a.dir, "key")
	ra, rb := launchBoth(t, a, b, key)
	require.Equal(t, 0, ra.Code, "job a: %s", ra)
	require.Equal(t, 0, rb.Code, "job b: %s", rb)
	pa, pb := readyPIDs(t, ra.Stdout), readyPIDs(t, rb.Stdout)
	require.Len(t, pa, 2, "%s", ra)
	require.Len(t, pb, 2, "%s", rb)
	a.requireOwnTree(pa)
	b.requireOwnTree(pb)
	for rk := range 2 {
		ba, bb := bookArg(t, pa[rk]), bookArg(t, pb[rk])
		assert.NotEqual(t, ba, bb, "rank %d: the two jobs' nodes were handed one book file", rk)
		assert.Contains(t, filepath.Base(ba), "shared-rank"+strconv.Itoa(rk)+"-")
	}
	assert.Empty(t, a.privateLeftovers(), "each launch removed its own copies")

	a.stopLocal()
	assert.Empty(t, a.scratch.Mounts(), "job a's mounts are gone")
	b.requireOwnTree(pb)
	b.stopLocal()
	a.requireNothingLeft()
	b.requireNothingLeft()
}

// jobRecords reads a job directory's logs/*.txt records.
func jobRecords(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "logs", "*.txt"))
	require.NoError(t, err)
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[filepath.Base(f)] = string(b)
	}
	require.NotEmpty(t, out, "no records in %s", dir)
	return out
}

// TestLocalSameJobDirRefused gives two --local jobs the same job
// directory: the second is refused before it starts anything, naming the
// job id, where it came from, the directory, the live job's process and
// how to pick another id; the first serves on with its records intact.
// Started at once, exactly one of them wins. Stopping one leaves the
// other serving.
func TestLocalSameJobDirRefused(t *testing.T) {
	a, b := sharedJobs(t, true)
	key := filepath.Join(a.dir, "key")
	jobDir := filepath.Join(a.logDir, "shared")

	ra := a.startShared(key)
	require.Equal(t, 0, ra.Code, "job a: %s", ra)
	pa := readyPIDs(t, ra.Stdout)
	require.Len(t, pa, 2, "%s", ra)
	before := jobRecords(t, jobDir)

	rb := b.startShared(key)
	require.Equal(t, 1, rb.Code, "job b must be refused: %s", rb)
	assert.Contains(t, rb.Stderr, "job shared (from COPPER_JOB_ID): its directory "+jobDir+" is in use by another live job on this host")
	assert.Regexp(t, `copper-node pid (`+strconv.Itoa(pa[0])+`|`+strconv.Itoa(pa[1])+`) \(mount `+regexp.QuoteMeta(a.dir), rb.Stderr)
	assert.Contains(t, rb.Stderr, "pass --job-id with another name")
	assert.Empty(t, b.scratch.Mounts(), "the refused job mounted nothing")
	assert.Equal(t, before, jobRecords(t, jobDir), "the first job's records are untouched")
	a.requireOwnTree(pa)

	// With another id the second job runs beside the first.
	rb = b.startShared(key, "--job-id", "other")
	require.Equal(t, 0, rb.Code, "job b as other: %s", rb)
	pb := readyPIDs(t, rb.Stdout)
	a.stopLocal()
	b.requireOwnTree(pb)
	b.stopLocal()
	a.requireNothingLeft()
	b.requireNothingLeft()

	// At once: one wins, the other is refused and mounts nothing.
	ra, rb = launchBoth(t, a, b, key)
	won, lost, rw, rl := a, b, ra, rb
	if ra.Code != 0 {
		won, lost, rw, rl = b, a, rb, ra
	}
	require.Equal(t, 0, rw.Code, "one of the two starts: %s", rw)
	require.Equal(t, 1, rl.Code, "the other is refused: %s", rl)
	assert.Contains(t, rl.Stderr, "job shared (from COPPER_JOB_ID): its directory "+jobDir+" is in use by another live job on this host")
	assert.Empty(t, lost.scratch.Mounts(), "the refused job mounted nothing")
	won.requireOwnTree(readyPIDs(t, rw.Stdout))
	won.stopLocal()
	won.requireNothingLeft()
	lost.requireNothingLeft()
	locks, _ := filepath.Glob(filepath.Join(a.runtimeDir, "copper", "job-*.lock"))
	assert.Empty(t, locks, "the job directories' start locks are removed once released")
}
