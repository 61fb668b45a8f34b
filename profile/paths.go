package profile

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/hpc-copper/copper/op"
)

// DefaultMaxPaths bounds the full path list (profile_paths_full): about
// 150 MB of paths and counters at the worst.
const DefaultMaxPaths = 1_000_000

// FullPath is one row of profiling_paths_full.csv.
type FullPath struct {
	Path                             string
	Getattr, Readdir, Readlink, Read int64
	Hits, Misses, ENOENT             int64
	// Refetches counts the fetches of the path beyond the first per
	// operation: on a root each went to the backend again (an evicted
	// entry, an expired ENOENT, a file that changed).
	Refetches int64
}

// fetchSlots are the operations whose fetches of one path are told
// apart: getattr, readdir, dirplus (and its pages), readlink, read.
const fetchSlots = 5

func fetchSlot(o op.Op) int {
	switch o {
	case op.Getattr:
		return 0
	case op.Readdir:
		return 1
	case op.DirPlus, op.DirPlusNext:
		return 2
	case op.Readlink:
		return 3
	}
	return 4
}

// pathEntry is one path's counters in a pathSet.
type pathEntry struct {
	FullPath
	fetches [fetchSlots]int32
}

// Result classifies the path: "enoent" when every answer was ENOENT (it
// never existed while asked), "miss" when it was fetched at least once,
// "hit" when it was only ever served from the cache.
func (f FullPath) Result() string {
	switch {
	case f.ENOENT == f.Hits+f.Misses:
		return "enoent"
	case f.Misses > 0:
		return "miss"
	}
	return "hit"
}

const pathShards = 32 // lock striping: concurrent askers rarely share a shard

// pathSet counts every path asked, up to a hard cap; paths beyond it are
// counted as dropped.
type pathSet struct {
	limit   int64
	size    atomic.Int64
	dropped atomic.Int64
	shards  [pathShards]struct {
		mu    sync.Mutex
		paths map[string]*pathEntry
	}
}

func newPathSet(limit int) *pathSet {
	s := &pathSet{limit: int64(limit)}
	for i := range s.shards {
		s.shards[i].paths = map[string]*pathEntry{}
	}
	return s
}

// add counts one answer (fetched: this asker led a fetch for it); it
// reports false when the path was dropped because the set is full.
func (s *pathSet) add(o op.Op, path string, hit, enoent, fetched bool) bool {
	sh := &s.shards[xxhash.Sum64String(path)%pathShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f, ok := sh.paths[path]
	if !ok {
		if s.size.Add(1) > s.limit {
			s.size.Add(-1)
			s.dropped.Add(1)
			return false
		}
		f = &pathEntry{FullPath: FullPath{Path: path}}
		sh.paths[path] = f
	}
	switch o {
	case op.Getattr:
		f.Getattr++
	case op.Readdir, op.DirPlus, op.DirPlusNext: // a child's listing of the directory
		f.Readdir++
	case op.Readlink:
		f.Readlink++
	case op.Read:
		f.Read++
	}
	if hit {
		f.Hits++
	} else {
		f.Misses++
	}
	if enoent {
		f.ENOENT++
	}
	if fetched {
		if slot := fetchSlot(o); f.fetches[slot] < 1<<30 {
			if f.fetches[slot]++; f.fetches[slot] > 1 {
				f.Refetches++
			}
		}
	}
	return true
}

// list returns every path, sorted.
func (s *pathSet) list() []FullPath {
	out := make([]FullPath, 0, s.size.Load())
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, f := range sh.paths {
			out = append(out, f.FullPath)
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b FullPath) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func (s *pathSet) reset() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		s.size.Add(-int64(len(sh.paths)))
		clear(sh.paths)
		sh.mu.Unlock()
	}
	s.dropped.Store(0)
}
