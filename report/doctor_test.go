package report

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/profile"
)

// writeNode writes one node's profiling files into job with profile's
// own writers: the fixtures are what a node writes.
func writeNode(t *testing.T, job string, r profile.Report) {
	t.Helper()
	if r.Time.IsZero() {
		r.Time = time.Unix(1_767_225_600, 0)
	}
	r.Tag = profile.TagFinal
	prefix := filepath.Join(job, "profiling", "final", r.Host+"-"+strconv.Itoa(r.PID))
	for suffix, write := range map[string]func(io.Writer, profile.Report) error{
		suffixMetrics:    profile.WriteAggregate,
		suffixOperations: profile.WriteOperations,
		suffixErrors:     profile.WriteErrors,
		suffixTopPaths:   profile.WriteTopPaths,
		suffixLargeFiles: profile.WriteLargeFiles,
	} {
		writeWith(t, prefix+suffix, write, r)
	}
	if r.PathsFull {
		writeWith(t, prefix+suffixPathsFull, profile.WritePathsFull, r)
	}
}

// nodeReport is a node of a job on /lus/env with a full path list.
func nodeReport(rank int, paths ...profile.FullPath) profile.Report {
	return profile.Report{Host: fmt.Sprintf("n%d", rank), PID: 100 + rank, Rank: rank, Root: rank == 0,
		Target: "/lus/env", MaxCacheable: 64 << 20, PathsFull: true, FullPaths: paths}
}

func read(p string) profile.FullPath { return profile.FullPath{Path: p, Read: 1, Misses: 1} }
func stat(p string) profile.FullPath { return profile.FullPath{Path: p, Getattr: 1, Misses: 1} }
func absent(p string) profile.FullPath {
	return profile.FullPath{Path: p, Getattr: 1, Misses: 1, ENOENT: 1}
}

// searchPath probes name in n directories where it is missing, then
// finds it in found.
func searchPath(name string, n int, found string) []profile.FullPath {
	var out []profile.FullPath
	for i := range n {
		out = append(out, absent(fmt.Sprintf("/d%02d/%s", i, name)))
	}
	return append(out, stat(found+"/"+name))
}

func TestDoctor(t *testing.T) {
	const sp = "/lib/python3.11/site-packages"
	libtorch := profile.LargeReads{Files: 1, Opens: 2, Bytes: 120 << 20, List: []profile.LargeFile{
		{Path: sp + "/torch/lib/libtorch_cpu.so", Size: 120 << 20, Opens: 2, Bytes: 120 << 20}}}
	for _, tc := range []struct {
		name   string
		nodes  []profile.Report
		checks []string // the findings, in order
		text   []string // in Text()
		absent []string // not in Text()
	}{
		{
			name: "clean: compiled modules, one lookup each",
			nodes: []profile.Report{nodeReport(0, read(sp+"/a/__pycache__/m.cpython-311.pyc"), stat(sp+"/a/m.py"),
				absent(sp+"/a/__pycache__/n.cpython-311.pyc"))},
			text: []string{"no problems found", "target /lus/env"},
		},
		{
			name: "py read without pyc",
			nodes: []profile.Report{nodeReport(0, read(sp+"/pkg/core.py"), read(sp+"/pkg/sub/util.py"),
				absent(sp+"/pkg/__pycache__/core.cpython-311.pyc"),
				read(sp+"/ok/fine.py"), read(sp+"/ok/__pycache__/fine.cpython-311.pyc"))},
			checks: []string{CheckPythonBytecode},
			text: []string{"2 .py files read with no .pyc in __pycache__", "/lus/env" + sp + "/pkg/core.py",
				"/lus/env" + sp + "/pkg/sub/util.py", "python -m compileall -q /lus/env" + sp + "/pkg\n"},
			absent: []string{"fine.py"},
		},
		{
			name: "large files read directly on two nodes",
			nodes: func() []profile.Report {
				a, b := nodeReport(0), nodeReport(1)
				a.Large, b.Large = libtorch, libtorch
				return []profile.Report{a, b}
			}(),
			checks: []string{CheckLargeFiles},
			text: []string{"1 file over max_cacheable_bytes (64.0 MiB) read straight from the target: 4 opens on 2 nodes, 240.0 MiB in total",
				"/lus/env" + sp + "/torch/lib/libtorch_cpu.so (120.0 MiB; read on 2 nodes, 4 opens, 240.0 MiB in all)",
				"large_files = chunked", "raise max_cacheable_bytes to at least 125829120"},
		},
		{
			name:   "probe fan-out over a long LD_LIBRARY_PATH",
			nodes:  []profile.Report{nodeReport(0, searchPath("libmpi.so.12", 9, "/mpi/lib")...)},
			checks: []string{CheckProbeFanout},
			text: []string{"1 name each looked for in 8 or more directories where it was missing: 9 failed lookups",
				"libmpi.so.12: missing in 9 directories, found in /lus/env/mpi/lib", "/lus/env/d00 (1)", "shorten the search path"},
		},
		{
			name: "a loader's suffix probes next to the module are no fan-out",
			nodes: func() []profile.Report {
				var paths []profile.FullPath
				for i := range 12 {
					pkg := fmt.Sprintf("/pkgs/p%02d", i)
					paths = append(paths, read(pkg+"/__init__.py"), read(pkg+"/__pycache__/__init__.cpython-311.pyc"),
						absent(pkg+"/__init__.abi3.so"), absent(pkg+"/__init__.so"))
				}
				return []profile.Report{nodeReport(0, paths...)}
			}(),
			text: []string{"no problems found"},
		},
		{
			name:  "short search path is no fan-out",
			nodes: []profile.Report{nodeReport(0, searchPath("libmpi.so.12", 7, "/mpi/lib")...)},
			text:  []string{"no problems found"},
		},
		{
			name: "root fetched paths again; a child's refetches are not the backend's",
			nodes: []profile.Report{
				nodeReport(0, profile.FullPath{Path: "/hot.so", Getattr: 5, Read: 5, Hits: 6, Misses: 4, Refetches: 2},
					profile.FullPath{Path: "/gone.py", Getattr: 3, Misses: 3, ENOENT: 3, Refetches: 2}),
				nodeReport(1, profile.FullPath{Path: "/child.so", Getattr: 2, Misses: 2, Refetches: 1}),
			},
			checks: []string{CheckRefetch},
			text: []string{"2 paths went to the backend more than once on a tree's root: 4 extra backend fetches (1 of the paths missing)",
				"/lus/env/hot.so: 2 extra fetches (existing)", "/lus/env/gone.py: 2 extra fetches (missing)", "md_enoent_ttl_ms", "cache_memory_bytes"},
			absent: []string{"child.so"},
		},
		{
			name: "every problem at once, in check order",
			nodes: func() []profile.Report {
				paths := append(searchPath("libz.so.1", 10, "/z"), read("/m.py"),
					profile.FullPath{Path: "/x.so", Getattr: 2, Misses: 2, Refetches: 1})
				r := nodeReport(0, paths...)
				r.Large = libtorch
				return []profile.Report{r}
			}(),
			checks: []string{CheckPythonBytecode, CheckLargeFiles, CheckProbeFanout, CheckRefetch},
			text:   []string{"4 problems found"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := t.TempDir()
			for _, r := range tc.nodes {
				writeNode(t, job, r)
			}
			res, err := Doctor(context.Background(), job, DoctorOptions{})
			require.NoError(t, err)
			var checks []string
			for _, f := range res.Findings {
				checks = append(checks, f.Check)
				assert.NotEmpty(t, f.Fix, "%s names its fix", f.Check)
			}
			assert.Equal(t, tc.checks, checks)
			text := res.Text()
			for _, want := range tc.text {
				assert.Contains(t, text, want)
			}
			for _, no := range tc.absent {
				assert.NotContains(t, text, no)
			}
		})
	}
}

// Without a recorded target the paths stay view paths, and say so;
// without path lists the path checks say what to turn on.
func TestDoctorNotes(t *testing.T) {
	job := t.TempDir()
	r := nodeReport(0, read("/pkg/m.py"))
	r.Target = ""
	writeNode(t, job, r)
	res, err := Doctor(context.Background(), job, DoctorOptions{})
	require.NoError(t, err)
	text := res.Text()
	assert.Contains(t, text, "target unknown (view paths shown)")
	assert.Contains(t, text, "python -m compileall -q /pkg\n")
	assert.Contains(t, text, "no --target given")

	job = t.TempDir()
	r = nodeReport(0)
	r.PathsFull = false
	writeNode(t, job, r)
	res, err = Doctor(context.Background(), job, DoctorOptions{})
	require.NoError(t, err)
	assert.Contains(t, res.Text(), "no node wrote path lists; run with profile_paths_full (-A) or profile_top_n (-N)")
	assert.Contains(t, res.Text(), "1 of 1 tree root wrote no paths_full file")

	// top_paths alone can leave the .pyc out: no python finding, a note.
	job = t.TempDir()
	r = nodeReport(0)
	r.PathsFull, r.TopN = false, 5
	r.TopPaths = []profile.CategoryPaths{{Category: profile.CategoryData, Paths: []profile.PathCount{
		{Path: "/pkg/m.py", PathCounts: profile.PathCounts{Events: 3, Misses: 1, Hits: 2}}}}}
	writeNode(t, job, r)
	res, err = Doctor(context.Background(), job, DoctorOptions{})
	require.NoError(t, err)
	assert.Empty(t, res.Findings)
	assert.Contains(t, res.Text(), "python-bytecode: needs every path a node saw; run with profile_paths_full (-A)")
	assert.Contains(t, res.Text(), "probe-fanout: only top_paths files")

	_, err = Doctor(context.Background(), t.TempDir(), DoctorOptions{})
	assert.ErrorContains(t, err, "has no profiling/ directory")
}

func TestCommonDirAndShellWord(t *testing.T) {
	assert.Equal(t, "/a/b", commonDir([]string{"/a/b/c.py", "/a/b/d/e.py"}))
	assert.Equal(t, "/", commonDir([]string{"/a/c.py", "/b/e.py"}))
	assert.Equal(t, "/a/b", commonDir([]string{"/a/b/c.py"}))
	assert.Equal(t, "/a/b", shellWord("/a/b"))
	assert.Equal(t, `'/a b/it'\''s'`, shellWord("/a b/it's"))
	assert.True(t, strings.HasPrefix(shellWord(""), "'"))
}
