package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/report"
)

// copper-report on the job directory of a real 4-node run: the cluster
// totals must add up to what the nodes did, and the path report must find
// every path of the tree that the walk touched.
func TestReportOnRealRun(t *testing.T) {
	src, want := makeFixture(t)
	c := newCluster(t, clusterConfig{nodes: 4, fanout: 2, target: src,
		flags: []string{"--profile-metrics", "--profile-paths-full", "--profile-top-n", "50"}})
	c.startAll()
	for rank, got := range c.walkAll() {
		requireSameTree(t, "mount of rank "+strconv.Itoa(rank), want, got)
	}
	var rootBackend int64
	st := c.stats(0)
	for _, o := range st.Node.Ops {
		rootBackend += o.BackendOps
	}
	for rank := range 4 {
		res, err := c.stop(rank)
		require.NoError(t, err, "stop rank %d: %s", rank, res)
	}

	jobDir := filepath.Join(c.logDir, c.jobID)
	ctx := context.Background()
	agg, err := report.Aggregate(ctx, jobDir, report.AggregateOptions{})
	require.NoError(t, err)
	assert.Equal(t, 4, agg.Cluster.RanksWithAggregate)
	assert.EqualValues(t, rootBackend, agg.Cluster.Totals.BackendOps, "cluster backend ops = the root's")
	assert.NotZero(t, agg.Cluster.Totals.Forwarded)
	for _, f := range agg.Files {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		assert.NotZero(t, fi.Size(), f)
	}
	summary, err := os.ReadFile(agg.SummaryPath)
	require.NoError(t, err)
	assert.Contains(t, string(summary), "Ranks with aggregate files: 4")

	cache, err := report.Cache(ctx, jobDir, report.CacheOptions{})
	require.NoError(t, err)
	var combined report.CacheRow
	for _, r := range cache.Rows {
		if r.Table == report.TableCombined {
			combined = r
		}
	}
	assert.Equal(t, 4, len(cache.Nodes))
	assert.NotZero(t, combined.Bytes)

	paths, err := report.Paths(ctx, jobDir, report.PathsOptions{UsageRoot: src, Target: src})
	require.NoError(t, err)
	cov := paths.Coverage
	var files, dirs int
	for p, e := range want {
		if p == "/" {
			continue
		}
		if e.Type == "dir" {
			dirs++
		} else {
			files++
		}
	}
	assert.Equal(t, files, cov.Files, "files under the usage root")
	assert.Equal(t, files, cov.ObservedFiles, "the walk touched every file")
	assert.Equal(t, dirs, cov.ObservedDirs, "the walk touched every directory")
	unused, err := os.ReadFile(filepath.Join(paths.OutputDir, report.FileUnusedPaths))
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(unused)), "nothing left unobserved")
}

// The frictions of reports, through real mounts: a module whose .py has no
// .pyc, imported through a child's mount with profiling on, is named by
// copper-report doctor with its compileall fix; the file over
// max_cacheable_bytes the child read straight from the target is counted
// and named; Python's isatty on a copper file is a terminal ioctl, not an
// error; and copper-report paths finds the target in the job's records.
func TestDoctorOnRealRun(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import compileall").CombinedOutput(); err != nil {
		t.Fatalf("%s is needed (%v: %s): install the test dependencies with `make test` or scripts/setup-test-deps.sh", python, err, out)
	}
	src := t.TempDir()
	files := map[string]string{
		"mypkg/__init__.py": "# a package\n",
		"mypkg/core.py":     "X = 42\n",
		"okpkg/__init__.py": "Y = 1\n",
	}
	for name, body := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, name), []byte(body), 0o644))
	}
	// A library behind a long LD_LIBRARY_PATH: nine entries that lack it.
	lib, err := os.ReadFile("/lib/x86_64-linux-gnu/libz.so.1")
	require.NoError(t, err, "a shared library to load (zlib1g)")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "real"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "real", "libcopperprobe.so.1"), lib, 0o644))
	var searchPath []string
	for i := range 9 {
		require.NoError(t, os.Mkdir(filepath.Join(src, fmt.Sprintf("e%d", i)), 0o755))
		searchPath = append(searchPath, fmt.Sprintf("e%d", i))
	}
	big := make([]byte, 3*testMaxCacheable+17)
	require.NoError(t, os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644))
	// okpkg is compiled before the job, as the fix says; mypkg is not.
	out, err := exec.Command(python, "-m", "compileall", "-q", filepath.Join(src, "okpkg")).CombinedOutput()
	require.NoError(t, err, "compileall: %s", out)

	c := newCluster(t, clusterConfig{nodes: 2, fanout: 2, target: src,
		flags: []string{"--profile-metrics", "--profile-paths-full", "--large-files", "direct"}})
	c.startAll()
	mnt := c.mount(1)
	script := `
import ctypes, os, sys
ctypes.CDLL("libcopperprobe.so.1")
import mypkg.core, okpkg
assert mypkg.core.__file__.startswith(sys.argv[1] + "/"), mypkg.core.__file__
with open(os.path.join(sys.argv[1], "big.bin"), "rb") as f:
    n = len(f.read())
    tty = os.isatty(f.fileno())
print(mypkg.core.X + okpkg.Y, n, tty)
`
	cmd := exec.Command(python, "-c", script, mnt)
	var ldPath []string
	for _, d := range append(searchPath, "real") {
		ldPath = append(ldPath, filepath.Join(mnt, d))
	}
	cmd.Env = append(os.Environ(), "PYTHONPATH="+mnt, "PYTHONNOUSERSITE=1", "LD_LIBRARY_PATH="+strings.Join(ldPath, ":"))
	cmd.Dir = c.dir
	r, err := runBounded(cmd, walkTimeout)
	require.NoError(t, err)
	require.Zero(t, r.code, "python through %s: %s", mnt, r)
	assert.Equal(t, "43 "+strconv.Itoa(len(big))+" False", strings.TrimSpace(r.stdout))
	for rank := range 2 {
		res, err := c.stop(rank)
		require.NoError(t, err, "stop rank %d: %s", rank, res)
	}

	jobDir := filepath.Join(c.logDir, c.jobID)
	ctx := context.Background()
	doc, err := report.Doctor(ctx, jobDir, report.DoctorOptions{})
	require.NoError(t, err)
	text := doc.Text()
	t.Logf("copper-report doctor %s:\n%s", jobDir, text)
	assert.Equal(t, src, doc.Target, "the target, from the job's records")
	byCheck := map[string]report.Finding{}
	for _, f := range doc.Findings {
		byCheck[f.Check] = f
	}
	py, ok := byCheck[report.CheckPythonBytecode]
	require.True(t, ok, "doctor names the uncompiled module:\n%s", text)
	assert.Contains(t, py.Details, filepath.Join(src, "mypkg/core.py"))
	assert.Contains(t, py.Details, filepath.Join(src, "mypkg/__init__.py"))
	assert.NotContains(t, text, filepath.Join(src, "okpkg/__init__.py"), "okpkg was compiled")
	assert.Equal(t, "before the job, with the job's Python (the .pyc name carries its version): python -m compileall -q "+filepath.Join(src, "mypkg"), py.Fix)
	large, ok := byCheck[report.CheckLargeFiles]
	require.True(t, ok, "doctor names the large file:\n%s", text)
	assert.True(t, slices.ContainsFunc(large.Details, func(d string) bool {
		return strings.HasPrefix(d, filepath.Join(src, "big.bin")+" ")
	}), "large files: %q", large.Details)
	fan, ok := byCheck[report.CheckProbeFanout]
	require.True(t, ok, "doctor names the search-path fan-out:\n%s", text)
	assert.Contains(t, fan.Details, "libcopperprobe.so.1: missing in 9 directories, found in "+filepath.Join(src, "real"))
	assert.Contains(t, fan.Problem, filepath.Join(src, "e0")+" (")

	agg, err := report.Aggregate(ctx, jobDir, report.AggregateOptions{})
	require.NoError(t, err)
	tot := agg.Cluster.Totals
	assert.EqualValues(t, 2, tot.LargeFiles, "one node read big.bin and the library directly")
	assert.GreaterOrEqual(t, tot.LargeBytes, uint64(len(big)))
	assert.Positive(t, tot.IoctlTerminal, "isatty on big.bin")
	for _, e := range agg.Cluster.Errors {
		assert.NotEqual(t, "ENOTTY", e.Name, "terminal ioctls are not errors: %+v", e)
	}

	usage, err := report.Paths(ctx, jobDir, report.PathsOptions{UsageRoot: src}) // no --target
	require.NoError(t, err)
	assert.Equal(t, src, usage.Target)
	assert.Positive(t, usage.Coverage.ObservedFiles)
}
