package report

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/profile"
)

// FuzzProfileRoundTrip: profile writes the files a node leaves behind and
// report reads them after the job; they are two ends of one format. Any
// path and counts profile writes, report reads back unchanged (paths in
// encoding/csv's form: \r\n inside a field reads as \n), and so does the
// aggregate's host name.
func FuzzProfileRoundTrip(f *testing.F) {
	for _, p := range []string{"/a", `/odd, "quoted"`, "/new\nline", "/cr\r\n", "/\x00nul", "/ünï|cödé", "", " /lead", "#/x"} {
		f.Add(p, int64(3), int64(2), int64(1), uint32(7), "x1000c0s0b0n0", uint32(4101))
	}
	f.Add("/a", int64(0), int64(0), int64(0), uint32(0), "host,with \"quotes\"\r\n", uint32(1))
	f.Fuzz(func(t *testing.T, path string, events, hits, enoent int64, entries uint32, host string, pid uint32) {
		if op.CheckPath(path) != 0 {
			return // a node records only view paths the kernel can send
		}
		events, hits, enoent = abs(events), abs(hits), abs(enoent)
		counts := profile.PathCounts{Events: events, Hits: hits, Misses: events / 2, Negative: enoent, TTLStores: 1}
		r := profile.Report{
			Host: host, PID: int(pid), Rank: 1, Tag: "final", Time: time.Unix(1_767_225_600, 0),
			TopPaths:  []profile.CategoryPaths{{Category: profile.CategoryData, Paths: []profile.PathCount{{Path: path, PathCounts: counts}}}},
			FullPaths: []profile.FullPath{{Path: path, Read: events, Hits: hits, Misses: events / 2, ENOENT: enoent, Refetches: hits / 3}},
			Target:    host, // any text
			Large: profile.LargeReads{Files: 1, Opens: hits, Bytes: events, List: []profile.LargeFile{
				{Path: path, Size: events, Opens: hits, Bytes: enoent}}},
			Cache: cache.Stats{Bytes: int64(entries) << 10, Data: cache.TableStat{Name: "data", Entries: int(entries), Bytes: int64(entries) << 10}},
		}
		want := fieldForm(path)

		var buf bytes.Buffer
		require.NoError(t, profile.WriteAggregate(&buf, r))
		m, err := ParseNodeMetrics(&buf, "n-1-profiling_aggregate.csv")
		require.NoError(t, err, "profile wrote an aggregate file report cannot read")
		require.Equal(t, fieldForm(host), m.Hostname)
		require.Equal(t, [2]int64{int64(pid), 1}, [2]int64{m.PID, m.Rank})
		require.Equal(t, uint64(entries)<<10, m.Counts["cache_bytes"])
		require.Equal(t, fieldForm(host), m.Text["target"])
		require.Equal(t, [3]uint64{1, uint64(hits), uint64(events)},
			[3]uint64{m.Counts["large_direct_files"], m.Counts["large_direct_opens"], m.Counts["large_direct_bytes"]})

		buf.Reset()
		require.NoError(t, profile.WriteLargeFiles(&buf, r))
		large, err := ParseLargeFiles(&buf, "n-1-profiling_large_files.csv")
		require.NoError(t, err, "profile wrote a large-files file report cannot read")
		require.Equal(t, []LargeFile{{Path: want, SizeBytes: uint64(events), Opens: uint64(hits), BytesRead: uint64(enoent)}}, large)

		buf.Reset()
		require.NoError(t, profile.WriteTopPaths(&buf, r))
		top, err := ParseTopPaths(&buf, "n-1-profiling_top_paths.csv")
		require.NoError(t, err, "profile wrote a top-paths file report cannot read")
		require.Len(t, top, 1)
		require.Equal(t, PathStats{Category: profile.CategoryData, Path: want, TotalEvents: uint64(events), CacheHits: uint64(hits),
			CacheMisses: uint64(events / 2), NegativeResults: uint64(enoent), TTLStores: 1}, top[0])

		buf.Reset()
		require.NoError(t, profile.WritePathsFull(&buf, r))
		full, err := ParsePathsFull(&buf, "n-1-profiling_paths_full.csv")
		require.NoError(t, err, "profile wrote a paths-full file report cannot read")
		require.Len(t, full, 1)
		require.Equal(t, want, full[0].Path)
		require.Equal(t, [4]uint64{uint64(events), uint64(hits), uint64(events / 2), uint64(enoent)},
			[4]uint64{full[0].Read, full[0].Hits, full[0].Misses, full[0].ENOENT})
		require.Equal(t, r.FullPaths[0].Result(), full[0].Result)
		require.Equal(t, uint64(hits/3), full[0].Refetches)

		buf.Reset()
		require.NoError(t, profile.WriteCacheTables(&buf, r))
		tables, err := ParseCacheTables(&buf, "n-1-cache_tables.csv")
		require.NoError(t, err, "profile wrote a cache-tables file report cannot read")
		var data *TableUsage
		for i := range tables {
			if tables[i].Table == "data" {
				data = &tables[i]
			}
		}
		require.NotNil(t, data, "no data table in %v", tables)
		require.Equal(t, TableUsage{Table: "data", Entries: uint64(entries), Bytes: uint64(entries) << 10}, *data)
	})
}

func abs(n int64) int64 {
	if n < 0 {
		return -(n + 1) // never overflows
	}
	return n
}

// fieldForm is how encoding/csv gives back a quoted field.
func fieldForm(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte("\r\n"), []byte("\n")))
}
