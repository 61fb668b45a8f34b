package nodecmd

// These tests run copper-node as a real daemon: the test binary, run
// again with asMainEnv set, is copper-node (see TestMain).

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
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

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/profile"
)

// asMainEnv makes the test binary run copper-node's main.
const asMainEnv = "COPPER_NODE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(Run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// Bounds on the child processes and on calls into a live mount.
const (
	cmdTimeout   = 45 * time.Second
	mountTimeout = 20 * time.Second
)

// daemon is one copper-node started by a test.
type daemon struct {
	dir, mnt, jobDir, runtime string
	pid                       int
}

// copperNode runs the copper-node in this test binary, bounded in time.
func (d *daemon) copperNode(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), asMainEnv+"=1", "XDG_RUNTIME_DIR="+d.runtime)
	r, err := testkit.RunBounded(cmd, cmdTimeout)
	require.NoError(t, err, "copper-node %v: %s", args, r)
	return r.Stdout, r.Stderr, r.Code
}

// startDaemon starts a one-node job serving target with profiling and
// the extra flags. Cleanup stops it, or kills it, and the scratch
// directory's cleanup detaches the mount a killed node leaves behind.
func startDaemon(t *testing.T, target string, flags ...string) *daemon {
	t.Helper()
	testkit.RequireFuse(t)
	dir := testkit.NewScratch(t, "copper-node-test-").Dir
	d := &daemon{dir: dir, mnt: filepath.Join(dir, "mnt"), jobDir: filepath.Join(dir, "logs", "job"), runtime: filepath.Join(dir, "run")}
	require.NoError(t, os.MkdirAll(d.runtime, 0o700))
	t.Cleanup(func() { d.stop(t) }) // before the scratch directory's cleanup

	book := filepath.Join(dir, "book")
	require.NoError(t, os.WriteFile(book, []byte("localhost "+testkit.FreeAddr(t)+"\n"), 0o644))
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("copper-node-test-token\n"), 0o600))

	args := append([]string{"serve", "--book", book, "--rank", "0", "--token-file", token, "--target", target, "--mount", d.mnt,
		"--log-dir", filepath.Join(dir, "logs"), "--job-id", "job", "--log-level", "4",
		"--cache-memory-bytes", strconv.Itoa(64 << 20), "--ready-timeout-s", "10", "--stop-timeout", "10s"}, flags...)
	stdout, stderr, code := d.copperNode(t, args...)
	require.Zero(t, code, "copper-node serve: %s %s", stdout, stderr)
	m := regexp.MustCompile(`pid=(\d+)`).FindStringSubmatch(stdout)
	require.NotNil(t, m, "no pid in %q", stdout)
	d.pid, _ = strconv.Atoi(m[1])
	return d
}

// alive reports whether the daemon still runs.
func (d *daemon) alive() bool { return osutil.ProcessRuns(d.pid) }

func (d *daemon) stop(t *testing.T) {
	if d.pid > 0 && d.alive() {
		if _, _, code := d.copperNode(t, "stop", "--mount", d.mnt, "--timeout", "15s"); code != 0 && d.alive() {
			_ = syscall.Kill(d.pid, syscall.SIGKILL)
		}
	}
}

// within runs f, which touches the live mount, bounded in time.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	return testkit.Within(t, mountTimeout, what, f)
}

// checkComplete parses every profiling file in dir and fails on a
// partial one: a CSV must parse with its header's width throughout and
// the summary must reach its last section.
func checkComplete(t *testing.T, dir string) (files int) {
	t.Helper()
	headers := map[string]string{
		"profiling_operations.csv":  profile.OperationsHeader,
		"profiling_errors.csv":      profile.ErrorsHeader,
		"profiling_aggregate.csv":   profile.AggregateHeader,
		"profiling_top_paths.csv":   profile.TopPathsHeader,
		"profiling_paths_full.csv":  profile.PathsFullHeader,
		"profiling_large_files.csv": profile.LargeFilesHeader,
		"cache_tables.csv":          profile.CacheTablesHeader,
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue // a temporary file of a write the kill interrupted
		}
		files++
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		if strings.HasSuffix(e.Name(), "profiling_summary.md") {
			assert.Contains(t, string(b), "## Top paths", e.Name())
			continue
		}
		var header string
		for suffix, h := range headers {
			if strings.HasSuffix(e.Name(), "-"+suffix) {
				header = h
			}
		}
		require.NotEmpty(t, header, "unexpected file %s in %s", e.Name(), dir)
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		require.NoError(t, err, e.Name())
		require.Equal(t, header, strings.Join(recs[0], ","), e.Name())
		if strings.HasSuffix(e.Name(), "aggregate.csv") {
			assert.Len(t, recs, 1+len(profile.AggregateRows(profile.Report{})), "%s: every metric row", e.Name())
			assert.Equal(t, []string{"large_direct_paths_dropped", "0"}, recs[len(recs)-1], "the last row is there")
		}
	}
	return files
}

func TestKilledNodeLeavesReadableSnapshots(t *testing.T) {
	src := t.TempDir()
	for i := range 50 {
		require.NoError(t, os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), []byte(strings.Repeat("x", i)), 0o644))
	}
	d := startDaemon(t, src, "--profile-snapshot-interval-s", "1", "--profile-top-n", "5", "--profile-paths-full")
	for i := range 50 {
		require.NoError(t, within(t, "read", func() error {
			_, err := os.ReadFile(filepath.Join(d.mnt, fmt.Sprintf("f%02d", i)))
			return err
		}))
	}
	snap := filepath.Join(d.jobDir, "profiling", profile.TagRuntime)
	// Wait for a second snapshot to replace the first one's files.
	var first float64
	require.Eventually(t, func() bool { first = uptime(snap); return first > 0 },
		20*time.Second, 20*time.Millisecond, "no runtime snapshot")
	require.Eventually(t, func() bool { return uptime(snap) > first },
		20*time.Second, 20*time.Millisecond, "no second runtime snapshot")

	require.NoError(t, syscall.Kill(d.pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return !d.alive() }, 10*time.Second, 20*time.Millisecond, "pid %d survived SIGKILL", d.pid)

	assert.Equal(t, 7, checkComplete(t, snap), "all seven profiling files of the runtime snapshot")
	assert.Equal(t, 1, checkComplete(t, filepath.Join(d.jobDir, "tables", profile.TagRuntime)))
	assert.NoDirExists(t, filepath.Join(d.jobDir, "profiling", profile.TagFinal), "a killed node writes no final outputs")
	assert.NoDirExists(t, filepath.Join(d.jobDir, "profiling", profile.TagPreDestroy))
}

// uptime reads uptime_s from the aggregate in dir; 0 when unreadable.
func uptime(dir string) float64 {
	matches, _ := filepath.Glob(filepath.Join(dir, "*-profiling_aggregate.csv"))
	if len(matches) != 1 {
		return 0
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`(?m)^uptime_s,([0-9.]+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func TestSnapshotAndStatsCommands(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	d := startDaemon(t, src, "--profile-metrics")
	require.NoError(t, within(t, "stat", func() error { _, err := os.Stat(filepath.Join(d.mnt, "f")); return err }))
	require.NoError(t, within(t, "stat of a missing name", func() error {
		if _, err := os.Stat(filepath.Join(d.mnt, "absent")); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat absent: %v, want ENOENT", err)
		}
		return nil
	}))

	stdout, stderr, code := d.copperNode(t, "snapshot", "--mount", d.mnt, "--tag", "t1")
	require.Zero(t, code, stderr)
	want := filepath.Join(d.jobDir, "profiling", "t1") + "\n" + filepath.Join(d.jobDir, "tables", "t1") + "\n"
	assert.Equal(t, want, stdout)
	assert.Equal(t, 6, checkComplete(t, filepath.Join(d.jobDir, "profiling", "t1")), "six files without paths_full")

	stdout, _, code = d.copperNode(t, "snapshot", "--mount", d.mnt)
	require.Zero(t, code)
	assert.Contains(t, stdout, filepath.Join("profiling", profile.TagIoctl))

	_, stderr, code = d.copperNode(t, "snapshot", "--mount", d.mnt, "--tag", "final")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "reserved")
	_, stderr, code = d.copperNode(t, "snapshot")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "--mount is required")

	stdout, stderr, code = d.copperNode(t, "stats", "--mount", d.mnt)
	require.Zero(t, code, stderr)
	assert.Regexp(t, `fuse op\s+calls\s+errors\s+ENOENT\s+avg µs\s+p50 µs\s+p99 µs\s+max µs`, stdout)
	// The lookup of a missing name: f's may have come with a listing of
	// the mount (READDIRPLUS) if anything on the host listed it.
	assert.Regexp(t, `(?m)^\s+lookup\s+[1-9]\d*\s+\d+\s+[1-9]\d*\s`, stdout)

	_, stderr, code = d.copperNode(t, "stop", "--mount", d.mnt, "--timeout", "15s")
	require.Zero(t, code, stderr)
	assert.Equal(t, 6, checkComplete(t, filepath.Join(d.jobDir, "profiling", profile.TagFinal)))
	assert.Equal(t, 6, checkComplete(t, filepath.Join(d.jobDir, "profiling", profile.TagPreDestroy)))
}
