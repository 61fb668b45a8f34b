// Package config holds every copper setting: its TOML key, its flag, its
// default and its allowed range; it loads site files and applies flags.
package config

// Settings is the full configuration of a copper node and its launcher.
// The toml tag is the TOML key; the flag is the key with '_' turned into
// '-'. Defaults live in sites/local.toml (embedded) and in Default().
type Settings struct {
	// Where and what.
	Target string `toml:"target"` // backing root exported at the mount root
	Mount  string `toml:"mount"`  // mount (view) directory; may contain {rank}

	// Logging and job output.
	LogLevel int    `toml:"log_level"` // 0 none, 1 fatal, 2 error, 3 warn, 4 info, 5 debug
	LogType  string `toml:"log_type"`  // file | stdout | both
	LogDir   string `toml:"log_dir"`   // job output base; job dir = log_dir/job_id
	JobID    string `toml:"job_id"`    // empty: from PBS_JOBID/SLURM_JOB_ID/COPPER_JOB_ID or chosen

	// Tree.
	Trees  int `toml:"trees"`  // number of independent overlay trees (segments)
	Fanout int `toml:"fanout"` // children per node; 0 = automatic (depth <= 4)

	// Caches.
	MaxCacheableBytes int64 `toml:"max_cacheable_bytes"` // larger files follow LargeFiles (chunked or direct)
	MdEnoentTTLMs     int64 `toml:"md_enoent_ttl_ms"`    // exact-path ENOENT cache lifetime
	CacheMemoryBytes  int64 `toml:"cache_memory_bytes"`  // cache budget; 0 = cache_memory_percent of RAM
	CacheMemoryPct    int   `toml:"cache_memory_percent"`
	BackendParallel   int   `toml:"backend_parallel"` // concurrent backend operations at the root
	// Regular files up to this size ride with their directory's dirplus
	// (read by the root, cached at every hop); 0 = off.
	DirFilesMaxBytes int64 `toml:"dir_files_max_bytes"`
	// Manifest of host paths to pull into the cache once the node is
	// tree-ready (package prefetch); empty = off.
	Prefetch string `toml:"prefetch"`

	// Large files (over max_cacheable_bytes): chunked through the tree
	// into a node-local chunk store, or direct (Copper 1.0).
	LargeFiles       string `toml:"large_files"`        // chunked | direct
	ChunkBytes       int64  `toml:"chunk_bytes"`        // chunk size
	SpillDir         string `toml:"spill_dir"`          // node-local chunk store base; empty = memory only
	SpillBudgetBytes int64  `toml:"spill_budget_bytes"` // bytes of chunks on disk per node
	ReadaheadChunks  int    `toml:"readahead_chunks"`   // chunks fetched ahead of a sequential reader

	// Kernel (FUSE) side.
	EntryTimeoutS    float64 `toml:"entry_timeout_s"`
	AttrTimeoutS     float64 `toml:"attr_timeout_s"`
	NegativeTimeoutS float64 `toml:"negative_timeout_s"`
	MaxReadBytes     int     `toml:"max_read_bytes"`
	MaxReadaheadB    int     `toml:"max_readahead_bytes"`
	AllowOther       bool    `toml:"allow_other"`

	// Network between nodes.
	MaxFrameBytes       int64   `toml:"max_frame_bytes"` // hard cap on one wire frame
	RPCTimeoutS         float64 `toml:"rpc_timeout_s"`
	ReadyProbeInitialMs int64   `toml:"ready_probe_initial_ms"`
	ReadyProbeMaxMs     int64   `toml:"ready_probe_max_ms"`
	ReadyTimeoutS       float64 `toml:"ready_timeout_s"`
	// Failover (node.Upstream): hung-parent detection and what a node
	// does when the root is gone.
	HeartbeatTimeoutMs int64  `toml:"heartbeat_timeout_ms"`
	RootFailover       string `toml:"root_failover"` // successor | direct
	DirectOpsPerS      int    `toml:"direct_ops_per_s"`

	// Launcher.
	AddressBookSource string  `toml:"address_book_source"` // discover | facility | prepared
	AddressBook       string  `toml:"address_book"`        // facility or prepared book path
	Interface         string  `toml:"interface"`           // network interface whose address nodes listen on; empty = hostname's
	Port              int     `toml:"port"`                // copper-node listen port; 0 = ephemeral
	BootstrapPort     int     `toml:"bootstrap_port"`      // rank 0's all-gather port
	BootstrapTimeoutS float64 `toml:"bootstrap_timeout_s"`
	ServiceCores      []int   `toml:"service_cores"` // CPUs copper-node is pinned to; empty = no pinning
	// KeyFile holds the job key: peers and the all-gather authenticate
	// with it. Created (0600, in a 0700 dir) by copper-launch if missing.
	KeyFile string `toml:"key_file"`

	// Profiling (Copper 1.0's -profile_*).
	ProfileMetrics           bool `toml:"profile_metrics"`
	ProfileTopN              int  `toml:"profile_top_n"`
	ProfilePathsFull         bool `toml:"profile_paths_full"`
	ProfileSnapshotIntervalS int  `toml:"profile_snapshot_interval_s"`
}
