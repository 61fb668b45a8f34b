package profile

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/profile/schema"
)

// Column headers of the files in docs/PROFILING.md (schema's table).
const (
	OperationsHeader  = schema.OperationsHeader
	ErrorsHeader      = schema.ErrorsHeader
	AggregateHeader   = schema.AggregateHeader
	TopPathsHeader    = schema.TopPathsHeader
	PathsFullHeader   = schema.PathsFullHeader
	LargeFilesHeader  = schema.LargeFilesHeader
	CacheTablesHeader = schema.CacheTablesHeader
)

// Role is "root" for a tree's root, else "child".
func (r Report) Role() string {
	if r.Root {
		return "root"
	}
	return "child"
}

// Totals sums the operation rows.
func (r Report) Totals() OpRow {
	var t OpRow
	for _, o := range r.Ops {
		t.Calls += o.Calls
		t.Hits += o.Hits
		t.Misses += o.Misses
		t.Negative += o.Negative
		t.Errors += o.Errors
		t.Coalesced += o.Coalesced
		t.Forwarded += o.Forwarded
		t.Backend += o.Backend
		t.Bytes += o.Bytes
		t.Timed += o.Timed
		t.TotalLatency += o.TotalLatency
	}
	return t
}

func micros(d time.Duration) string  { return strconv.FormatFloat(float64(d)/1e3, 'f', 3, 64) }
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 6, 64) }
func itoa(n int64) string            { return strconv.FormatInt(n, 10) }
func utoa(n uint64) string           { return strconv.FormatUint(n, 10) }

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// writeCSV writes header (already comma-joined) and rows, quoting fields
// as RFC 4180 requires (paths may hold commas, quotes or newlines).
func writeCSV(w io.Writer, header string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(strings.Split(header, ",")); err != nil {
		return err
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

// WriteOperations writes profiling_operations.csv.
func WriteOperations(w io.Writer, r Report) error {
	rows := make([][]string, 0, len(r.Ops))
	for _, o := range r.Ops {
		rows = append(rows, []string{
			o.Op, itoa(o.Calls), itoa(o.Hits), itoa(o.Misses), itoa(o.Negative),
			micros(o.AvgLatency()), seconds(o.TotalLatency), itoa(o.Errors), itoa(o.Coalesced),
			itoa(o.Forwarded), itoa(o.Backend), itoa(o.Bytes),
			micros(o.P50), micros(o.P90), micros(o.P99), micros(o.Max),
		})
	}
	return writeCSV(w, OperationsHeader, rows)
}

// ErrnoName is the symbolic name of an errno ("ENOENT"), or "E<n>".
func ErrnoName(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return "E" + strconv.Itoa(int(e))
}

// WriteErrors writes profiling_errors.csv.
func WriteErrors(w io.Writer, r Report) error {
	rows := make([][]string, 0, len(r.Errors))
	for _, e := range r.Errors {
		rows = append(rows, []string{e.Op, strconv.Itoa(int(e.Errno)), ErrnoName(e.Errno), itoa(e.Count)})
	}
	return writeCSV(w, ErrorsHeader, rows)
}

// AggregateRows are the metric,value rows of profiling_aggregate.csv.
func AggregateRows(r Report) [][2]string {
	t := r.Totals()
	return [][2]string{
		{schema.MetricHostname, r.Host},
		{schema.MetricPID, strconv.Itoa(r.PID)},
		{schema.MetricRank, strconv.Itoa(r.Rank)},
		{schema.MetricRole, r.Role()},
		{schema.MetricSnapshotTag, r.Tag},
		{schema.MetricSnapshotUnix, itoa(r.Time.Unix())},
		{schema.MetricUptime, strconv.FormatFloat(r.Uptime.Seconds(), 'f', 3, 64)},
		{schema.MetricTarget, r.Target},
		{schema.MetricMount, r.Mount},
		{schema.MetricMaxCacheable, itoa(r.MaxCacheable)},
		{schema.MetricOperations, itoa(t.Calls)},
		{schema.MetricCacheHits, itoa(t.Hits)},
		{schema.MetricCacheMisses, itoa(t.Misses)},
		{schema.MetricNegative, itoa(t.Negative)},
		{schema.MetricCoalesced, itoa(t.Coalesced)},
		{schema.MetricForwarded, itoa(t.Forwarded)},
		{schema.MetricBackendOps, itoa(t.Backend)},
		{schema.MetricBytesServed, itoa(t.Bytes)},
		{schema.MetricLargeFiles, itoa(r.Large.Files)},
		{schema.MetricLargeOpens, itoa(r.Large.Opens)},
		{schema.MetricLargeBytes, itoa(r.Large.Bytes)},
		{schema.MetricTTLStores, itoa(r.TTL.Stores)},
		{schema.MetricTTLServes, itoa(r.TTL.Serves)},
		{schema.MetricTTLExpires, itoa(r.TTL.Expires)},
		{schema.MetricTTLClears, itoa(r.TTL.Clears)},
		{schema.MetricLatency, seconds(t.TotalLatency)},
		{schema.MetricIoctlExternal, itoa(r.IoctlExternal)},
		{schema.MetricIoctlTerminal, itoa(r.IoctlTerminal)},
		{schema.MetricCacheBytes, itoa(r.Cache.Bytes)},
		{schema.MetricCacheBudget, itoa(r.Cache.BudgetBytes)},
		{schema.MetricDirFilesStored, utoa(r.Cache.DirFiles.Stored)},
		{schema.MetricDirFilesBytes, utoa(r.Cache.DirFiles.Bytes)},
		{schema.MetricDirFilesRead, utoa(r.Cache.DirFiles.Read)},
		{schema.MetricDirFilesUnread, utoa(r.Cache.DirFiles.Unread)},
		{schema.MetricTopN, strconv.Itoa(r.TopN)},
		{schema.MetricPathsFull, boolDigit(r.PathsFull)},
		{schema.MetricPathsDropped, itoa(r.PathsDropped)},
		{schema.MetricLargeDropped, itoa(r.Large.Dropped)},
	}
}

// WriteAggregate writes profiling_aggregate.csv.
func WriteAggregate(w io.Writer, r Report) error {
	var rows [][]string
	for _, kv := range AggregateRows(r) {
		rows = append(rows, []string{kv[0], kv[1]})
	}
	return writeCSV(w, AggregateHeader, rows)
}

// WriteTopPaths writes profiling_top_paths.csv.
func WriteTopPaths(w io.Writer, r Report) error {
	var rows [][]string
	for _, cp := range r.TopPaths {
		for _, p := range cp.Paths {
			rows = append(rows, []string{
				cp.Category, p.Path, itoa(p.Events), itoa(p.Hits), itoa(p.Misses), itoa(p.Negative),
				itoa(p.TTLStores), itoa(p.TTLServes), itoa(p.TTLExpires), itoa(p.TTLClears),
			})
		}
	}
	return writeCSV(w, TopPathsHeader, rows)
}

// WritePathsFull writes profiling_paths_full.csv.
func WritePathsFull(w io.Writer, r Report) error {
	rows := make([][]string, 0, len(r.FullPaths))
	for _, p := range r.FullPaths {
		rows = append(rows, []string{
			p.Path, itoa(p.Getattr), itoa(p.Readdir), itoa(p.Readlink), itoa(p.Read),
			itoa(p.Hits), itoa(p.Misses), itoa(p.ENOENT), p.Result(), itoa(p.Refetches),
		})
	}
	return writeCSV(w, PathsFullHeader, rows)
}

// WriteLargeFiles writes profiling_large_files.csv: the files over
// max_cacheable_bytes this node read straight from the host.
func WriteLargeFiles(w io.Writer, r Report) error {
	rows := make([][]string, 0, len(r.Large.List))
	for _, f := range r.Large.List {
		rows = append(rows, []string{f.Path, itoa(f.Size), itoa(f.Opens), itoa(f.Bytes)})
	}
	return writeCSV(w, LargeFilesHeader, rows)
}

// WriteCacheTables writes tables/<tag>/<P>-cache_tables.csv.
func WriteCacheTables(w io.Writer, r Report) error {
	names := cache.TableNames()
	var rows [][]string
	for i, t := range r.Cache.Tables() {
		rows = append(rows, []string{names[i], strconv.Itoa(t.Entries), itoa(t.Bytes)})
	}
	return writeCSV(w, CacheTablesHeader, rows)
}

func percent(num, den int64) string {
	if den == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(100*float64(num)/float64(den), 'f', 2, 64) + "%"
}

// mdCell makes text safe inside a markdown table cell.
func mdCell(s string) string {
	s = strings.NewReplacer("|", `\|`, "\n", `\n`, "\r", `\r`, "`", "'").Replace(s)
	return "`" + s + "`"
}

// WriteSummary writes profiling_summary.md.
func WriteSummary(w io.Writer, r Report) error {
	b := bufio.NewWriter(w)
	t := r.Totals()
	fmt.Fprintf(b, "# copper profiling: %s pid %d, rank %d (%s)\n\n", r.Host, r.PID, r.Rank, r.Role())
	fmt.Fprintf(b, "Snapshot `%s` at %s, uptime %.3f s.\n\n", r.Tag, r.Time.UTC().Format(time.RFC3339), r.Uptime.Seconds())

	fmt.Fprintf(b, "## Settings\n\n| setting | value |\n|---|---|\n")
	fmt.Fprintf(b, "| target | %s |\n", mdCell(r.Target))
	fmt.Fprintf(b, "| mount | %s |\n", mdCell(r.Mount))
	fmt.Fprintf(b, "| profile_top_n | %d |\n", r.TopN)
	fmt.Fprintf(b, "| profile_paths_full | %t |\n", r.PathsFull)
	fmt.Fprintf(b, "| profile_snapshot_interval_s | %d |\n", int64(r.SnapshotInterval/time.Second))
	fmt.Fprintf(b, "| max_cacheable_bytes | %d |\n", r.MaxCacheable)
	fmt.Fprintf(b, "| md_enoent_ttl_ms | %d |\n\n", r.NegativeTTL.Milliseconds())

	fmt.Fprintf(b, "## Operations\n\n")
	fmt.Fprintf(b, "| operation | calls | errors | negative | hits | misses | coalesced | forwarded | backend | bytes | avg µs | p50 µs | p90 µs | p99 µs | max µs |\n")
	fmt.Fprintf(b, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, o := range r.Ops {
		fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s |\n",
			o.Op, o.Calls, o.Errors, o.Negative, o.Hits, o.Misses, o.Coalesced, o.Forwarded, o.Backend, o.Bytes,
			micros(o.AvgLatency()), micros(o.P50), micros(o.P90), micros(o.P99), micros(o.Max))
	}
	fmt.Fprintf(b, "| **total** | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | | | | |\n\n",
		t.Calls, t.Errors, t.Negative, t.Hits, t.Misses, t.Coalesced, t.Forwarded, t.Backend, t.Bytes, micros(t.AvgLatency()))

	fmt.Fprintf(b, "## Derived metrics\n\n")
	fmt.Fprintf(b, "- cache hit rate (node answers from cache): %s (%d of %d)\n", percent(t.Hits, t.Hits+t.Misses), t.Hits, t.Hits+t.Misses)
	fmt.Fprintf(b, "- negative rate (FUSE answers ENOENT): %s (%d of %d)\n", percent(t.Negative, t.Calls), t.Negative, t.Calls)
	fmt.Fprintf(b, "- coalescing ratio (misses that waited on another asker's fetch): %s (%d of %d)\n", percent(t.Coalesced, t.Misses), t.Coalesced, t.Misses)
	fmt.Fprintf(b, "- ENOENT TTL: %d stores, %d serves, %d expires, %d clears\n", r.TTL.Stores, r.TTL.Serves, r.TTL.Expires, r.TTL.Clears)
	fmt.Fprintf(b, "- ioctls: %d external, %d terminal (isatty probes answered ENOTTY; not errors)\n", r.IoctlExternal, r.IoctlTerminal)
	fmt.Fprintf(b, "- read directly (over max_cacheable_bytes, outside the tree): %d files, %d opens, %d bytes\n",
		r.Large.Files, r.Large.Opens, r.Large.Bytes)
	fmt.Fprintf(b, "- cache: %d of %d bytes\n", r.Cache.Bytes, r.Cache.BudgetBytes)
	if r.PathsFull {
		fmt.Fprintf(b, "- full path list: %d paths, %d dropped\n", len(r.FullPaths), r.PathsDropped)
	}

	fmt.Fprintf(b, "\n## Top paths\n")
	if r.TopN <= 0 {
		fmt.Fprintf(b, "\nNot kept (profile_top_n = 0).\n")
	}
	for _, cp := range r.TopPaths {
		if r.TopN <= 0 {
			break
		}
		fmt.Fprintf(b, "\n### %s\n\n", cp.Category)
		if len(cp.Paths) == 0 {
			fmt.Fprintf(b, "None.\n")
			continue
		}
		if cp.Category == CategoryMetadataTTL {
			fmt.Fprintf(b, "| path | events | stores | serves | expires | clears |\n|---|--:|--:|--:|--:|--:|\n")
			for _, p := range cp.Paths {
				fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d |\n", mdCell(p.Path), p.Events, p.TTLStores, p.TTLServes, p.TTLExpires, p.TTLClears)
			}
			continue
		}
		fmt.Fprintf(b, "| path | events | hits | misses | negative |\n|---|--:|--:|--:|--:|\n")
		for _, p := range cp.Paths {
			fmt.Fprintf(b, "| %s | %d | %d | %d | %d |\n", mdCell(p.Path), p.Events, p.Hits, p.Misses, p.Negative)
		}
	}
	return b.Flush()
}
