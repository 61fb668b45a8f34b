package profile

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestSnapshotWritesTheContractFiles(t *testing.T) {
	for _, full := range []bool{false, true} {
		c, fn := newTestCollector(t, func(cfg *Config) { cfg.PathsFull = full; cfg.TopN = 3 })
		fn.set(2)
		c.OnOp("lookup", syscall.ENOENT, time.Millisecond)
		c.Observe(node.Observation{Op: op.Getattr, Path: "/x", Outcome: node.OutcomeMiss, Errno: syscall.ENOENT})
		require.NoError(t, c.Snapshot("mytag"))

		want := []string{"h-42-profiling_aggregate.csv", "h-42-profiling_errors.csv", "h-42-profiling_large_files.csv", "h-42-profiling_operations.csv",
			"h-42-profiling_summary.md", "h-42-profiling_top_paths.csv"}
		if full {
			want = append(want, "h-42-profiling_paths_full.csv")
			sort.Strings(want)
		}
		pdir := filepath.Join(c.cfg.JobDir, "profiling", "mytag")
		assert.Equal(t, want, listDir(t, pdir), "paths_full=%v: no temporary files left", full)
		assert.Equal(t, []string{"h-42-cache_tables.csv"}, listDir(t, filepath.Join(c.cfg.JobDir, "tables", "mytag")))

		rows := testkit.ReadCSV(t, filepath.Join(pdir, "h-42-profiling_operations.csv"), OperationsHeader)
		assert.Equal(t, []string{"lookup", "1", "0", "0", "1"}, rows[1][:5])
		agg := testkit.ReadCSV(t, filepath.Join(pdir, "h-42-profiling_aggregate.csv"), AggregateHeader)
		assert.Equal(t, []string{"snapshot_tag", "mytag"}, agg[4])
		testkit.ReadCSV(t, filepath.Join(pdir, "h-42-profiling_top_paths.csv"), TopPathsHeader)
		testkit.ReadCSV(t, filepath.Join(pdir, "h-42-profiling_errors.csv"), ErrorsHeader)
		fi, err := os.Stat(filepath.Join(pdir, "h-42-profiling_summary.md"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

		// A newer snapshot of the same tag replaces the older one.
		c.OnOp("lookup", 0, time.Millisecond)
		require.NoError(t, c.Snapshot("mytag"))
		rows = testkit.ReadCSV(t, filepath.Join(pdir, "h-42-profiling_operations.csv"), OperationsHeader)
		assert.Equal(t, "2", rows[1][1])
		assert.Equal(t, want, listDir(t, pdir))
	}
}

func TestWriteFinal(t *testing.T) {
	c, _ := newTestCollector(t, nil)
	require.NoError(t, c.WriteFinal())
	agg := testkit.ReadCSV(t, filepath.Join(c.cfg.JobDir, "profiling", "final", "h-42-profiling_aggregate.csv"), AggregateHeader)
	assert.Equal(t, []string{"snapshot_tag", "final"}, agg[4])
	assert.FileExists(t, filepath.Join(c.cfg.JobDir, "tables", "final", "h-42-cache_tables.csv"))
}

func TestSnapshotErrors(t *testing.T) {
	c, _ := newTestCollector(t, func(cfg *Config) { cfg.JobDir = "" })
	assert.ErrorContains(t, c.Snapshot("x"), "no job directory")

	// An unwritable job directory fails naming the file; nothing is left.
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o644))
	c, _ = newTestCollector(t, func(cfg *Config) { cfg.JobDir = blocker })
	assert.ErrorContains(t, c.Snapshot("x"), "profile output directory")
}

func TestWriteAtomicLeavesOldFileOnFailure(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeAtomic(dir, "f.csv", func(w io.Writer) error { _, err := io.WriteString(w, "old\n"); return err }))
	boom := errors.New("render failed")
	err := writeAtomic(dir, "f.csv", func(w io.Writer) error {
		_, _ = io.WriteString(w, "partial")
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.ErrorContains(t, err, filepath.Join(dir, "f.csv"))
	b, err := os.ReadFile(filepath.Join(dir, "f.csv"))
	require.NoError(t, err)
	assert.Equal(t, "old\n", string(b))
	assert.Equal(t, []string{"f.csv"}, listDir(t, dir), "the temporary file is removed")
}

func TestValidTag(t *testing.T) {
	for _, tc := range []struct {
		tag string
		ok  bool
	}{
		{"ioctl-snapshot", true}, {"before_import.2", true}, {"A", true}, {strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {".hidden", false}, {"..", false}, {"a/b", false},
		{"a b", false}, {"final", false}, {"cluster", false}, {"ünï", false},
	} {
		err := ValidTag(tc.tag)
		assert.Equal(t, tc.ok, err == nil, "tag %q: %v", tc.tag, err)
	}
}

// Accepted tags are single, plain path components.
func FuzzValidTag(f *testing.F) {
	for _, seed := range []string{"ioctl-snapshot", "..", "a/b", ".x", "final", "x\x00y"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		if ValidTag(tag) != nil {
			return
		}
		if filepath.Base(tag) != tag || filepath.Clean(tag) != tag || strings.HasPrefix(tag, ".") {
			t.Fatalf("ValidTag accepted %q", tag)
		}
	})
}

// Any path survives the CSV writers: read back, it is the same string
// in a row of the header's width.
func FuzzPathCSVRoundTrip(f *testing.F) {
	for _, seed := range []string{"/a", `/odd, "quoted"`, "/new\nline", "/cr\r\n", "/\x00nul", "/ünï|cödé"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r := Report{
			TopPaths:  []CategoryPaths{{Category: CategoryData, Paths: []PathCount{{Path: path, PathCounts: PathCounts{Events: 1}}}}},
			FullPaths: []FullPath{{Path: path, Hits: 1}},
		}
		for _, w := range []struct {
			render func(io.Writer, Report) error
			col    int
			width  int
		}{{WriteTopPaths, 1, 10}, {WritePathsFull, 0, 10}} {
			var buf bytes.Buffer
			require.NoError(t, w.render(&buf, r))
			recs, err := csv.NewReader(&buf).ReadAll()
			require.NoError(t, err)
			require.Len(t, recs, 2)
			require.Len(t, recs[1], w.width)
			// encoding/csv reads \r\n inside quotes as \n.
			require.Equal(t, strings.ReplaceAll(path, "\r\n", "\n"), recs[1][w.col])
		}
	})
}
