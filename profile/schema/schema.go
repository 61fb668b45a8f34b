// Package schema is the one table of the profiling files' layout
// (docs/PROFILING.md): file names, CSV headers and the metric names of
// profiling_aggregate.csv. profile writes with it and report reads with
// it, so writer and reader cannot drift apart. It has no dependencies.
package schema

// Per-node file names, after the "<short hostname>-<pid>-" prefix.
const (
	FileOperations  = "profiling_operations.csv"
	FileErrors      = "profiling_errors.csv"
	FileAggregate   = "profiling_aggregate.csv"
	FileTopPaths    = "profiling_top_paths.csv"
	FilePathsFull   = "profiling_paths_full.csv"
	FileLargeFiles  = "profiling_large_files.csv"
	FileSummary     = "profiling_summary.md"
	FileCacheTables = "cache_tables.csv" // under tables/<tag>/
)

// CSV headers, comma-joined.
const (
	OperationsHeader  = "operation,total_calls,cache_hits,cache_misses,negative_results,avg_latency_us,total_latency_s,errors,coalesced_waits,forwarded,backend_ops,bytes_served,p50_us,p90_us,p99_us,max_us"
	ErrorsHeader      = "operation,errno,name,count"
	AggregateHeader   = "metric,value"
	TopPathsHeader    = "category,path,total_events,cache_hits,cache_misses,negative_results,ttl_stores,ttl_serves,ttl_expires,ttl_clears"
	PathsFullHeader   = "path,getattr,readdir,readlink,read,hits,misses,enoent,result,refetches"
	LargeFilesHeader  = "path,size_bytes,opens,bytes_read"
	CacheTablesHeader = "table,entries,bytes"
)

// PathsFullRequiredColumns is how many leading PathsFullHeader columns
// every copper version writes; refetches came later.
const PathsFullRequiredColumns = 9

// Copper10OperationsColumns is how many leading OperationsHeader columns
// Copper 1.0's operations files carry.
const Copper10OperationsColumns = 7

// Metric names of profiling_aggregate.csv, in file order.
const (
	MetricHostname      = "hostname"
	MetricPID           = "pid"
	MetricRank          = "rank"
	MetricRole          = "role"
	MetricSnapshotTag   = "snapshot_tag"
	MetricSnapshotUnix  = "snapshot_unix_s"
	MetricUptime        = "uptime_s"
	MetricTarget        = "target"              // host directory at the view's "/"
	MetricMount         = "mount"               // the view's mount point
	MetricMaxCacheable  = "max_cacheable_bytes" // larger files are chunked or read directly
	MetricOperations    = "total_counted_fuse_operations"
	MetricCacheHits     = "total_cache_hits"
	MetricCacheMisses   = "total_cache_misses"
	MetricNegative      = "total_negative_results"
	MetricCoalesced     = "total_coalesced_waits"
	MetricForwarded     = "total_forwarded"
	MetricBackendOps    = "total_backend_ops"
	MetricBytesServed   = "total_bytes_served"
	MetricLargeFiles    = "large_direct_files" // distinct files over max_cacheable_bytes read directly
	MetricLargeOpens    = "large_direct_opens" // host opens of them
	MetricLargeBytes    = "large_direct_bytes" // bytes read from them
	MetricTTLStores     = "metadata_enoent_ttl_stores"
	MetricTTLServes     = "metadata_enoent_ttl_serves"
	MetricTTLExpires    = "metadata_enoent_ttl_expires"
	MetricTTLClears     = "metadata_enoent_ttl_clears_on_success_or_non_enoent"
	MetricLatency       = "total_measured_latency_seconds"
	MetricIoctlExternal = "ioctl_external_count"
	MetricIoctlTerminal = "ioctl_terminal_count" // isatty's TCGETS & co., answered ENOTTY; not errors
	MetricCacheBytes    = "cache_bytes"
	MetricCacheBudget   = "cache_budget_bytes"
	// Small files that came with their directory's dirplus
	// (dir_files_max_bytes): stored, their bytes, read at least once, never read.
	MetricDirFilesStored = "dir_files_stored"
	MetricDirFilesBytes  = "dir_files_bytes"
	MetricDirFilesRead   = "dir_files_read"
	MetricDirFilesUnread = "dir_files_unread"
	MetricTopN           = "profile_top_n"
	MetricPathsFull      = "profile_paths_full"
	MetricPathsDropped   = "profile_paths_dropped"
	MetricLargeDropped   = "large_direct_paths_dropped" // large files counted but not listed (memory bound)
)

// Path results in profiling_paths_full.csv.
const (
	ResultHit    = "hit"    // only ever served from cache
	ResultMiss   = "miss"   // fetched at least once
	ResultENOENT = "enoent" // never existed while asked
)

// Categories of profiling_top_paths.csv, in file order.
const (
	CategoryMetadata    = "metadata"
	CategoryData        = "data"
	CategoryTree        = "tree"
	CategoryLink        = "link"
	CategoryMetadataTTL = "metadata_ttl"
)

// Categories lists the categories in file order; a fresh slice.
func Categories() []string {
	return []string{CategoryMetadata, CategoryData, CategoryTree, CategoryLink, CategoryMetadataTTL}
}
