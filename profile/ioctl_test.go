package profile

import (
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

func TestIoctlLogCommands(t *testing.T) {
	tests := []struct {
		cmd    uint32
		file   string
		header string
	}{
		{IoctlLogCacheTables, "cache_tables.output", CacheTablesHeader},
		{IoctlLogOpCounts, "operation_count.output", "operation,count,errors"},
		{IoctlLogOpTimes, "operation_time.output", "operation,timed_calls,total_latency_s,avg_latency_us,p50_us,p90_us,p99_us,max_us"},
		{IoctlLogOpHits, "operation_cache_hit.output", "operation,cache_hits"},
		{IoctlLogOpMisses, "operation_cache_miss.output", "operation,cache_misses,coalesced_waits"},
		{IoctlLogDataEvents, "data_table_cache_event.output", "path,total_events,cache_hits,cache_misses,negative_results"},
		{IoctlLogTreeEvents, "tree_table_cache_event.output", "path,total_events,cache_hits,cache_misses,negative_results"},
		{IoctlLogMetadataEvents, "md_table_cache_event.output", "path,total_events,cache_hits,cache_misses,negative_results"},
		{IoctlLogNegative, "operation_cache_neg.output", "operation,negative_results"},
		{IoctlLogIoctlEvents, "ioctl_cache_event.output", "command,count"},
		{IoctlDataCacheSize, "data_cache_size.output", CacheTablesHeader},
		{IoctlTreeCacheSize, "tree_cache_size.output", CacheTablesHeader},
		{IoctlMetadataCacheSize, "md_cache_size.output", CacheTablesHeader},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, fn := newTestCollector(t, func(cfg *Config) { cfg.TopN = 2 })
			fn.set(1)
			c.OnOp("lookup", syscall.ENOENT, time.Millisecond)
			c.Observe(node.Observation{Op: op.Read, Path: "/d", Outcome: node.OutcomeMiss})
			c.Observe(node.Observation{Op: op.Readdir, Path: "/t", Outcome: node.OutcomeMiss})
			c.Observe(node.Observation{Op: op.Getattr, Path: "/m", Outcome: node.OutcomeHit})
			require.NoError(t, c.Ioctl(tt.cmd, "/some/file"))
			assert.Equal(t, "h-42-"+tt.file, c.IoctlOutputName(tt.cmd))
			assert.Equal(t, []string{"h-42-" + tt.file}, listDir(t, c.IoctlDir()))
			rows := testkit.ReadCSV(t, filepath.Join(c.IoctlDir(), "h-42-"+tt.file), tt.header)
			assert.NotEmpty(t, rows)
			assert.NoDirExists(t, filepath.Join(c.cfg.JobDir, "profiling"), "only 2000 snapshots")
		})
	}

	t.Run("contents", func(t *testing.T) {
		c, fn := newTestCollector(t, func(cfg *Config) { cfg.TopN = 2 })
		fn.set(1)
		c.OnOp("lookup", syscall.ENOENT, time.Millisecond)
		c.Observe(node.Observation{Op: op.Read, Path: "/d", Outcome: node.OutcomeMiss})
		require.NoError(t, c.Ioctl(0x5401, "/x"))         // TCGETS, from isatty
		c.OnOp("ioctl", syscall.ENOTTY, time.Microsecond) // the view answers it first
		for _, cmd := range []uint32{IoctlLogOpCounts, IoctlLogOpHits, IoctlLogDataEvents, IoctlLogIoctlEvents} {
			require.NoError(t, c.Ioctl(cmd, "/x"))
		}
		read := func(name, header string) [][]string {
			return testkit.ReadCSV(t, filepath.Join(c.IoctlDir(), "h-42-"+name), header)
		}
		assert.Contains(t, read("operation_count.output", "operation,count,errors"), []string{"lookup", "1", "1"})
		assert.Equal(t, [][]string{{"getattr", "1"}, {"readdir", "1"}, {"readlink", "1"}, {"read", "1"}, {"dirplus", "1"}, {"dirplus_next", "1"}, {"chunk", "1"}},
			read("operation_cache_hit.output", "operation,cache_hits"))
		assert.Equal(t, [][]string{{"/d", "1", "0", "1", "0"}},
			read("data_table_cache_event.output", "path,total_events,cache_hits,cache_misses,negative_results"))
		assert.Equal(t, [][]string{{"300", "1"}, {"500", "1"}, {"1100", "1"}, {"2200", "1"}, {"21505", "1"}, {"external", "1"}, {"terminal", "1"}},
			read("ioctl_cache_event.output", "command,count"))
	})
}

func TestIoctlLogAll(t *testing.T) {
	c, fn := newTestCollector(t, nil)
	fn.set(1)
	require.NoError(t, c.Ioctl(IoctlLogAll, "/"))
	var want []string
	for _, o := range ioctlOutputs() {
		want = append(want, "h-42-"+o.file)
	}
	sort.Strings(want)
	assert.Equal(t, want, listDir(t, c.IoctlDir()))
	agg := testkit.ReadCSV(t, filepath.Join(c.ProfilingDir(TagIoctl), "h-42-profiling_aggregate.csv"), AggregateHeader)
	assert.Equal(t, []string{"snapshot_tag", TagIoctl}, agg[4])
	assert.FileExists(t, filepath.Join(c.TablesDir(TagIoctl), "h-42-cache_tables.csv"))
}

func TestIoctlClearsAndReset(t *testing.T) {
	c, fn := newTestCollector(t, nil)
	fn.set(1)
	c.OnOp("lookup", syscall.ENOENT, time.Millisecond)

	require.NoError(t, c.Ioctl(IoctlClearCaches, "/"))
	assert.Equal(t, 1, fn.cleared)

	require.NoError(t, c.Ioctl(IoctlClearNegative, "/"))
	lookup := rowOf(t, c.Ops(), "lookup")
	assert.Equal(t, [3]int64{1, 1, 0}, [3]int64{lookup.Calls, lookup.Errors, lookup.Negative})
	require.NoError(t, c.Ioctl(IoctlClearOpCounts, "/"))
	lookup = rowOf(t, c.Ops(), "lookup")
	assert.Equal(t, [3]int64{0, 0, 1}, [3]int64{lookup.Calls, lookup.Errors, lookup.Timed})
	require.NoError(t, c.Ioctl(IoctlClearOpTimes, "/"))
	assert.Zero(t, rowOf(t, c.Ops(), "lookup").Timed)

	c.OnOp("lookup", 0, time.Millisecond)
	c.OnOp("lookup", 0, time.Millisecond)
	require.NoError(t, c.Ioctl(IoctlReset, "/"))
	assert.Equal(t, 2, fn.cleared, "1900 clears the caches")
	ops := testkit.ReadCSV(t, filepath.Join(c.ProfilingDir(TagPreReset), "h-42-profiling_operations.csv"), OperationsHeader)
	assert.Equal(t, []string{"lookup", "2"}, ops[1][:2], "the pre-reset snapshot has the counts before the reset")
	assert.Zero(t, rowOf(t, c.Ops(), "lookup").Calls)
	assert.Empty(t, c.Report("t").Ioctls, "1900 resets the ioctl counts too")

	// An undefined command is only counted.
	require.NoError(t, c.Ioctl(4242, "/"))
	r := c.Report("t")
	assert.EqualValues(t, 1, r.IoctlExternal)
	assert.Equal(t, map[uint32]int64{4242: 1}, r.Ioctls)
	require.NoError(t, c.Ioctl(IoctlClearIoctlEvents, "/"))
	assert.Zero(t, c.Report("t").IoctlExternal)
	_, err := os.Stat(c.IoctlDir())
	assert.True(t, os.IsNotExist(err), "clears write nothing")
}

func TestIoctlWithoutJobDir(t *testing.T) {
	c, _ := newTestCollector(t, func(cfg *Config) { cfg.JobDir = "" })
	assert.ErrorContains(t, c.Ioctl(IoctlLogOpCounts, "/f"), "no job directory")
	assert.NoError(t, c.Ioctl(IoctlClearOpCounts, "/f"))
	assert.NoError(t, c.Ioctl(77, "/f"))
}
