package report

import (
	"fmt"
	"io"
	"strconv"

	"github.com/hpc-copper/copper/profile/schema"
)

// OperationStats is one row of <P>-profiling_operations.csv. Copper 1.0
// files carry only the first seven columns; the rest are then zero.
type OperationStats struct {
	Operation       string
	TotalCalls      uint64
	CacheHits       uint64
	CacheMisses     uint64
	NegativeResults uint64
	AvgLatencyUs    float64
	TotalLatencyS   float64
	Errors          uint64
	CoalescedWaits  uint64
	Forwarded       uint64
	BackendOps      uint64
	BytesServed     uint64
	P50Us           float64
	P90Us           float64
	P99Us           float64
	MaxUs           float64
}

// ParseOperations reads a <P>-profiling_operations.csv; name is used in errors.
func ParseOperations(r io.Reader, name string) ([]OperationStats, error) {
	header, rows, err := readCSV(r, name, operationsSchema)
	if err != nil {
		return nil, err
	}
	out := make([]OperationStats, 0, len(rows))
	seen := make(map[string]int, len(rows))
	for _, row := range rows {
		f := fieldScanner{name: name, header: header, row: row}
		s := OperationStats{
			Operation:       f.nonEmpty(0),
			TotalCalls:      f.count(1),
			CacheHits:       f.count(2),
			CacheMisses:     f.count(3),
			NegativeResults: f.count(4),
			AvgLatencyUs:    f.real(5),
			TotalLatencyS:   f.real(6),
			Errors:          f.count(7),
			CoalescedWaits:  f.count(8),
			Forwarded:       f.count(9),
			BackendOps:      f.count(10),
			BytesServed:     f.count(11),
			P50Us:           f.real(12),
			P90Us:           f.real(13),
			P99Us:           f.real(14),
			MaxUs:           f.real(15),
		}
		if f.err != nil {
			return nil, f.err
		}
		if first, dup := seen[s.Operation]; dup {
			return nil, fmt.Errorf("%s:%d: operation %q repeated (first on line %d)", name, row.line, s.Operation, first)
		}
		seen[s.Operation] = row.line
		out = append(out, s)
	}
	return out, nil
}

// ErrorCount is one row of <P>-profiling_errors.csv.
type ErrorCount struct {
	Operation string
	Errno     int64
	Name      string // e.g. ENOENT
	Count     uint64
}

// ParseErrors reads a <P>-profiling_errors.csv.
func ParseErrors(r io.Reader, name string) ([]ErrorCount, error) {
	header, rows, err := readCSV(r, name, errorsSchema)
	if err != nil {
		return nil, err
	}
	out := make([]ErrorCount, 0, len(rows))
	for _, row := range rows {
		f := fieldScanner{name: name, header: header, row: row}
		e := ErrorCount{Operation: f.nonEmpty(0), Errno: f.integer(1), Name: f.nonEmpty(2), Count: f.count(3)}
		if f.err != nil {
			return nil, f.err
		}
		out = append(out, e)
	}
	return out, nil
}

// NodeMetrics is a <P>-profiling_aggregate.csv (metric,value rows).
type NodeMetrics struct {
	Hostname    string
	PID         int64 // -1 when absent (Copper 1.0 files)
	Rank        int64 // -1 when absent
	Role        string
	SnapshotTag string
	// Counts holds every counter metric present (total_cache_hits, ...),
	// Seconds the time metrics (uptime_s, snapshot_unix_s,
	// total_measured_latency_seconds), Text everything else, including
	// metrics newer than this version, by metric name.
	Counts  map[string]uint64
	Seconds map[string]float64
	Text    map[string]string
}

type metricKind int

const (
	metricText metricKind = iota
	metricInt
	metricCount
	metricSeconds
)

// metricKindOf says how a known metric's value must parse; unknown metrics
// are kept as text so newer writers do not break older readers.
func metricKindOf(name string) metricKind {
	switch name {
	case schema.MetricPID, schema.MetricRank:
		return metricInt
	case schema.MetricSnapshotUnix, schema.MetricUptime, schema.MetricLatency:
		return metricSeconds
	case schema.MetricOperations, schema.MetricCacheHits, schema.MetricCacheMisses,
		schema.MetricNegative, schema.MetricCoalesced, schema.MetricForwarded,
		schema.MetricBackendOps, schema.MetricBytesServed, schema.MetricTTLStores,
		schema.MetricTTLServes, schema.MetricTTLExpires, schema.MetricTTLClears,
		schema.MetricIoctlExternal, schema.MetricIoctlTerminal, schema.MetricCacheBytes,
		schema.MetricCacheBudget, schema.MetricTopN, schema.MetricPathsDropped,
		schema.MetricMaxCacheable, schema.MetricLargeFiles, schema.MetricLargeOpens,
		schema.MetricLargeBytes, schema.MetricLargeDropped, schema.MetricDirFilesStored,
		schema.MetricDirFilesBytes, schema.MetricDirFilesRead, schema.MetricDirFilesUnread:
		return metricCount
	}
	return metricText
}

// ParseNodeMetrics reads a <P>-profiling_aggregate.csv.
func ParseNodeMetrics(r io.Reader, name string) (*NodeMetrics, error) {
	header, rows, err := readCSV(r, name, metricsSchema)
	if err != nil {
		return nil, err
	}
	m := &NodeMetrics{PID: -1, Rank: -1, Counts: map[string]uint64{}, Seconds: map[string]float64{}, Text: map[string]string{}}
	seen := make(map[string]int, len(rows))
	for _, row := range rows {
		f := fieldScanner{name: name, header: header, row: row}
		metric := f.nonEmpty(0)
		if f.err != nil {
			return nil, f.err
		}
		if first, dup := seen[metric]; dup {
			return nil, fmt.Errorf("%s:%d: metric %q repeated (first on line %d)", name, row.line, metric, first)
		}
		seen[metric] = row.line
		value := f.text(1)
		switch metricKindOf(metric) {
		case metricInt:
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("%s:%d: metric %s: %q is not a non-negative integer", name, row.line, metric, value)
			}
			if metric == "pid" {
				m.PID = v
			} else {
				m.Rank = v
			}
		case metricCount:
			v, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: metric %s: %q is not a non-negative integer", name, row.line, metric, value)
			}
			m.Counts[metric] = v
		case metricSeconds:
			v, err := parseNonNegative(value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: metric %s: %w", name, row.line, metric, err)
			}
			m.Seconds[metric] = v
		default:
			m.Text[metric] = value
		}
	}
	m.Hostname, m.Role, m.SnapshotTag = m.Text[schema.MetricHostname], m.Text[schema.MetricRole], m.Text[schema.MetricSnapshotTag]
	return m, nil
}

// PathStats is one row of <P>-profiling_top_paths.csv.
type PathStats struct {
	Category        string // metadata, data, tree, link, metadata_ttl
	Path            string // view path
	TotalEvents     uint64
	CacheHits       uint64
	CacheMisses     uint64
	NegativeResults uint64
	TTLStores       uint64
	TTLServes       uint64
	TTLExpires      uint64
	TTLClears       uint64
}

// ParseTopPaths reads a <P>-profiling_top_paths.csv.
func ParseTopPaths(r io.Reader, name string) ([]PathStats, error) {
	header, rows, err := readCSV(r, name, topPathsSchema)
	if err != nil {
		return nil, err
	}
	out := make([]PathStats, 0, len(rows))
	for _, row := range rows {
		f := fieldScanner{name: name, header: header, row: row}
		p := PathStats{
			Category:        f.nonEmpty(0),
			Path:            f.path(1),
			TotalEvents:     f.count(2),
			CacheHits:       f.count(3),
			CacheMisses:     f.count(4),
			NegativeResults: f.count(5),
			TTLStores:       f.count(6),
			TTLServes:       f.count(7),
			TTLExpires:      f.count(8),
			TTLClears:       f.count(9),
		}
		if f.err != nil {
			return nil, f.err
		}
		out = append(out, p)
	}
	return out, nil
}

// Path results in <P>-profiling_paths_full.csv.
const (
	ResultHit    = schema.ResultHit    // only ever served from cache
	ResultMiss   = schema.ResultMiss   // fetched at least once
	ResultENOENT = schema.ResultENOENT // never existed while asked
)

// PathUsage is one row of <P>-profiling_paths_full.csv.
type PathUsage struct {
	Path     string
	Getattr  uint64
	Readdir  uint64
	Readlink uint64
	Read     uint64
	Hits     uint64
	Misses   uint64
	ENOENT   uint64
	Result   string // ResultHit, ResultMiss or ResultENOENT
	// Refetches are fetches beyond the first per operation (0 in files
	// of writers without the column).
	Refetches uint64
}

// Events is the number of operations on the path.
func (u PathUsage) Events() uint64 { return u.Getattr + u.Readdir + u.Readlink + u.Read }

// ParsePathsFull reads a <P>-profiling_paths_full.csv.
func ParsePathsFull(r io.Reader, name string) ([]PathUsage, error) {
	header, rows, err := readCSV(r, name, pathsFullSchema)
	if err != nil {
		return nil, err
	}
	out := make([]PathUsage, 0, len(rows))
	for _, row := range rows {
		f := fieldScanner{name: name, header: header, row: row}
		u := PathUsage{
			Path:      f.path(0),
			Getattr:   f.count(1),
			Readdir:   f.count(2),
			Readlink:  f.count(3),
			Read:      f.count(4),
			Hits:      f.count(5),
			Misses:    f.count(6),
			ENOENT:    f.count(7),
			Result:    f.text(8),
			Refetches: f.count(9),
		}
		switch u.Result {
		case ResultHit, ResultMiss, ResultENOENT:
		default:
			f.failf(8, "%q is not one of hit, miss, enoent", u.Result)
		}
		if f.err != nil {
			return nil, f.err
		}
		out = append(out, u)
	}
	return out, nil
}

// LargeFile is one row of <P>-profiling_large_files.csv: a file over
// max_cacheable_bytes the node read straight from the target.
type LargeFile struct {
	Path      string // view path
	SizeBytes uint64
	Opens     uint64
	BytesRead uint64
}

// ParseLargeFiles reads a <P>-profiling_large_files.csv.
func ParseLargeFiles(r io.Reader, name string) ([]LargeFile, error) {
	header, rows, err := readCSV(r, name, largeFilesSchema)
	if err != nil {
		return nil, err
	}
	out := make([]LargeFile, 0, len(rows))
	for _, row := range rows {
		f := fieldScanner{name: name, header: header, row: row}
		l := LargeFile{Path: f.path(0), SizeBytes: f.count(1), Opens: f.count(2), BytesRead: f.count(3)}
		if f.err != nil {
			return nil, f.err
		}
		out = append(out, l)
	}
	return out, nil
}

// TableUsage is one row of tables/<tag>/<P>-cache_tables.csv.
type TableUsage struct {
	Table   string // data, tree, metadata, negative, links
	Entries uint64
	Bytes   uint64
}

// ParseCacheTables reads a <P>-cache_tables.csv.
func ParseCacheTables(r io.Reader, name string) ([]TableUsage, error) {
	header, rows, err := readCSV(r, name, cacheTablesSchema)
	if err != nil {
		return nil, err
	}
	out := make([]TableUsage, 0, len(rows))
	seen := make(map[string]int, len(rows))
	for _, row := range rows {
		f := fieldScanner{name: name, header: header, row: row}
		t := TableUsage{Table: f.nonEmpty(0), Entries: f.count(1), Bytes: f.count(2)}
		if f.err != nil {
			return nil, f.err
		}
		if first, dup := seen[t.Table]; dup {
			return nil, fmt.Errorf("%s:%d: table %q repeated (first on line %d)", name, row.line, t.Table, first)
		}
		seen[t.Table] = row.line
		out = append(out, t)
	}
	return out, nil
}
