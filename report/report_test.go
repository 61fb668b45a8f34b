package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/ from the current output")

// checkGolden compares got with testdata/golden/<name> (or rewrites it
// with -update).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run: go test ./report -run %s -update", t.Name())
	assert.Equal(t, string(want), string(got), "output differs from %s; if intended, rerun with -update", path)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

// noTempFiles checks that atomic writes left nothing behind.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), "."), "temp file left: %s", e.Name())
	}
}

func TestAggregate(t *testing.T) {
	job := buildJob(t)
	res, err := Aggregate(context.Background(), job, AggregateOptions{})
	require.NoError(t, err)

	outDir := filepath.Join(job, "profiling", "cluster")
	names := []string{"cluster-profiling_aggregate.csv", "cluster-profiling_operations.csv", "cluster-profiling_summary.md", "cluster-profiling_chart.svg"}
	require.Len(t, res.Files, len(names))
	for i, name := range names {
		assert.Equal(t, filepath.Join(outDir, name), res.Files[i])
		checkGolden(t, filepath.Join("aggregate", name), readFile(t, res.Files[i]))
	}
	assert.Equal(t, res.Files[2], res.SummaryPath)
	noTempFiles(t, outDir)

	c := res.Cluster
	assert.Equal(t, 3, c.RanksWithAggregate)
	assert.Equal(t, uint64(2964+2684+2483), c.Totals.Operations)
	assert.Equal(t, uint64(186), c.Totals.BackendOps)
	assert.Equal(t, uint64(92+25), c.Totals.Forwarded)
	assert.InDelta(t, 0.055974+0.065987+0.037797, c.Totals.LatencyS, 1e-9)
	assert.Empty(t, c.Warnings)

	// The fixture is consistent: per-operation sums equal the aggregate totals.
	var calls, hits, misses, negative uint64
	for _, o := range c.Operations {
		calls += o.TotalCalls
		hits += o.CacheHits
		misses += o.CacheMisses
		negative += o.NegativeResults
	}
	assert.Equal(t, c.Totals.Operations, calls)
	assert.Equal(t, c.Totals.CacheHits, hits)
	assert.Equal(t, c.Totals.CacheMisses, misses)
	assert.Equal(t, c.Totals.NegativeResults, negative)

	ops := map[string]OperationStats{}
	var order []string
	for _, o := range c.Operations {
		ops[o.Operation] = o
		order = append(order, o.Operation)
	}
	assert.Equal(t, []string{"getattr", "lookup", "readdir", "readlink", "open", "read", "statfs", "getxattr", "ioctl", "write", "mkdir"}, order, "the writer's row order (op.ProfileRowOrder)")
	assert.Equal(t, uint64(3300), ops["getattr"].TotalCalls)
	assert.Equal(t, 150.0, ops["getattr"].P99Us, "p99 is the max of the nodes' p99")
	assert.Equal(t, 3000.0, ops["read"].MaxUs)
	assert.InDelta(t, (0.015+0.0165+0.01)*1e6/3300, ops["getattr"].AvgLatencyUs, 1e-9)

	classes := map[string]PathClass{}
	for _, k := range c.Classes {
		classes[k.Name] = k
	}
	assert.Equal(t, envPrefix, classes[ClassEnvironmentPrefix].Example)
	assert.Equal(t, sitePkgs+"/torch/lib/libtorch_cpu.so", classes[ClassSharedLibrary].Example)
	assert.Equal(t, sitePkgs+"/torch/__init__.cpython-311-x86_64-linux-gnu.so", classes[ClassNegativeProbe].Example)
	assert.Equal(t, 3, classes[ClassNegativeProbe].Paths)
	assert.Equal(t, sitePkgs+"/torch/__init__.py", classes[ClassPythonSource].Example)
	total := 0
	for _, k := range c.Classes[1:] {
		total += k.Paths
	}
	assert.Equal(t, c.ObservedPaths, total, "exclusive classes partition the observed paths")
	assert.Equal(t, 22, c.ObservedPaths)

	// The cluster CSVs read back with the per-node parsers.
	back, err := ParseOperations(bytes.NewReader(readFile(t, res.Files[1])), res.Files[1])
	require.NoError(t, err)
	assert.Len(t, back, len(c.Operations))
	m, err := ParseNodeMetrics(bytes.NewReader(readFile(t, res.Files[0])), res.Files[0])
	require.NoError(t, err)
	assert.Equal(t, c.Totals.CacheHits, m.Counts["total_cache_hits"])

	text := res.Text()
	assert.Contains(t, text, res.SummaryPath)
	assert.Contains(t, text, "ranks with aggregate files: 3")
}

func TestAggregateSnapshotSource(t *testing.T) {
	job := buildJob(t)
	res, err := Aggregate(context.Background(), job, AggregateOptions{Source: "runtime-snapshot", TopN: 3})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(job, "profiling", "cluster", "cluster-runtime-snapshot-profiling_summary.md"), res.SummaryPath)
	assert.Equal(t, 0, res.Cluster.RanksWithAggregate)
	require.Len(t, res.Cluster.Warnings, 1)
	assert.Contains(t, res.Cluster.Warnings[0], "no profiling_aggregate file")
	summary := string(readFile(t, res.SummaryPath))
	assert.Contains(t, summary, "- Ranks with aggregate files: 0")
	assert.Contains(t, summary, "No top_paths files")

	res, err = Aggregate(context.Background(), job, AggregateOptions{Prefix: "mine"})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(job, "profiling", "cluster", "mine-profiling_summary.md"), res.SummaryPath)
}

// svgBars counts the <rect> elements of each class, failing on bad XML.
func svgBars(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	bars := map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var root string
	titles := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "chart is not well-formed XML")
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
				assert.Equal(t, "http://www.w3.org/2000/svg", se.Name.Space)
			}
			if se.Name.Local == "title" {
				titles++
			}
			for _, a := range se.Attr {
				if se.Name.Local == "rect" && a.Name.Local == "class" {
					bars[a.Value]++
				}
			}
		}
	}
	assert.Equal(t, "svg", root)
	assert.Positive(t, titles)
	return bars
}

func TestChartSVG(t *testing.T) {
	tests := []struct {
		name string
		ops  []OperationStats
		bars int
	}{
		{"none", nil, 0},
		{"zero calls are skipped", []OperationStats{{Operation: "getattr"}, {Operation: "read", TotalCalls: 5, P99Us: 12.5}}, 1},
		{"escaped names", []OperationStats{{Operation: "a<b&c", TotalCalls: 1}, {Operation: "read", TotalCalls: 1e9, P99Us: 1e6}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cluster{Source: FinalSource, Operations: tt.ops}
			bars := svgBars(t, c.chartSVG())
			assert.Equal(t, tt.bars, bars["bar-calls"])
			assert.Equal(t, tt.bars, bars["bar-p99"])
		})
	}

	job := buildJob(t)
	res, err := Aggregate(context.Background(), job, AggregateOptions{})
	require.NoError(t, err)
	bars := svgBars(t, readFile(t, res.Files[3]))
	assert.Equal(t, 11, bars["bar-calls"], "operations with calls > 0")
	assert.Equal(t, 11, bars["bar-p99"])
}

func TestNiceScale(t *testing.T) {
	tests := []struct{ max, top, step float64 }{
		{0, 1, 0.2},
		{3, 3, 1},
		{3300, 4000, 1000},
		{800, 800, 200},
		{0.5, 0.5, 0.1},
		{12345, 15000, 5000},
	}
	for _, tt := range tests {
		top, step := niceScale(tt.max)
		assert.InDelta(t, tt.top, top, 1e-9, "top for %v", tt.max)
		assert.InDelta(t, tt.step, step, 1e-9, "step for %v", tt.max)
		assert.GreaterOrEqual(t, top, tt.max)
	}
}

func TestClassifyPath(t *testing.T) {
	tests := []struct {
		path     string
		negative bool
		want     string
	}{
		{"/e/lib/libc.so.6", false, ClassSharedLibrary},
		{"/e/lib/libfoo.so.1.2.3", false, ClassSharedLibrary},
		{"/e/torch/_C.cpython-311-x86_64-linux-gnu.so", false, ClassSharedLibrary},
		{"/e/torch/_C.cpython-311-x86_64-linux-gnu.so", true, ClassNegativeProbe},
		{"/e/lib/libfoo.so.bak", false, ClassOther},
		{"/e/lib/.so", false, ClassOther},
		{"/e/lib/x.so.", false, ClassOther},
		{"/e/etc/ld.so.conf", false, ClassOther},
		{"/e/torch/__pycache__/x.cpython-311.pyc", false, ClassPythonBytecode},
		{"/e/torch/__pycache__", false, ClassPythonBytecode},
		{"/e/torch/__pycache__/odd", false, ClassPythonBytecode},
		{"/e/torch/__init__.py", false, ClassPythonSource},
		{"/e/torch.py", true, ClassNegativeProbe},
		{"/e/torch", false, ClassOther},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ClassifyPath(tt.path, tt.negative), tt.path)
	}
}

func TestEnvironmentPrefix(t *testing.T) {
	obs := func(paths ...string) map[string]observation {
		m := map[string]observation{}
		for _, p := range paths {
			m[p] = observation{events: 1}
		}
		return m
	}
	tests := []struct {
		name string
		obs  map[string]observation
		want string
	}{
		{"single file", obs("/a/b/c.py"), "/a/b"},
		{"common prefix", obs("/env/lib/a.py", "/env/lib/b.py", "/env/bin/python"), "/env"},
		{"observed prefix dir counts", obs("/env", "/env/a", "/env/b"), "/env"},
		{"stray probe outside", obs("/etc/x", "/env/1", "/env/2", "/env/3", "/env/4", "/env/5", "/env/6", "/env/7", "/env/8", "/env/9"), "/env"},
		{"no majority", obs("/a/x", "/b/x"), "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			classes := classify(tt.obs)
			require.NotEmpty(t, classes)
			assert.Equal(t, ClassEnvironmentPrefix, classes[0].Name)
			assert.Equal(t, tt.want, classes[0].Example)
		})
	}
	assert.Nil(t, classify(nil))
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string) string // returns the job dir to use
		source string
		want   []string
	}{
		{"missing job dir", func(t *testing.T, dir string) string { return filepath.Join(dir, "nope") }, "",
			[]string{"does not exist"}},
		{"job dir is a file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "file")
			writeTestFile(t, p, "x")
			return p
		}, "", []string{"is not a directory"}},
		{"empty dir", func(t *testing.T, dir string) string { return dir }, "",
			[]string{"has no profiling/ directory", "profile_metrics / -P"}},
		{"no final dir, snapshot present", func(t *testing.T, dir string) string {
			writeTestFile(t, filepath.Join(dir, "profiling", "pre-destroy", "h-1"+suffixOperations), opsHeader+"\n")
			return dir
		}, "", []string{"no profiling CSV under " + "%DIR%/profiling/final", "has copper been stopped?", "found pre-destroy; pick one with --source"}},
		{"final dir without CSVs", func(t *testing.T, dir string) string {
			writeTestFile(t, filepath.Join(dir, "profiling", "final", "notes.txt"), "x")
			return dir
		}, "", []string{"no profiling CSV under", "was profiling enabled"}},
		{"bad source", func(t *testing.T, dir string) string { return dir }, "../etc", []string{`--source "../etc"`}},
		{"cluster is not a source", func(t *testing.T, dir string) string { return dir }, "cluster", []string{`--source "cluster"`}},
		{"bad number names file and line", func(t *testing.T, dir string) string {
			writeTestFile(t, filepath.Join(dir, "profiling", "final", "h-1"+suffixOperations), opsHeader+"\ngetattr,1,1,0,0,1.0,0.1,0,0,0,0,0,1,1,1,1\nread,x,1,0,0,1.0,0.1,0,0,0,0,0,1,1,1,1\n")
			return dir
		}, "", []string{"h-1-profiling_operations.csv:3: column total_calls:", `"x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			job := tt.setup(t, dir)
			_, err := Aggregate(context.Background(), job, AggregateOptions{Source: tt.source})
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), strings.ReplaceAll(w, "%DIR%", dir))
			}
		})
	}
}

func TestAggregateBadPrefix(t *testing.T) {
	_, err := Aggregate(context.Background(), buildJob(t), AggregateOptions{Prefix: "a/b"})
	assert.ErrorContains(t, err, `--prefix "a/b"`)
}

func TestAggregateCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Aggregate(ctx, buildJob(t), AggregateOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestCache(t *testing.T) {
	job := buildJob(t)
	res, err := Cache(context.Background(), job, CacheOptions{})
	require.NoError(t, err)
	outDir := filepath.Join(job, "profiling", "cluster")
	require.Equal(t, []string{filepath.Join(outDir, "cache_usage_summary.txt"), filepath.Join(outDir, "cache_usage_summary.csv")}, res.Files)
	checkGolden(t, "cache/cache_usage_summary.txt", readFile(t, res.Files[0]))
	checkGolden(t, "cache/cache_usage_summary.csv", readFile(t, res.Files[1]))
	noTempFiles(t, outDir)

	var names []string
	for _, r := range res.Rows {
		names = append(names, r.Table)
	}
	assert.Equal(t, []string{"data", "tree", "metadata", "negative", "links", "combined"}, names)
	assert.Equal(t, CacheRow{Table: "data", FilesFound: 3, Bytes: 38379520 + 36962304 + 35913728, Entries: 728 + 700 + 690}, res.Rows[0])
	combined := res.Rows[len(res.Rows)-1]
	var sum uint64
	for _, r := range res.Rows[:len(res.Rows)-1] {
		sum += r.Bytes
	}
	assert.Equal(t, sum, combined.Bytes)
	assert.Contains(t, res.Text(), "combined")
}

func TestCacheErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Cache(context.Background(), dir, CacheOptions{})
	assert.ErrorContains(t, err, "has no tables/ directory")

	writeTestFile(t, filepath.Join(dir, "tables", "pre-destroy", "h-1"+suffixCacheTables), "table,entries,bytes\ndata,1,2\n")
	_, err = Cache(context.Background(), dir, CacheOptions{})
	assert.ErrorContains(t, err, "no cache table CSV")
	assert.ErrorContains(t, err, "found pre-destroy; pick one with --source")

	res, err := Cache(context.Background(), dir, CacheOptions{Source: "pre-destroy"})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "profiling", "cluster", "pre-destroy-cache_usage_summary.txt"), res.Files[0])

	writeTestFile(t, filepath.Join(dir, "tables", "final", "h-1"+suffixCacheTables), "table,entries,bytes\ndata,1,-2\n")
	_, err = Cache(context.Background(), dir, CacheOptions{})
	assert.ErrorContains(t, err, "h-1-cache_tables.csv:2: column bytes:")
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {38379520, "36.6 MiB"}, {1 << 40, "1.0 TiB"}, {^uint64(0), "16.0 EiB"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, humanBytes(tt.n))
	}
}
