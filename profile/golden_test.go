package profile

import (
	"bytes"
	"encoding/csv"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/cache"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenReport is a fixed report touching every column and both kinds
// of awkward path (CSV quoting, markdown pipes).
func goldenReport() Report {
	return Report{
		Host: "x1001c0s0b0n0", PID: 4242, Rank: 7, Root: false, Tag: TagRuntime,
		Target: "/lus/proj/conda env", Mount: "/tmp/copper-view",
		Time: time.Unix(1700000000, 0), Uptime: 12345678 * time.Microsecond,
		TopN: 2, PathsFull: true, SnapshotInterval: 30 * time.Second, MaxCacheable: 10 << 20, NegativeTTL: 2 * time.Second,
		Ops: []OpRow{
			{Op: "getattr", Calls: 120, Hits: 300, Misses: 40, Negative: 0, Coalesced: 5, Forwarded: 35,
				Timed: 120, TotalLatency: 6 * time.Millisecond, P50: 40 * time.Microsecond, P90: 70 * time.Microsecond,
				P99: 150 * time.Microsecond, Max: 1500 * time.Microsecond},
			{Op: "lookup", Calls: 200, Negative: 118, Errors: 118, Timed: 200, TotalLatency: 9 * time.Millisecond,
				P50: 30 * time.Microsecond, P90: 60 * time.Microsecond, P99: 90 * time.Microsecond, Max: 95 * time.Microsecond},
			{Op: "readdir", Calls: 3, Hits: 1, Misses: 2, Forwarded: 2, Timed: 3, TotalLatency: 300 * time.Microsecond,
				P50: 100 * time.Microsecond, P90: 101 * time.Microsecond, P99: 101 * time.Microsecond, Max: 101 * time.Microsecond},
			{Op: "readlink"},
			{Op: "open", Calls: 50, Timed: 50, TotalLatency: 50 * time.Microsecond, P50: time.Microsecond, P90: time.Microsecond,
				P99: 2 * time.Microsecond, Max: 2 * time.Microsecond},
			{Op: "read", Calls: 60, Hits: 10, Misses: 40, Coalesced: 1, Forwarded: 39, Bytes: 123456789, Timed: 60,
				TotalLatency: 1234567 * time.Nanosecond, P50: 9 * time.Microsecond, P90: 20 * time.Microsecond,
				P99: 400 * time.Microsecond, Max: 401 * time.Microsecond},
			{Op: "statfs"},
			{Op: "getxattr", Calls: 4, Errors: 4, Timed: 4, TotalLatency: 4 * time.Microsecond, P50: time.Microsecond,
				P90: time.Microsecond, P99: time.Microsecond, Max: time.Microsecond},
			{Op: "ioctl", Calls: 1, Timed: 1, TotalLatency: 3 * time.Millisecond, P50: 3 * time.Millisecond,
				P90: 3 * time.Millisecond, P99: 3 * time.Millisecond, Max: 3 * time.Millisecond},
			{Op: "write", Calls: 1, Errors: 1, Timed: 1, TotalLatency: 500, P50: 500, P90: 500, P99: 500, Max: 500},
		},
		Errors: []ErrorRow{
			{"lookup", syscall.ENOENT, 118}, {"getxattr", syscall.ENODATA, 4}, {"write", syscall.EROFS, 1},
		},
		TTL:           TTLCounts{Stores: 118, Serves: 900, Expires: 20, Clears: 1},
		IoctlExternal: 3,
		IoctlTerminal: 250,
		Large: LargeReads{Files: 2, Opens: 3, Bytes: 3 << 20, List: []LargeFile{
			{Path: "/bin/app, big", Size: 2 << 20, Opens: 2, Bytes: 2 << 20},
			{Path: "/lib/libtorch_cpu.so", Size: 1 << 20, Opens: 1, Bytes: 1 << 20}}},
		Ioctls: map[uint32]int64{2000: 1, 0x5401: 3},
		Cache: cache.Stats{BudgetBytes: 1 << 30, Bytes: 2048 + 4096 + 512 + 100,
			Data:     cache.TableStat{Name: "data", Entries: 2, Bytes: 4096},
			Tree:     cache.TableStat{Name: "tree", Entries: 1, Bytes: 512},
			Metadata: cache.TableStat{Name: "metadata", Entries: 20, Bytes: 2048},
			Negative: cache.TableStat{Name: "negative", Entries: 1, Bytes: 100},
			Links:    cache.TableStat{Name: "links", Entries: 0, Bytes: 0},
			DirFiles: cache.DirFileStats{Stored: 5, Bytes: 3000, Read: 2, Unread: 3}},
		TopPaths: []CategoryPaths{
			{Category: CategoryMetadata, Paths: []PathCount{
				{Path: "/usr/lib/python3.12/os.py", PathCounts: PathCounts{Events: 30, Hits: 29, Misses: 1}},
				{Path: `/odd, "quoted" | piped`, PathCounts: PathCounts{Events: 2, Hits: 1, Misses: 1}},
			}},
			{Category: CategoryData, Paths: []PathCount{
				{Path: "/usr/lib/python3.12/os.py", PathCounts: PathCounts{Events: 3, Hits: 2, Misses: 1}},
			}},
			{Category: CategoryTree},
			{Category: CategoryLink},
			{Category: CategoryMetadataTTL, Paths: []PathCount{
				{Path: "/usr/lib/python3.12/missing.so", PathCounts: PathCounts{Events: 5, Hits: 3, Misses: 2, Negative: 5,
					TTLStores: 2, TTLServes: 3, TTLExpires: 1}},
			}},
		},
		FullPaths: []FullPath{
			{Path: `/odd, "quoted" | piped`, Getattr: 2, Hits: 1, Misses: 1},
			{Path: "/usr/lib/python3.12/missing.so", Getattr: 5, Hits: 3, Misses: 2, ENOENT: 5},
			{Path: "/usr/lib/python3.12/os.py", Getattr: 30, Read: 3, Hits: 31, Misses: 2},
			{Path: "/usr/lib/python3.12/warm.py", Getattr: 1, Hits: 1},
		},
		PathsDropped: 0,
	}
}

func TestGoldenFiles(t *testing.T) {
	r := goldenReport()
	for _, tc := range []struct {
		file   string
		render func(io.Writer, Report) error
	}{
		{"operations.csv", WriteOperations},
		{"errors.csv", WriteErrors},
		{"aggregate.csv", WriteAggregate},
		{"top_paths.csv", WriteTopPaths},
		{"paths_full.csv", WritePathsFull},
		{"large_files.csv", WriteLargeFiles},
		{"cache_tables.csv", WriteCacheTables},
		{"summary.md", WriteSummary},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, tc.render(&buf, r))
			golden := filepath.Join("testdata", "golden", tc.file)
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./profile -run TestGoldenFiles -update to create it")
			assert.Equal(t, string(want), buf.String())
		})
	}
}

// The headers are the contract of docs/PROFILING.md, spelled out here
// once more so that a change to a constant fails a test.
func TestHeadersMatchContract(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "PROFILING.md"))
	require.NoError(t, err)
	for _, h := range []string{OperationsHeader, ErrorsHeader, AggregateHeader, TopPathsHeader, PathsFullHeader, LargeFilesHeader, CacheTablesHeader} {
		assert.Contains(t, string(doc), "```\n"+h+"\n```", "header %q is not in docs/PROFILING.md", h)
	}
	// Every aggregate metric is documented, in order.
	var names []string
	for _, kv := range AggregateRows(goldenReport()) {
		names = append(names, kv[0])
	}
	_, section, ok := strings.Cut(string(doc), "Rows, in this order:")
	require.True(t, ok, "docs/PROFILING.md lists no aggregate rows")
	section, _, _ = strings.Cut(section, "\n\n") // the list is one paragraph
	var documented []string
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	assert.Equal(t, names, documented)
}

// Every CSV row has as many fields as its header.
func TestCSVShapes(t *testing.T) {
	r := goldenReport()
	for _, render := range []func(io.Writer, Report) error{
		WriteOperations, WriteErrors, WriteAggregate, WriteTopPaths, WritePathsFull, WriteLargeFiles, WriteCacheTables,
	} {
		var buf bytes.Buffer
		require.NoError(t, render(&buf, r))
		recs, err := csv.NewReader(&buf).ReadAll() // errors on a ragged row
		require.NoError(t, err)
		require.NotEmpty(t, recs)
	}
}
