package report

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/profile"
)

// buildEnvTree creates the conda env of the fixture on the real
// filesystem under <target>/opt/conda/envs/torch and returns that root.
// torch/version.py is observed but deliberately absent ("gone").
func buildEnvTree(t *testing.T, target string) string {
	t.Helper()
	root := filepath.Join(target, envPrefix)
	sp := "lib/python3.11/site-packages/"
	for _, f := range []string{
		"LICENSE.txt",
		"bin/python3.11",
		"lib/libpython3.11.so.1.0",
		"lib/python3.11/os.py",
		"lib/python3.11/__pycache__/os.cpython-311.pyc",
		sp + "torch/__init__.py",
		sp + "torch/__pycache__/__init__.cpython-311.pyc",
		sp + "torch/_C.cpython-311-x86_64-linux-gnu.so",
		sp + "torch/lib/libtorch_cpu.so",
		sp + "torch/lib/libc10.so",
		sp + "numpy/__init__.py",
		sp + "numpy/__pycache__/__init__.cpython-311.pyc",
		sp + "numpy/core/__init__.py",
		sp + "numpy/core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so",
		"include/python3.11/Python.h",
		"conda-meta/history",
	} {
		writeTestFile(t, filepath.Join(root, f), "x")
	}
	require.NoError(t, os.Symlink("libpython3.11.so.1.0", filepath.Join(root, "lib/libpython3.so")))
	return root
}

func TestPaths(t *testing.T) {
	job := buildJob(t)
	target := filepath.Join(t.TempDir(), "target")
	root := buildEnvTree(t, target)

	res, err := Paths(context.Background(), job, PathsOptions{UsageRoot: root, Target: target})
	require.NoError(t, err)
	outDir := filepath.Join(job, "profiling", "cluster", "paths")
	assert.Equal(t, outDir, res.OutputDir)
	names := []string{FileAllPaths, FileUsedPaths, FileUnusedPaths, FileMissingProbes, FileRootsCounts, FilePathsSummary}
	require.Len(t, res.Files, len(names))
	for i, name := range names {
		assert.Equal(t, filepath.Join(outDir, name), res.Files[i])
		got := strings.ReplaceAll(string(readFile(t, res.Files[i])), target, "$TARGET")
		checkGolden(t, filepath.Join("paths", name), []byte(got))
	}
	noTempFiles(t, outDir)

	c := res.Coverage
	assert.Equal(t, 17, c.Files, "16 files and a symlink")
	assert.Equal(t, 14, c.Dirs)
	assert.Equal(t, 12, c.ObservedFiles)
	assert.Equal(t, 3, c.ObservedDirs, "site-packages, torch, numpy")
	assert.Equal(t, 22, c.Observed)
	assert.Equal(t, 2, c.OutsideRoot, "libc and ld.so.cache")
	assert.Equal(t, 3, c.MissingProbes)
	assert.Equal(t, 1, c.Gone, "torch/version.py")
	assert.False(t, c.TopPathsOnly)

	// used + unused = all, with no overlap.
	lines := func(name string) []string {
		return strings.Fields(string(readFile(t, filepath.Join(outDir, name))))
	}
	all, used, unused := lines(FileAllPaths), lines(FileUsedPaths), lines(FileUnusedPaths)
	assert.Len(t, all, c.Files+c.Dirs)
	assert.ElementsMatch(t, all, append(append([]string{}, used...), unused...))
	assert.IsIncreasing(t, all)
	assert.Contains(t, used, filepath.Join(root, "lib/libpython3.so"), "symlinks count as files")
	assert.Contains(t, unused, filepath.Join(root, "lib/python3.11/site-packages/torch/lib/libc10.so"))
	assert.Contains(t, res.Text(), "Observed files: 12 of 17 (70.59%)")
}

// With target "/" view paths are host paths; with only top_paths files
// the counts are flagged as a lower bound.
func TestPathsRootTargetTopPathsOnly(t *testing.T) {
	root := filepath.Join(t.TempDir(), "env")
	writeTestFile(t, filepath.Join(root, "lib", "a.so"), "x")
	writeTestFile(t, filepath.Join(root, "lib", "b.py"), "x")
	job := t.TempDir()
	writeTestFile(t, filepath.Join(job, "profiling", "final", "h-1"+suffixTopPaths),
		"category,path,total_events,cache_hits,cache_misses,negative_results,ttl_stores,ttl_serves,ttl_expires,ttl_clears\n"+
			"data,"+root+"/lib/a.so,5,4,1,0,0,0,0,0\n"+
			"metadata,"+root+"/lib/c.so,2,0,0,2,1,1,0,0\n")
	out := filepath.Join(t.TempDir(), "out")
	res, err := Paths(context.Background(), job, PathsOptions{UsageRoot: root, OutputDir: out, Target: "/"})
	require.NoError(t, err)
	assert.Equal(t, "/", res.Target)
	assert.True(t, res.Coverage.TopPathsOnly)
	assert.Equal(t, root+"/lib/a.so\n", string(readFile(t, filepath.Join(out, FileUsedPaths))))
	assert.Equal(t, root+"/lib/c.so\n", string(readFile(t, filepath.Join(out, FileMissingProbes))))
	assert.Equal(t, root+"/lib\t1\t3\t33.33%\n", string(readFile(t, filepath.Join(out, FileRootsCounts))))
	summary := string(readFile(t, filepath.Join(out, FilePathsSummary)))
	assert.Contains(t, summary, "Observed files: 1 of 2 (50.00%)")
	assert.Contains(t, summary, "Observed dirs: 0 of 1 (0.00%)")
	assert.Contains(t, summary, "lower bound")
}

// A symlinked usage root is followed; paths keep the name given.
func TestPathsSymlinkedRoot(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "real", "x.py"), "x")
	link := filepath.Join(dir, "env")
	require.NoError(t, os.Symlink("real", link))
	job := t.TempDir()
	writeTestFile(t, filepath.Join(job, "profiling", "final", "h-1"+suffixPathsFull),
		"path,getattr,readdir,readlink,read,hits,misses,enoent,result\n"+link+"/x.py,1,0,0,1,1,1,0,miss\n")
	res, err := Paths(context.Background(), job, PathsOptions{UsageRoot: link, Target: "/"})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Coverage.ObservedFiles)
	assert.Equal(t, link+"/x.py\n", string(readFile(t, filepath.Join(res.OutputDir, FileAllPaths))))
}

func TestPathsErrors(t *testing.T) {
	job := buildJob(t)
	file := filepath.Join(t.TempDir(), "f")
	writeTestFile(t, file, "x")
	tests := []struct {
		name string
		job  string
		opts PathsOptions
		want string
	}{
		{"no usage root", job, PathsOptions{}, "--usage-root is required"},
		{"usage root missing", job, PathsOptions{UsageRoot: filepath.Join(t.TempDir(), "nope")}, "usage root"},
		{"usage root is a file", job, PathsOptions{UsageRoot: file}, "is not a directory"},
		{"relative target", job, PathsOptions{UsageRoot: t.TempDir(), Target: "rel"}, `--target "rel"`},
		{"no final", t.TempDir(), PathsOptions{UsageRoot: t.TempDir()}, "has no profiling/ directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Paths(context.Background(), tt.job, tt.opts)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestReportedTarget(t *testing.T) {
	node := func(prefix, target string) *NodeProfile {
		m := &NodeMetrics{Text: map[string]string{}}
		if target != "" {
			m.Text["target"] = target
		}
		return &NodeProfile{Prefix: prefix, Metrics: m}
	}
	for _, tc := range []struct {
		name  string
		nodes []*NodeProfile
		want  string
		err   []string
	}{
		{"agree", []*NodeProfile{node("a-1", "/srv"), {Prefix: "b-2"}, node("c-3", "/srv")}, "/srv", nil},
		{"an older node without the record", []*NodeProfile{node("a-1", "/srv"), node("b-2", "")}, "/srv", nil},
		{"disagree", []*NodeProfile{node("a-1", "/srv"), node("b-2", "/other")}, "",
			[]string{"disagree", "a-1-profiling_aggregate.csv says /srv", "b-2-profiling_aggregate.csv says /other", "--target"}},
		{"no records", []*NodeProfile{node("a-1", "")}, "",
			[]string{"no --target given", "*-profiling_aggregate.csv in /job/profiling/final", `"target"`}},
		{"no nodes", nil, "", []string{"no --target given"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := reportedTarget(&JobProfile{JobDir: "/job", Source: FinalSource, Nodes: tc.nodes})
			for _, e := range tc.err {
				assert.ErrorContains(t, err, e)
			}
			if tc.err == nil {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestPathLine(t *testing.T) {
	assert.Equal(t, "/a b/c", pathLine("/a b/c"))
	assert.Equal(t, `"/a\nb"`, pathLine("/a\nb"))
}

func TestPathsDropped(t *testing.T) {
	root := t.TempDir()
	job := t.TempDir()
	final := filepath.Join(job, "profiling", "final")
	writeTestFile(t, filepath.Join(final, "h-1"+suffixPathsFull), fullHeader+"\n")
	writeTestFile(t, filepath.Join(final, "h-1"+suffixMetrics), "metric,value\nprofile_paths_dropped,17\n")
	res, err := Paths(context.Background(), job, PathsOptions{UsageRoot: root, Target: "/"})
	require.NoError(t, err)
	assert.Equal(t, uint64(17), res.Coverage.PathsDropped)
	assert.Contains(t, string(readFile(t, filepath.Join(res.OutputDir, FilePathsSummary))), "left out 17 paths")

	agg, err := Aggregate(context.Background(), job, AggregateOptions{})
	require.NoError(t, err)
	assert.Contains(t, agg.Cluster.Warnings, "node h-1: paths_full dropped 17 paths (memory bound); its path list is incomplete")
}

// copper-report paths needs no --target: the nodes record theirs in the
// aggregate file (the real writer's), and an explicit --target still wins.
func TestPathsTargetFromTheJobsRecords(t *testing.T) {
	target := filepath.Join(t.TempDir(), "target")
	root := filepath.Join(target, "env")
	writeTestFile(t, filepath.Join(root, "lib", "a.py"), "x")
	writeTestFile(t, filepath.Join(root, "lib", "b.py"), "x")
	job := t.TempDir()
	final := filepath.Join(job, "profiling", "final")
	for i, host := range []string{"n0", "n1"} {
		r := profile.Report{Host: host, PID: 10 + i, Rank: i, Root: i == 0, Tag: profile.TagFinal, Target: target, Time: time.Unix(1_767_225_600, 0),
			PathsFull: true, FullPaths: []profile.FullPath{{Path: "/env/lib/a.py", Read: 1, Misses: 1}}}
		prefix := filepath.Join(final, host+"-"+strconv.Itoa(10+i))
		writeWith(t, prefix+suffixMetrics, profile.WriteAggregate, r)
		writeWith(t, prefix+suffixPathsFull, profile.WritePathsFull, r)
	}

	res, err := Paths(context.Background(), job, PathsOptions{UsageRoot: root})
	require.NoError(t, err)
	assert.Equal(t, target, res.Target, "from the nodes' aggregate files")
	assert.Equal(t, 1, res.Coverage.ObservedFiles)
	assert.Equal(t, filepath.Join(root, "lib", "a.py")+"\n", string(readFile(t, filepath.Join(res.OutputDir, FileUsedPaths))))

	res, err = Paths(context.Background(), job, PathsOptions{UsageRoot: root, Target: "/", OutputDir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, "/", res.Target, "an explicit --target wins")
	assert.Zero(t, res.Coverage.ObservedFiles)
}

// writeWith writes path with one of profile's writers.
func writeWith(t *testing.T, path string, write func(io.Writer, profile.Report) error, r profile.Report) {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, write(&b, r))
	writeTestFile(t, path, b.String())
}
