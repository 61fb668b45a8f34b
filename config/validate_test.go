package config

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Settings)
		want string // "" = valid
	}{
		{"default", func(*Settings) {}, ""},
		{"log_level high", func(s *Settings) { s.LogLevel = 9 }, "log_level 9 out of range 0..5"},
		{"log_level low", func(s *Settings) { s.LogLevel = -1 }, "log_level -1 out of range 0..5"},
		{"log_type", func(s *Settings) { s.LogType = "x" }, `log_type "x": want file, stdout or both`},
		{"log_dir empty for file", func(s *Settings) { s.LogDir = "" }, `log_dir: must not be empty when log_type is "file"`},
		{"log_dir empty for stdout", func(s *Settings) { s.LogDir, s.LogType = "", "stdout" }, ""},
		{"job_id slash", func(s *Settings) { s.JobID = "a/b" }, `job_id "a/b": must be usable as a directory name (no '/', not . or ..)`},
		{"job_id dotdot", func(s *Settings) { s.JobID = ".." }, `job_id "..": must be usable as a directory name (no '/', not . or ..)`},
		{"target empty", func(s *Settings) { s.Target = "" }, "target: must not be empty"},
		{"mount empty", func(s *Settings) { s.Mount = "" }, "mount: must not be empty"},
		{"trees", func(s *Settings) { s.Trees = 0 }, "trees 0 out of range 1.."},
		{"fanout 1", func(s *Settings) { s.Fanout = 1 }, "fanout 1: must be 0 (auto) or ≥ 2"},
		{"fanout -1", func(s *Settings) { s.Fanout = -1 }, "fanout -1: must be 0 (auto) or ≥ 2"},
		{"fanout 2", func(s *Settings) { s.Fanout = 2 }, ""},
		{"max_cacheable_bytes", func(s *Settings) { s.MaxCacheableBytes = gib + 1 }, "max_cacheable_bytes 1073741825 out of range 0..1073741824 (1 GiB)"},
		{"max_cacheable_bytes 1 GiB", func(s *Settings) { s.MaxCacheableBytes = gib }, ""},
		{"md_enoent_ttl_ms", func(s *Settings) { s.MdEnoentTTLMs = -1 }, "md_enoent_ttl_ms -1 out of range 0.."},
		{"cache_memory_bytes", func(s *Settings) { s.CacheMemoryBytes = -5 }, "cache_memory_bytes -5 out of range 0.."},
		{"cache_memory_percent 0", func(s *Settings) { s.CacheMemoryPct = 0 }, "cache_memory_percent 0 out of range 1..90"},
		{"cache_memory_percent 91", func(s *Settings) { s.CacheMemoryPct = 91 }, "cache_memory_percent 91 out of range 1..90"},
		{"backend_parallel", func(s *Settings) { s.BackendParallel = 4097 }, "backend_parallel 4097 out of range 1..4096"},
		{"entry_timeout_s", func(s *Settings) { s.EntryTimeoutS = -0.5 }, "entry_timeout_s -0.5 out of range 0.."},
		{"attr_timeout_s inf", func(s *Settings) { s.AttrTimeoutS = math.Inf(1) }, "attr_timeout_s +Inf out of range 0.."},
		{"negative_timeout_s", func(s *Settings) { s.NegativeTimeoutS = -1 }, "negative_timeout_s -1 out of range 0.."},
		{"max_read_bytes low", func(s *Settings) { s.MaxReadBytes = 4095 }, "max_read_bytes 4095 out of range 4096..16777216 (16 MiB)"},
		{"max_read_bytes high", func(s *Settings) { s.MaxReadBytes = 16*mib + 1 }, "max_read_bytes 16777217 out of range 4096..16777216 (16 MiB)"},
		{"max_readahead_bytes", func(s *Settings) { s.MaxReadaheadB = -1 }, "max_readahead_bytes -1 out of range 0..16777216 (16 MiB)"},
		{"max_frame_bytes small", func(s *Settings) { s.MaxFrameBytes = 100 }, "max_frame_bytes 100: must be 0 (derived) or 65536..4294967295"},
		{"max_frame_bytes below cacheable", func(s *Settings) { s.MaxFrameBytes = mib; s.LargeFiles = "direct" }, "max_frame_bytes 1048576: must be 0 (derived) or > max_cacheable_bytes 10485760"},
		{"chunk over the frame cap", func(s *Settings) { s.MaxFrameBytes = 11 * mib; s.ChunkBytes = 11 * mib }, "chunk_bytes 11534336: must be at least 4096 bytes below the frame cap 11534336 (max_frame_bytes)"},
		{"chunk sets the derived frame cap", func(s *Settings) { s.ChunkBytes = 64 * mib }, ""},
		{"large_files", func(s *Settings) { s.LargeFiles = "cached" }, `large_files "cached": want chunked or direct`},
		{"chunk_bytes low", func(s *Settings) { s.ChunkBytes = 1000 }, "chunk_bytes 1000 out of range 65536..268435456 (256 MiB)"},
		{"readahead_chunks", func(s *Settings) { s.ReadaheadChunks = 65 }, "readahead_chunks 65 out of range 0..64"},
		{"spill_budget_bytes", func(s *Settings) { s.SpillBudgetBytes = -1 }, "spill_budget_bytes -1 out of range 0.."},
		{"rpc_timeout_s nan", func(s *Settings) { s.RPCTimeoutS = math.NaN() }, "rpc_timeout_s NaN out of range 0.."},
		{"ready_probe_initial_ms", func(s *Settings) { s.ReadyProbeInitialMs = 0 }, "ready_probe_initial_ms 0 out of range 1.."},
		{"ready_probe_max below initial", func(s *Settings) { s.ReadyProbeMaxMs = 5 }, "ready_probe_max_ms 5: must be ≥ ready_probe_initial_ms 10"},
		{"ready_timeout_s", func(s *Settings) { s.ReadyTimeoutS = -1 }, "ready_timeout_s -1 out of range 0.."},
		{"address_book_source", func(s *Settings) { s.AddressBookSource = "dns" }, `address_book_source "dns": want discover, facility or prepared`},
		{"port", func(s *Settings) { s.Port = 65536 }, "port 65536 out of range 0..65535"},
		{"bootstrap_port", func(s *Settings) { s.BootstrapPort = -1 }, "bootstrap_port -1 out of range 0..65535"},
		{"port equals bootstrap", func(s *Settings) { s.Port = 47000 }, "port 47000: must differ from bootstrap_port"},
		{"bootstrap_timeout_s", func(s *Settings) { s.BootstrapTimeoutS = -1 }, "bootstrap_timeout_s -1 out of range 0.."},
		{"service_cores negative", func(s *Settings) { s.ServiceCores = []int{1, -2} }, "service_cores: CPU -2 out of range 0.."},
		{"service_cores duplicate", func(s *Settings) { s.ServiceCores = []int{1, 1} }, "service_cores: CPU 1 listed twice"},
		{"profile_top_n", func(s *Settings) { s.ProfileTopN = -1 }, "profile_top_n -1 out of range 0.."},
		{"profile_snapshot_interval_s", func(s *Settings) { s.ProfileSnapshotIntervalS = -1 }, "profile_snapshot_interval_s -1 out of range 0.."},
		{"several at once", func(s *Settings) { s.LogLevel, s.Trees = 6, 0 }, "log_level 6 out of range 0..5\ntrees 0 out of range 1.."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Default()
			tt.set(&s)
			err := s.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tt.want)
			}
		})
	}
}
