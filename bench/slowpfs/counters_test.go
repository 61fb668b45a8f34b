package slowpfs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCountersByTypeAndPath(t *testing.T) {
	c := NewCounters()
	c.Add(OpLookup, "/a", 1, false)
	c.Add(OpLookup, "/a/missing", 1, true)
	c.Add(OpReaddir, "/a", 3, false)
	c.AddRead("/a/f", 0, 100)
	c.AddRead("/a/f", 100, 50)
	s := c.Snapshot()
	assert.Equal(t, OpCount{Ops: 2, Errors: 1}, s.Ops[OpLookup])
	assert.Equal(t, OpCount{Ops: 3}, s.Ops[OpReaddir])
	assert.Equal(t, OpCount{Ops: 2, Bytes: 150}, s.Ops[OpRead])
	assert.Equal(t, map[string]int64{OpLookup: 1, OpReaddir: 3}, s.Paths["/a"].Ops)
	assert.Equal(t, PathCount{Ops: map[string]int64{OpRead: 2}, Bytes: 150, Distinct: 150}, s.Paths["/a/f"])
	assert.Equal(t, []string{"/a", "/a/f", "/a/missing"}, s.SortedPaths())
	assert.Equal(t, int64(7), s.Total())
	assert.Equal(t, int64(5), s.Total(OpLookup, OpReaddir))

	// A snapshot is a copy.
	c.Add(OpLookup, "/a", 1, false)
	assert.Equal(t, int64(1), s.Paths["/a"].Ops[OpLookup])

	before := c.Reset()
	assert.Equal(t, int64(2), before.Paths["/a"].Ops[OpLookup])
	assert.Empty(t, c.Snapshot().Ops)
	assert.Empty(t, c.Snapshot().Paths)
}

func TestDistinctBytesMergeRanges(t *testing.T) {
	tests := []struct {
		name  string
		reads [][2]int64 // offset, length
		want  int64
	}{
		{"sequential", [][2]int64{{0, 10}, {10, 10}, {20, 5}}, 25},
		{"the same range twice", [][2]int64{{0, 4096}, {0, 4096}}, 4096},
		{"gaps stay out", [][2]int64{{0, 10}, {100, 10}}, 20},
		{"a read bridging two ranges", [][2]int64{{0, 10}, {20, 10}, {5, 20}}, 30},
		{"backwards and overlapping", [][2]int64{{50, 10}, {40, 15}, {0, 5}}, 25},
		{"empty reads", [][2]int64{{0, 0}, {7, 0}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCounters()
			var bytes int64
			for _, r := range tt.reads {
				c.AddRead("/f", r[0], r[1])
				bytes += r[1]
			}
			pc := c.Snapshot().Paths["/f"]
			assert.Equal(t, tt.want, pc.Distinct)
			assert.Equal(t, bytes, pc.Bytes)
		})
	}
}

func TestFetchSummary(t *testing.T) {
	c := NewCounters()
	// One client that fetched everything once.
	c.Add(OpLookup, "/site", 1, false)
	c.Add(OpOpendir, "/site", 1, false)
	c.Add(OpReaddir, "/site", 2, false) // pages of the same listing
	c.Add(OpLookup, "/site/m.py", 1, false)
	c.Add(OpOpen, "/site/m.py", 1, false)
	c.Add(OpRelease, "/site/m.py", 1, false) // free, not a fetch
	c.AddRead("/site/m.py", 0, 1000)
	c.Add(OpLookup, "/site/missing.py", 1, true)
	c.Add(OpLookup, "/other", 1, false)
	once := c.Snapshot().Fetches("/site")
	assert.Equal(t, 3, once.Paths)
	assert.Equal(t, 5, once.Keys)
	assert.Equal(t, int64(5), once.Fetches)
	assert.InDelta(t, 1.0, once.PerKey, 1e-9)
	assert.InDelta(t, 1.0, once.DataRatio, 1e-9)
	assert.Equal(t, ClassSummary{Paths: 3, Fetches: 3, PerPath: 1}, once.ByClass[ClassStat])

	// Three more clients without a cache between them: every fetch and
	// byte four times.
	for range 3 {
		c.Add(OpLookup, "/site", 1, false)
		c.Add(OpOpendir, "/site", 1, false)
		c.Add(OpLookup, "/site/m.py", 1, false)
		c.Add(OpOpen, "/site/m.py", 1, false)
		c.AddRead("/site/m.py", 0, 1000)
		c.Add(OpLookup, "/site/missing.py", 1, true)
	}
	four := c.Snapshot().Fetches("/site")
	assert.Equal(t, 5, four.Keys)
	assert.InDelta(t, 4.0, four.PerKey, 1e-9)
	assert.InDelta(t, 4.0, four.DataRatio, 1e-9)
	assert.InDelta(t, 4.0, four.ByClass[ClassOpen].PerPath, 1e-9)

	all := c.Snapshot().Fetches("/")
	assert.Equal(t, 4, all.Paths, "the root summary includes /other")
	require.Zero(t, NewCounters().Snapshot().Fetches("/").PerKey, "no fetches: ratio 0, not NaN")
}

func TestCounterSnapshotSub(t *testing.T) {
	c := NewCounters()
	c.Add(OpLookup, "/a", 2, false)
	c.AddRead("/f", 0, 10)
	first := c.Snapshot()
	c.Add(OpLookup, "/a", 1, true)
	c.Add(OpOpen, "/b", 1, false)
	d := c.Snapshot().Sub(first)
	assert.Equal(t, map[string]OpCount{OpLookup: {Ops: 1, Errors: 1}, OpOpen: {Ops: 1}}, d.Ops)
	assert.Equal(t, map[string]int64{OpLookup: 1}, d.Paths["/a"].Ops)
	assert.NotContains(t, d.Paths, "/f", "unchanged paths are left out")
}
