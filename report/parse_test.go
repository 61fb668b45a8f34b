package report

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/profile"
)

// parseAny runs the parser of one file kind and reports the row count.
type parserFunc func(input string) (rows int, err error)

var parsers = map[string]parserFunc{
	"operations": func(s string) (int, error) {
		r, err := ParseOperations(strings.NewReader(s), "n-1-profiling_operations.csv")
		return len(r), err
	},
	"errors": func(s string) (int, error) {
		r, err := ParseErrors(strings.NewReader(s), "n-1-profiling_errors.csv")
		return len(r), err
	},
	"metrics": func(s string) (int, error) {
		m, err := ParseNodeMetrics(strings.NewReader(s), "n-1-profiling_aggregate.csv")
		if err != nil {
			return 0, err
		}
		return len(m.Counts) + len(m.Seconds) + len(m.Text), nil
	},
	"top_paths": func(s string) (int, error) {
		r, err := ParseTopPaths(strings.NewReader(s), "n-1-profiling_top_paths.csv")
		return len(r), err
	},
	"paths_full": func(s string) (int, error) {
		r, err := ParsePathsFull(strings.NewReader(s), "n-1-profiling_paths_full.csv")
		return len(r), err
	},
	"large_files": func(s string) (int, error) {
		r, err := ParseLargeFiles(strings.NewReader(s), "n-1-profiling_large_files.csv")
		return len(r), err
	},
	"cache_tables": func(s string) (int, error) {
		r, err := ParseCacheTables(strings.NewReader(s), "n-1-cache_tables.csv")
		return len(r), err
	},
}

const (
	copper10OpsHeader = "operation,total_calls,cache_hits,cache_misses,negative_results,avg_latency_us,total_latency_s"
	topHeader         = profile.TopPathsHeader // the writer's
	fullHeader        = profile.PathsFullHeader
	opsRow            = "getattr,10,9,1,2,1.500,0.000015,2,0,0,1,0,1.000,2.000,3.000,4.000"
)

func TestParsers(t *testing.T) {
	tests := []struct {
		parser string
		name   string
		input  string
		rows   int
		errs   []string // substrings of the error; nil = success
	}{
		{"operations", "good", opsHeader + "\n" + opsRow + "\nread,1,1,0,0,1,0.000001,0,0,0,0,4096,1,1,1,1\n", 2, nil},
		{"operations", "header only", opsHeader + "\n", 0, nil},
		{"operations", "Copper 1.0 columns only", copper10OpsHeader + "\ngetattr,10,9,1,2,1.5,0.000015\n", 1, nil},
		{"operations", "extra trailing column", opsHeader + ",queue_us\n" + opsRow + ",7\n", 1, nil},
		{"operations", "BOM", "\uFEFF" + opsHeader + "\n" + opsRow + "\n", 1, nil},
		{"operations", "empty file", "", 0, []string{"n-1-profiling_operations.csv: empty file"}},
		{"operations", "missing required column", "operation,total_calls\n", 0, []string{"n-1-profiling_operations.csv:1:", `missing "cache_hits"`}},
		{"operations", "renamed column", strings.Replace(opsHeader, "cache_misses", "misses", 1) + "\n", 0, []string{":1:", `column 4 is "misses", expected "cache_misses"`}},
		{"operations", "unknown column before known ones", copper10OpsHeader + ",queue_us,errors\n", 0, []string{":1:", `column 8 is "queue_us", expected "errors"`}},
		{"operations", "bad count", opsHeader + "\n" + opsRow + "\nread,abc,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n", 0, []string{"n-1-profiling_operations.csv:3: column total_calls:", `"abc"`}},
		{"operations", "negative count", opsHeader + "\nread,-1,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n", 0, []string{":2: column total_calls:"}},
		{"operations", "bad latency", opsHeader + "\nread,1,0,0,0,NaN,0,0,0,0,0,0,0,0,0,0\n", 0, []string{":2: column avg_latency_us:", "non-negative number"}},
		{"operations", "short row", opsHeader + "\n" + opsRow + "\nread,1,2\n", 0, []string{"n-1-profiling_operations.csv:3:", "wrong number of fields"}},
		{"operations", "empty operation", opsHeader + "\n,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n", 0, []string{":2: column operation: empty"}},
		{"operations", "duplicate operation", opsHeader + "\n" + opsRow + "\n" + opsRow + "\n", 0, []string{":3:", `"getattr" repeated (first on line 2)`}},
		{"operations", "bad quoting", opsHeader + "\n\"getattr,1\n", 0, []string{"n-1-profiling_operations.csv:"}},

		{"errors", "good", "operation,errno,name,count\ngetattr,2,ENOENT,118\nwrite,30,EROFS,1\n", 2, nil},
		{"errors", "bad errno", "operation,errno,name,count\ngetattr,two,ENOENT,1\n", 0, []string{"n-1-profiling_errors.csv:2: column errno:"}},
		{"errors", "wrong header", "op,errno,name,count\n", 0, []string{"n-1-profiling_errors.csv:1:", `"op"`}},

		{"metrics", "good", "metric,value\nhostname,n\npid,12\nrank,3\nrole,child\nuptime_s,1.5\ntotal_cache_hits,7\nfuture,x\n", 5, nil}, // pid and rank are fields
		{"metrics", "bad count", "metric,value\ntotal_cache_hits,7.5\n", 0, []string{"n-1-profiling_aggregate.csv:2: metric total_cache_hits:", `"7.5"`}},
		{"metrics", "bad rank", "metric,value\nrank,-1\n", 0, []string{":2: metric rank:"}},
		{"metrics", "bad seconds", "metric,value\nuptime_s,soon\n", 0, []string{":2: metric uptime_s:"}},
		{"metrics", "duplicate", "metric,value\nrank,1\nrank,2\n", 0, []string{":3:", `"rank" repeated`}},
		{"metrics", "extra column", "metric,value,unit\nuptime_s,1,s\n", 1, nil},
		{"metrics", "swapped header", "value,metric\n", 0, []string{":1:"}},

		{"top_paths", "good", topHeader + "\nmetadata,/a/b.py,3,2,1,0,0,0,0,0\nmetadata_ttl,/a/c.so,2,0,0,2,1,1,0,0\n", 2, nil},
		{"top_paths", "relative path", topHeader + "\nmetadata,a/b.py,3,2,1,0,0,0,0,0\n", 0, []string{"n-1-profiling_top_paths.csv:2: column path:", "absolute"}},
		{"top_paths", "quoted path with comma", topHeader + "\ndata,\"/a,b\",3,2,1,0,0,0,0,0\n", 1, nil},
		{"top_paths", "bad ttl", topHeader + "\nmetadata,/a,3,2,1,0,0,0,0,x\n", 0, []string{":2: column ttl_clears:"}},

		{"large_files", "good", profile.LargeFilesHeader + "\n/bin/app,220200960,4,220200960\n\"/a,b\",1,1,1\n", 2, nil},
		{"large_files", "header only", profile.LargeFilesHeader + "\n", 0, nil},
		{"large_files", "relative path", profile.LargeFilesHeader + "\nbin/app,1,1,1\n", 0, []string{"n-1-profiling_large_files.csv:2: column path:", "absolute"}},
		{"large_files", "bad bytes", profile.LargeFilesHeader + "\n/a,1,1,-5\n", 0, []string{":2: column bytes_read:"}},
		{"large_files", "renamed column", "path,size,opens,bytes_read\n", 0, []string{":1:", `expected "size_bytes"`}},
		{"paths_full", "good", fullHeader + "\n/a,1,0,0,0,1,0,0,hit,0\n/b,1,0,0,0,0,0,1,enoent,0\n", 2, nil},
		{"paths_full", "without refetches (older writer)", "path,getattr,readdir,readlink,read,hits,misses,enoent,result\n/a,1,0,0,0,1,0,0,hit\n", 1, nil},
		{"paths_full", "bad refetches", fullHeader + "\n/a,1,0,0,0,1,0,0,hit,x\n", 0, []string{":2: column refetches:"}},
		{"paths_full", "bad result", fullHeader + "\n/a,1,0,0,0,1,0,0,maybe,0\n", 0, []string{"n-1-profiling_paths_full.csv:2: column result:", `"maybe"`}},
		{"paths_full", "missing result column", "path,getattr,readdir,readlink,read,hits,misses,enoent\n", 0, []string{":1:", `missing "result"`}},

		{"cache_tables", "good", "table,entries,bytes\ndata,1,2\ntree,0,0\n", 2, nil},
		{"cache_tables", "duplicate", "table,entries,bytes\ndata,1,2\ndata,1,2\n", 0, []string{":3:", `"data" repeated`}},
		{"cache_tables", "bad bytes", "table,entries,bytes\ndata,1,2k\n", 0, []string{"n-1-cache_tables.csv:2: column bytes:"}},
	}
	for _, tt := range tests {
		t.Run(tt.parser+"/"+tt.name, func(t *testing.T) {
			rows, err := parsers[tt.parser](tt.input)
			if tt.errs == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.rows, rows)
				return
			}
			require.Error(t, err)
			for _, want := range tt.errs {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	ops, err := ParseOperations(strings.NewReader(opsHeader+"\n"+opsRow+"\n"), "x")
	require.NoError(t, err)
	assert.Equal(t, []OperationStats{{
		Operation: "getattr", TotalCalls: 10, CacheHits: 9, CacheMisses: 1, NegativeResults: 2,
		AvgLatencyUs: 1.5, TotalLatencyS: 0.000015, Errors: 2, BackendOps: 1,
		P50Us: 1, P90Us: 2, P99Us: 3, MaxUs: 4,
	}}, ops)

	m, err := ParseNodeMetrics(strings.NewReader("metric,value\nhostname,h\npid,12\nrank,3\nrole,child\nsnapshot_tag,final\nuptime_s,1.5\ntotal_cache_hits,7\nprofile_paths_full,true\n"), "x")
	require.NoError(t, err)
	assert.Equal(t, "h", m.Hostname)
	assert.Equal(t, int64(12), m.PID)
	assert.Equal(t, int64(3), m.Rank)
	assert.Equal(t, "child", m.Role)
	assert.Equal(t, "final", m.SnapshotTag)
	assert.Equal(t, 1.5, m.Seconds["uptime_s"])
	assert.Equal(t, uint64(7), m.Counts["total_cache_hits"])
	assert.Equal(t, "true", m.Text["profile_paths_full"])

	m, err = ParseNodeMetrics(strings.NewReader("metric,value\n"), "x")
	require.NoError(t, err)
	assert.Equal(t, int64(-1), m.Rank, "absent rank")

	full, err := ParsePathsFull(strings.NewReader(fullHeader+"\n/a,1,2,3,4,5,6,7,miss,8\n"), "x")
	require.NoError(t, err)
	assert.Equal(t, uint64(10), full[0].Events())
}
