package profile

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSketchExactWithinCapacity(t *testing.T) {
	s := newSketch(8)
	s.add("/b", true, false)
	s.add("/a", false, true)
	s.add("/b", false, false)
	s.add("/c", true, false)
	got := s.top(0)
	want := []PathCount{
		{Path: "/b", PathCounts: PathCounts{Events: 2, Hits: 1, Misses: 1}},
		{Path: "/a", PathCounts: PathCounts{Events: 1, Misses: 1, Negative: 1}}, // ties by path
		{Path: "/c", PathCounts: PathCounts{Events: 1, Hits: 1}},
	}
	assert.Equal(t, want, got)
	assert.Equal(t, want[:2], s.top(2))
	s.reset()
	assert.Empty(t, s.top(0))
}

// A skewed stream over many more paths than the sketch holds: the true
// heavy paths are found, their counts bounded as space-saving promises.
func TestSketchHeavyHitters(t *testing.T) {
	const n, capacity, distinct, total = 5, 40, 5000, 200000
	rng := rand.New(rand.NewPCG(7, 8))
	zipf := rand.NewZipf(rng, 1.3, 2, distinct-1)
	truth := map[string]int64{}
	s := newSketch(capacity)
	for range total {
		p := fmt.Sprintf("/p%05d", zipf.Uint64())
		truth[p]++
		s.add(p, false, false)
	}
	paths := make([]string, 0, len(truth))
	for p := range truth {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		if truth[paths[i]] != truth[paths[j]] {
			return truth[paths[i]] > truth[paths[j]]
		}
		return paths[i] < paths[j]
	})
	top := s.top(n)
	require.Len(t, top, n)
	for i, got := range top {
		assert.Equal(t, paths[i], got.Path, "rank %d", i)
		assert.GreaterOrEqual(t, got.Events, truth[got.Path], "%s never under-counted", got.Path)
		assert.LessOrEqual(t, got.Events, truth[got.Path]+total/capacity, "%s over-count bound", got.Path)
	}
	// Every tracked count is an over-estimate of the truth.
	for _, e := range s.top(0) {
		assert.GreaterOrEqual(t, e.Events, truth[e.Path], e.Path)
	}
	assert.Len(t, s.top(0), capacity, "memory stays bounded")
}

func TestSketchTTLEvents(t *testing.T) {
	const ttl = 100
	type step struct {
		served, fetched, enoent bool
		now                     int64
	}
	tests := []struct {
		name  string
		steps []step
		want  *PathCounts // nil: not tracked
	}{
		{"success touches nothing", []step{{fetched: true, now: 1}}, nil},
		{"store then serve", []step{{fetched: true, enoent: true, now: 1}, {served: true, enoent: true, now: 50}},
			&PathCounts{Events: 2, Hits: 1, Misses: 1, Negative: 2, TTLStores: 1, TTLServes: 1}},
		{"lapsed entry fetched again", []step{{fetched: true, enoent: true, now: 1}, {fetched: true, enoent: true, now: 101}},
			&PathCounts{Events: 2, Misses: 2, Negative: 2, TTLStores: 2, TTLExpires: 1}},
		{"lapsed, and the path appeared", []step{{fetched: true, enoent: true, now: 1}, {fetched: true, now: 200}, {fetched: true, now: 300}},
			&PathCounts{Events: 2, Misses: 2, Negative: 1, TTLStores: 1, TTLExpires: 1}},
		{"dropped early", []step{{fetched: true, enoent: true, now: 1}, {fetched: true, now: 50}},
			&PathCounts{Events: 2, Misses: 2, Negative: 1, TTLStores: 1, TTLClears: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSketch(4)
			for _, st := range tt.steps {
				s.ttlEvent("/x", st.served, st.fetched, st.enoent, st.now, ttl)
			}
			got := s.top(0)
			if tt.want == nil {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			assert.Equal(t, *tt.want, got[0].PathCounts)
		})
	}

	t.Run("no TTL stores nothing", func(t *testing.T) {
		s := newSketch(4)
		s.ttlEvent("/x", false, true, true, 1, 0)
		assert.Empty(t, s.top(0))
	})
}

func BenchmarkSketchAdd(b *testing.B) {
	s := newSketch(800)
	paths := make([]string, 4096)
	for i := range paths {
		paths[i] = fmt.Sprintf("/usr/lib/python3/dist-packages/pkg%d/__init__.py", i)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var i uint
		for pb.Next() {
			s.add(paths[i%uint(len(paths))], true, false)
			i = i*5 + 1
		}
	})
}
