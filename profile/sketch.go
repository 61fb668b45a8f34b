package profile

import (
	"container/heap"
	"slices"
	"strings"
	"sync"
)

// PathCounts are the per-path columns of profiling_top_paths.csv.
type PathCounts struct {
	Events     int64 // total_events (space-saving estimate, see sketch)
	Hits       int64
	Misses     int64
	Negative   int64 // answers with ENOENT
	TTLStores  int64
	TTLServes  int64
	TTLExpires int64
	TTLClears  int64
}

// sketch keeps the heaviest paths of one category in bounded memory with
// the space-saving algorithm (Metwally et al., 2005): at most capacity
// paths are tracked; a new path replaces the least counted one and
// inherits its count. A path's Events is then never below its true count
// and at most total/capacity above it, and every path with more than
// total/capacity events is tracked. The other counters count only what
// happened since the path was last taken into the sketch.
type sketch struct {
	capacity int

	mu    sync.Mutex
	index map[string]*entry
	heap  entryHeap // least Events first
}

type entry struct {
	path   string
	counts PathCounts
	// negExpiry is when the ENOENT entry this profiler saw stored for
	// the path lapses (unix ns; 0 = none): the metadata_ttl category
	// infers expiries and clears from it.
	negExpiry int64
	pos       int
}

func newSketch(capacity int) *sketch {
	return &sketch{capacity: max(capacity, 1), index: make(map[string]*entry, capacity)}
}

// slot returns path's entry, taking it into the sketch (and evicting the
// least counted path when full). s.mu is held. The caller then adds the
// event, which counts in Events, and calls fix.
func (s *sketch) slot(path string) *entry {
	if e, ok := s.index[path]; ok {
		return e
	}
	if len(s.heap) < s.capacity {
		e := &entry{path: path}
		s.index[path] = e
		heap.Push(&s.heap, e)
		return e
	}
	min := s.heap[0]
	delete(s.index, min.path)
	inherited := min.counts.Events
	*min = entry{path: path, counts: PathCounts{Events: inherited}, pos: 0}
	s.index[path] = min
	return min
}

func (s *sketch) fix(e *entry) { heap.Fix(&s.heap, e.pos) }

// add counts one event of path.
func (s *sketch) add(path string, hit, negative bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.slot(path)
	e.counts.Events++
	if hit {
		e.counts.Hits++
	} else {
		e.counts.Misses++
	}
	if negative {
		e.counts.Negative++
	}
	s.fix(e)
}

// ttlEvent records what one answer did to path's exact-path ENOENT
// entry, as far as it can be told from outside the cache: served from
// it, stored (a fetch answered ENOENT), found lapsed (a fetch after the
// stored lifetime ended) or dropped early (a fetch answered other than
// ENOENT while the stored lifetime was still running). Answers that touch
// no ENOENT entry are not events of this category.
func (s *sketch) ttlEvent(path string, served, fetched, enoent bool, now, ttl int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, known := s.index[path]
	var expired, cleared bool
	if fetched && known && e.negExpiry != 0 {
		if now >= e.negExpiry {
			expired = true
		} else if !enoent {
			cleared = true
		}
		e.negExpiry = 0
	}
	stored := fetched && enoent && ttl > 0
	if !served && !stored && !expired && !cleared {
		return
	}
	e = s.slot(path)
	e.counts.Events++
	if served {
		e.counts.Hits++
		e.counts.TTLServes++
	} else {
		e.counts.Misses++
	}
	if enoent {
		e.counts.Negative++
	}
	if stored {
		e.counts.TTLStores++
		e.negExpiry = now + ttl
	}
	if expired {
		e.counts.TTLExpires++
	}
	if cleared {
		e.counts.TTLClears++
	}
	s.fix(e)
}

// PathCount is one tracked path.
type PathCount struct {
	Path string
	PathCounts
}

// top returns up to n tracked paths, most events first, ties by path;
// n <= 0 returns all of them.
func (s *sketch) top(n int) []PathCount {
	s.mu.Lock()
	out := make([]PathCount, 0, len(s.heap))
	for _, e := range s.heap {
		out = append(out, PathCount{Path: e.path, PathCounts: e.counts})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b PathCount) int {
		if a.Events != b.Events {
			if a.Events > b.Events {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

func (s *sketch) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.index)
	s.heap = s.heap[:0]
}

// entryHeap is a min-heap of entries by Events.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].counts.Events < h[j].counts.Events }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.pos = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
