package profile

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

// fakeNode stands in for a node: counters a test sets, and a cache
// clear it can see.
type fakeNode struct {
	mu      sync.Mutex
	stats   node.Stats
	cleared int
}

func (f *fakeNode) Stats() node.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *fakeNode) ClearCache() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleared++
}

// set gives every operation o the counters n*(1..5) and the cache TTL
// counters n*(1..4).
func (f *fakeNode) set(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Ops = nil
	for _, o := range op.All[1:] {
		f.stats.Ops = append(f.stats.Ops, node.OpStats{Op: o.String(),
			Hits: n, Misses: 2 * n, Coalesced: 3 * n, Forwarded: 4 * n, BackendOps: 5 * n})
	}
	f.stats.Cache = cache.Stats{NegativeStores: uint64(n), NegativeServes: uint64(2 * n),
		NegativeExpires: uint64(3 * n), NegativeClears: uint64(4 * n)}
}

func newTestCollector(t *testing.T, edit func(*Config)) (*Collector, *fakeNode) {
	t.Helper()
	fn := &fakeNode{}
	cfg := Config{JobDir: t.TempDir(), Host: "h", PID: 42, Rank: 3, Stats: fn.Stats, ClearCache: fn.ClearCache,
		NegativeTTL: time.Second}
	if edit != nil {
		edit(&cfg)
	}
	return New(cfg), fn
}

func rowOf(t *testing.T, rows []OpRow, name string) OpRow {
	t.Helper()
	for _, r := range rows {
		if r.Op == name {
			return r
		}
	}
	t.Fatalf("no row %q in %v", name, rows)
	return OpRow{}
}

func names(rows []OpRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Op)
	}
	return out
}

func TestOpRowsOrderAndCounts(t *testing.T) {
	c, fn := newTestCollector(t, nil)
	fn.set(10)
	c.OnOp("lookup", 0, time.Millisecond)
	c.OnOp("lookup", syscall.ENOENT, time.Millisecond)
	c.OnOp("lookup", syscall.ENOENT, 3*time.Millisecond)
	c.OnOp("getxattr", syscall.ENODATA, time.Microsecond)
	c.OnOp("mkdir", syscall.EROFS, time.Microsecond)
	c.OnOp("write", syscall.EROFS, time.Microsecond)
	c.OnOp("release", 0, time.Microsecond)
	c.OnOp("zz_new_op", 0, time.Microsecond)
	c.OnOp("aa_new_op", 0, time.Microsecond)
	c.Observe(node.Observation{Op: op.Read, Path: "/f", Outcome: node.OutcomeMiss, Bytes: 1000})

	rows := c.Ops()
	assert.Equal(t, []string{"getattr", "lookup", "readdir", "readlink", "open", "read", "statfs", "getxattr", "ioctl",
		"release", "write", "mkdir", "dirplus", "dirplus_next", "chunk", "aa_new_op", "zz_new_op"}, names(rows),
		"fixed rows, then other operations and refused mutations once called, node-only operations once counted, then unknown names sorted")

	lookup := rowOf(t, rows, "lookup")
	assert.Equal(t, OpRow{Op: "lookup", Calls: 3, Errors: 2, Negative: 2, Timed: 3, TotalLatency: 5 * time.Millisecond,
		P50: time.Duration(bucketUpper(bucketOf(uint64(time.Millisecond)))), P90: 3 * time.Millisecond, P99: 3 * time.Millisecond, Max: 3 * time.Millisecond},
		lookup, "the lookup row has no node-level counters")
	assert.Equal(t, 5*time.Millisecond/3, lookup.AvgLatency())

	read := rowOf(t, rows, "read")
	assert.Equal(t, OpRow{Op: "read", Hits: 10, Misses: 20, Coalesced: 30, Forwarded: 40, Backend: 50, Bytes: 1000}, read)
	for _, name := range []string{"getattr", "readdir", "readlink", "dirplus", "dirplus_next", "chunk"} {
		r := rowOf(t, rows, name)
		assert.Equal(t, [5]int64{10, 20, 30, 40, 50}, [5]int64{r.Hits, r.Misses, r.Coalesced, r.Forwarded, r.Backend}, name)
	}

	r := c.Report("t")
	assert.Equal(t, []ErrorRow{
		{"lookup", syscall.ENOENT, 2}, {"getxattr", syscall.ENODATA, 1},
		{"write", syscall.EROFS, 1}, {"mkdir", syscall.EROFS, 1},
	}, r.Errors)
	assert.Equal(t, TTLCounts{10, 20, 30, 40}, r.TTL)
	tot := r.Totals()
	assert.EqualValues(t, 9, tot.Calls)
	assert.EqualValues(t, 70, tot.Hits)
	assert.EqualValues(t, 350, tot.Backend)
}

func TestResetParts(t *testing.T) {
	c, fn := newTestCollector(t, func(cfg *Config) { cfg.TopN = 2; cfg.PathsFull = true })
	feed := func() {
		c.OnOp("getattr", syscall.ENOENT, time.Millisecond)
		c.Observe(node.Observation{Op: op.Read, Path: "/d", Outcome: node.OutcomeMiss, Bytes: 5})
		c.Observe(node.Observation{Op: op.Readdir, Path: "/t", Outcome: node.OutcomeHit})
		c.Observe(node.Observation{Op: op.Getattr, Path: "/m", Outcome: node.OutcomeMiss, Errno: syscall.ENOENT})
		require.NoError(t, c.Ioctl(4242, "/"))
	}
	fn.set(1)
	feed()
	fn.set(3) // node counters moved on by 2 per unit since the feed

	type view struct {
		Calls, Errors, Negative, Timed, Hits, Misses, Coalesced, Forwarded, Backend, Bytes int64
		TTL                                                                                TTLCounts
		Data, Tree, Meta, TTLPaths, Full                                                   int
		Ioctls                                                                             int64
	}
	look := func() view {
		r := c.Report("t")
		g, rd := rowOf(t, r.Ops, "getattr"), rowOf(t, r.Ops, "read")
		return view{g.Calls, g.Errors, g.Negative, g.Timed, g.Hits, g.Misses, g.Coalesced, g.Forwarded, g.Backend, rd.Bytes,
			r.TTL, len(r.TopPaths[1].Paths), len(r.TopPaths[2].Paths), len(r.TopPaths[0].Paths), len(r.TopPaths[4].Paths),
			len(r.FullPaths), r.IoctlExternal}
	}
	full := view{1, 1, 1, 1, 3, 6, 9, 12, 15, 5, TTLCounts{3, 6, 9, 12}, 1, 1, 1, 1, 3, 1}

	tests := []struct {
		part Part
		want func(v view) view
	}{
		{PartCounts, func(v view) view { v.Calls, v.Errors, v.Forwarded, v.Backend, v.Bytes = 0, 0, 0, 0, 0; return v }},
		{PartTimes, func(v view) view { v.Timed = 0; return v }},
		{PartHits, func(v view) view { v.Hits = 0; return v }},
		{PartMisses, func(v view) view { v.Misses, v.Coalesced = 0, 0; return v }},
		{PartNegative, func(v view) view { v.Negative, v.TTL = 0, TTLCounts{}; return v }},
		{PartDataEvents, func(v view) view { v.Data = 0; return v }},
		{PartTreeEvents, func(v view) view { v.Tree = 0; return v }},
		{PartMetadataEvents, func(v view) view { v.Meta, v.TTLPaths = 0, 0; return v }},
		{PartIoctlEvents, func(v view) view { v.Ioctls = 0; return v }},
		{PartPaths, func(v view) view { v.Full = 0; return v }},
		{PartAll, func(view) view { return view{} }},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("part %#x", uint16(tt.part)), func(t *testing.T) {
			c.Reset(PartAll)
			fn.set(0)
			c.Reset(PartAll)
			fn.set(1)
			feed()
			fn.set(3)
			require.Equal(t, full, look(), "before the reset")
			c.Reset(tt.part)
			assert.Equal(t, tt.want(full), look())
			// Counting goes on from the reset.
			fn.set(4)
			after := look()
			if tt.part&PartHits != 0 {
				assert.EqualValues(t, 1, after.Hits, "hits since the reset")
			} else {
				assert.EqualValues(t, 4, after.Hits)
			}
		})
	}
}

func TestObservePaths(t *testing.T) {
	c, _ := newTestCollector(t, func(cfg *Config) { cfg.TopN = 1; cfg.PathsFull = true; cfg.MaxPaths = 3 })
	obs := []node.Observation{
		{Op: op.Getattr, Path: "/a", Outcome: node.OutcomeMiss},
		{Op: op.Getattr, Path: "/a", Outcome: node.OutcomeHit},
		{Op: op.Read, Path: "/a", Outcome: node.OutcomeCoalesced, Bytes: 3},
		{Op: op.Getattr, Path: "/gone", Outcome: node.OutcomeMiss, Errno: syscall.ENOENT},
		{Op: op.Readdir, Path: "/gone", Outcome: node.OutcomeNegative, Errno: syscall.ENOENT},
		{Op: op.Readlink, Path: "/l", Outcome: node.OutcomeHit},
		// A child's dirplus (and its pages) is a listing of the directory;
		// an ENOENT from a held listing is a hit.
		{Op: op.DirPlus, Path: "/gone", Outcome: node.OutcomeListed, Errno: syscall.ENOENT},
		{Op: op.Getattr, Path: "/fourth", Outcome: node.OutcomeMiss}, // over MaxPaths
		{Op: op.Getattr, Path: "/fifth", Outcome: node.OutcomeMiss},
	}
	for _, ob := range obs {
		c.Observe(ob)
	}
	r := c.Report("t")
	assert.Equal(t, []FullPath{
		{Path: "/a", Getattr: 2, Read: 1, Hits: 1, Misses: 2},
		{Path: "/gone", Getattr: 1, Readdir: 2, Hits: 2, Misses: 1, ENOENT: 3},
		{Path: "/l", Readlink: 1, Hits: 1},
	}, r.FullPaths)
	assert.Equal(t, []string{"miss", "enoent", "hit"},
		[]string{r.FullPaths[0].Result(), r.FullPaths[1].Result(), r.FullPaths[2].Result()})
	assert.EqualValues(t, 2, r.PathsDropped)
	assert.EqualValues(t, 3, rowOf(t, r.Ops, "read").Bytes)

	want := map[string][]PathCount{
		CategoryMetadata:    {{Path: "/a", PathCounts: PathCounts{Events: 2, Hits: 1, Misses: 1}}},
		CategoryData:        {{Path: "/a", PathCounts: PathCounts{Events: 1, Misses: 1}}},
		CategoryTree:        {{Path: "/gone", PathCounts: PathCounts{Events: 2, Hits: 2, Negative: 2}}},
		CategoryLink:        {{Path: "/l", PathCounts: PathCounts{Events: 1, Hits: 1}}},
		CategoryMetadataTTL: {{Path: "/gone", PathCounts: PathCounts{Events: 2, Hits: 1, Misses: 1, Negative: 2, TTLStores: 1, TTLServes: 1}}},
	}
	require.Len(t, r.TopPaths, len(categories))
	for i, cp := range r.TopPaths {
		assert.Equal(t, categories[i], cp.Category)
		assert.Equal(t, want[cp.Category], cp.Paths, cp.Category)
	}
}

func TestObserveWithoutPathTracking(t *testing.T) {
	c, _ := newTestCollector(t, nil)
	c.Observe(node.Observation{Op: op.Read, Path: "/a", Outcome: node.OutcomeMiss, Bytes: 7})
	r := c.Report("t")
	assert.EqualValues(t, 7, rowOf(t, r.Ops, "read").Bytes)
	assert.Nil(t, r.FullPaths)
	for _, cp := range r.TopPaths {
		assert.Empty(t, cp.Paths)
	}
}

func TestConcurrentUse(t *testing.T) {
	c, fn := newTestCollector(t, func(cfg *Config) { cfg.TopN = 4; cfg.PathsFull = true })
	fn.set(1)
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c.OnOp("getattr", 0, time.Duration(i))
				c.Observe(node.Observation{Op: op.Getattr, Path: fmt.Sprintf("/w%d/%d", w, i%50), Outcome: node.OutcomeHit})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			_ = c.Report("t")
			c.Reset(PartTimes)
		}
	})
	wg.Wait()
	r := c.Report("t")
	assert.EqualValues(t, workers*each, rowOf(t, r.Ops, "getattr").Calls)
	assert.Len(t, r.FullPaths, workers*50)
}

func BenchmarkOnOp(b *testing.B) {
	c := New(Config{})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.OnOp("getattr", 0, 1500*time.Nanosecond)
		}
	})
}

func BenchmarkObserveTopN(b *testing.B) {
	c := New(Config{TopN: 100})
	paths := make([]string, 1024)
	for i := range paths {
		paths[i] = fmt.Sprintf("/lib/python3/site-packages/m%d.py", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Observe(node.Observation{Op: op.Getattr, Path: paths[i%len(paths)], Outcome: node.OutcomeHit})
			i++
		}
	})
}
