package profile

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

// aggregateOf reads a snapshot's profiling_aggregate.csv as metric → value.
func aggregateOf(t *testing.T, c *Collector, tag string) map[string]string {
	t.Helper()
	rows := testkit.ReadCSV(t, filepath.Join(c.ProfilingDir(tag), c.Prefix()+"-profiling_aggregate.csv"), AggregateHeader)
	out := map[string]string{}
	for _, r := range rows {
		out[r[0]] = r[1]
	}
	return out
}

// isatty's TCGETS, answered ENOTTY by the view, is counted apart: not an
// error, not in profiling_errors.csv. Any other errno of an ioctl, or an
// ENOTTY of another operation, still is one.
func TestTerminalIoctlsAreNotErrors(t *testing.T) {
	for _, tc := range []struct {
		name               string
		op                 string
		errno              syscall.Errno
		n                  int
		wantErrs, wantTerm int64
	}{
		{"isatty probes", "ioctl", syscall.ENOTTY, 5, 0, 5},
		{"ioctl failing otherwise", "ioctl", syscall.EINVAL, 2, 2, 0},
		{"ENOTTY of another op", "getxattr", syscall.ENOTTY, 1, 1, 0},
		{"ioctl commands", "ioctl", 0, 3, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCollector(t, nil)
			for range tc.n {
				c.OnOp(tc.op, tc.errno, time.Microsecond)
			}
			r := c.Report("t")
			row := rowOf(t, r.Ops, tc.op)
			assert.EqualValues(t, tc.n, row.Calls)
			assert.Equal(t, tc.wantErrs, row.Errors)
			assert.Equal(t, tc.wantErrs, r.Totals().Errors)
			assert.Equal(t, tc.wantTerm, r.IoctlTerminal)
			if tc.wantErrs == 0 {
				assert.Empty(t, r.Errors)
			}
			require.NoError(t, c.Snapshot("t"))
			agg := aggregateOf(t, c, "t")
			assert.Equal(t, itoa(tc.wantTerm), agg["ioctl_terminal_count"])

			c.Reset(PartIoctlEvents) // ioctl 2100 clears them with the ioctl counts
			assert.Zero(t, c.Report("t").IoctlTerminal)
		})
	}
}

// The node's settings and its direct large-file reads are in every
// aggregate and in profiling_large_files.csv, as the mount counted them.
func TestAggregateCarriesSettingsAndLargeReads(t *testing.T) {
	large := LargeReads{Files: 2, Opens: 5, Bytes: 300 << 20, List: []LargeFile{
		{Path: "/bin/app", Size: 210 << 20, Opens: 4, Bytes: 210 << 20},
		{Path: "/lib/libtorch_cpu.so", Size: 90 << 20, Opens: 1, Bytes: 90 << 20},
	}}
	c, _ := newTestCollector(t, func(cfg *Config) {
		cfg.Target, cfg.Mount, cfg.MaxCacheable = "/lus/env", "/tmp/cu", 64<<20
		cfg.LargeReads = func() LargeReads { return large }
	})
	require.NoError(t, c.Snapshot("t"))
	agg := aggregateOf(t, c, "t")
	for metric, want := range map[string]string{
		"target": "/lus/env", "mount": "/tmp/cu", "max_cacheable_bytes": itoa(64 << 20),
		"large_direct_files": "2", "large_direct_opens": "5", "large_direct_bytes": itoa(300 << 20),
		"large_direct_paths_dropped": "0",
		"dir_files_stored":           "0", "dir_files_bytes": "0", "dir_files_read": "0", "dir_files_unread": "0",
	} {
		assert.Equal(t, want, agg[metric], metric)
	}
	rows := testkit.ReadCSV(t, filepath.Join(c.ProfilingDir("t"), c.Prefix()+"-profiling_large_files.csv"), LargeFilesHeader)
	assert.Equal(t, [][]string{
		{"/bin/app", itoa(210 << 20), "4", itoa(210 << 20)},
		{"/lib/libtorch_cpu.so", itoa(90 << 20), "1", itoa(90 << 20)},
	}, rows)
}

// refetches counts a path's fetches beyond the first per operation: what
// went upstream (on a root: to the backend) more than once.
func TestPathsFullRefetches(t *testing.T) {
	type obs struct {
		o       op.Op
		outcome node.Outcome
		errno   syscall.Errno
	}
	miss := func(o op.Op) obs { return obs{o, node.OutcomeMiss, 0} }
	for _, tc := range []struct {
		name string
		seen []obs
		want int64
	}{
		{"fetched once", []obs{miss(op.Getattr), {op.Getattr, node.OutcomeHit, 0}}, 0},
		{"stat then read: one fetch each", []obs{miss(op.Getattr), miss(op.Read)}, 0},
		{"stat fetched twice (evicted)", []obs{miss(op.Getattr), {op.Getattr, node.OutcomeHit, 0}, miss(op.Getattr)}, 1},
		{"ENOENT fetched three times (TTL ran out)", []obs{
			{op.Getattr, node.OutcomeMiss, syscall.ENOENT}, {op.Getattr, node.OutcomeNegative, syscall.ENOENT},
			{op.Getattr, node.OutcomeMiss, syscall.ENOENT}, {op.Getattr, node.OutcomeMiss, syscall.ENOENT}}, 2},
		{"coalesced waits are not fetches", []obs{miss(op.Read), {op.Read, node.OutcomeCoalesced, 0}}, 0},
		{"an interrupted wait is not a fetch", []obs{miss(op.Read), {op.Read, node.OutcomeMiss, syscall.EINTR}}, 0},
		{"dirplus and its pages share a slot", []obs{miss(op.DirPlus), miss(op.DirPlusNext)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCollector(t, func(cfg *Config) { cfg.PathsFull = true })
			for _, o := range tc.seen {
				c.Observe(node.Observation{Op: o.o, Path: "/p", Outcome: o.outcome, Errno: o.errno})
			}
			full := c.Report("t").FullPaths
			require.Len(t, full, 1)
			assert.Equal(t, tc.want, full[0].Refetches)
		})
	}
}

// fuseSlot's fast switch must follow op's table, row for row.
func TestFuseSlotsFollowTheTable(t *testing.T) {
	for i, name := range op.FuseOps {
		assert.Equal(t, i, fuseSlot(name), name)
	}
	assert.Equal(t, -1, fuseSlot("dirplus"))
	assert.Equal(t, -1, fuseSlot("nonsense"))
}
