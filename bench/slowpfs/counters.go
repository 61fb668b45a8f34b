package slowpfs

import (
	"maps"
	"sort"
	"sync"
)

// Operation names, as counted. The first six cost metadata service time,
// read costs bandwidth, the rest are counted for free (they are
// asynchronous for the application or never reach a real MDS).
const (
	OpLookup     = "lookup"
	OpGetattr    = "getattr"
	OpOpen       = "open"
	OpOpendir    = "opendir"
	OpReaddir    = "readdir" // one per DirEntriesPerOp entries listed
	OpReadlink   = "readlink"
	OpRead       = "read"
	OpRelease    = "release"
	OpReleasedir = "releasedir"
	OpStatfs     = "statfs"
	OpGetxattr   = "getxattr"
)

// AllOps lists the counted operations in report order.
var AllOps = []string{OpLookup, OpGetattr, OpOpen, OpOpendir, OpReaddir, OpReadlink,
	OpRead, OpRelease, OpReleasedir, OpStatfs, OpGetxattr}

// OpCount counts one operation type.
type OpCount struct {
	Ops    int64 `json:"ops"`
	Errors int64 `json:"errors"` // answered with an errno (ENOENT mostly)
	Bytes  int64 `json:"bytes,omitempty"`
}

// PathCount counts the operations on one path (a path relative to the
// backing directory, "/" being its root).
type PathCount struct {
	Ops      map[string]int64 `json:"ops"`
	Bytes    int64            `json:"bytes,omitempty"`    // bytes read
	Distinct int64            `json:"distinct,omitempty"` // distinct bytes read (union of the ranges)
}

// pathState is a path's counts and the byte ranges read from it.
type pathState struct {
	PathCount
	ranges []byteRange // sorted, disjoint, not adjacent
}

type byteRange struct{ start, end int64 }

// addRange merges [start, end) into the ranges and updates Distinct.
func (p *pathState) addRange(start, end int64) {
	if end <= start {
		return
	}
	// Reads are mostly sequential, so the list stays short.
	out := p.ranges[:0:0]
	merged := byteRange{start, end}
	placed := false
	for _, r := range p.ranges {
		switch {
		case r.end < merged.start:
			out = append(out, r)
		case merged.end < r.start:
			if !placed {
				out = append(out, merged)
				placed = true
			}
			out = append(out, r)
		default:
			merged.start, merged.end = min(merged.start, r.start), max(merged.end, r.end)
		}
	}
	if !placed {
		out = append(out, merged)
	}
	p.ranges = out
	var d int64
	for _, r := range out {
		d += r.end - r.start
	}
	p.Distinct = d
}

// Counters counts every backend operation by type and by path.
type Counters struct {
	mu    sync.Mutex
	ops   map[string]*OpCount
	paths map[string]*pathState
}

// NewCounters returns zeroed counters.
func NewCounters() *Counters {
	return &Counters{ops: map[string]*OpCount{}, paths: map[string]*pathState{}}
}

// Add counts n operations of type op on path; failed ones count as
// errors too.
func (c *Counters) Add(op, path string, n int64, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	oc := c.opLocked(op)
	oc.Ops += n
	if failed {
		oc.Errors += n
	}
	pc := c.pathLocked(path)
	pc.Ops[op] += n
}

// AddRead counts one read of n bytes at offset off of path.
func (c *Counters) AddRead(path string, off, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	oc := c.opLocked(OpRead)
	oc.Ops++
	oc.Bytes += n
	pc := c.pathLocked(path)
	pc.Ops[OpRead]++
	pc.Bytes += n
	pc.addRange(off, off+n)
}

func (c *Counters) opLocked(op string) *OpCount {
	oc := c.ops[op]
	if oc == nil {
		oc = &OpCount{}
		c.ops[op] = oc
	}
	return oc
}

func (c *Counters) pathLocked(path string) *pathState {
	pc := c.paths[path]
	if pc == nil {
		pc = &pathState{PathCount: PathCount{Ops: map[string]int64{}}}
		c.paths[path] = pc
	}
	return pc
}

// CounterSnapshot is a copy of the counters.
type CounterSnapshot struct {
	Ops   map[string]OpCount   `json:"ops"`
	Paths map[string]PathCount `json:"paths"`
}

// Snapshot copies the counters.
func (c *Counters) Snapshot() CounterSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshotLocked()
}

// Reset zeroes the counters and returns what they held.
func (c *Counters) Reset() CounterSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.snapshotLocked()
	c.ops = map[string]*OpCount{}
	c.paths = map[string]*pathState{}
	return s
}

func (c *Counters) snapshotLocked() CounterSnapshot {
	s := CounterSnapshot{Ops: make(map[string]OpCount, len(c.ops)), Paths: make(map[string]PathCount, len(c.paths))}
	for k, v := range c.ops {
		s.Ops[k] = *v
	}
	for k, v := range c.paths {
		s.Paths[k] = PathCount{Ops: maps.Clone(v.Ops), Bytes: v.Bytes, Distinct: v.Distinct}
	}
	return s
}

// Total sums the operations of the given types (all types when none are
// given).
func (s CounterSnapshot) Total(ops ...string) int64 {
	if len(ops) == 0 {
		ops = AllOps
	}
	var n int64
	for _, op := range ops {
		n += s.Ops[op].Ops
	}
	return n
}

// Sub returns s minus earlier, for counters of one interval. Distinct
// bytes cannot be split by interval: the result keeps s's (Reset between
// intervals when they matter).
func (s CounterSnapshot) Sub(earlier CounterSnapshot) CounterSnapshot {
	out := CounterSnapshot{Ops: map[string]OpCount{}, Paths: map[string]PathCount{}}
	for k, v := range s.Ops {
		e := earlier.Ops[k]
		d := OpCount{Ops: v.Ops - e.Ops, Errors: v.Errors - e.Errors, Bytes: v.Bytes - e.Bytes}
		if d != (OpCount{}) {
			out.Ops[k] = d
		}
	}
	for p, v := range s.Paths {
		e := earlier.Paths[p]
		d := PathCount{Ops: map[string]int64{}, Bytes: v.Bytes - e.Bytes, Distinct: v.Distinct}
		for op, n := range v.Ops {
			if dn := n - e.Ops[op]; dn != 0 {
				d.Ops[op] = dn
			}
		}
		if len(d.Ops) > 0 || d.Bytes != 0 {
			out.Paths[p] = d
		}
	}
	return out
}

// SortedPaths lists the counted paths in order.
func (s CounterSnapshot) SortedPaths() []string {
	out := make([]string, 0, len(s.Paths))
	for p := range s.Paths {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
