package profile

import (
	"sort"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/op"
)

// OpRow is one row of profiling_operations.csv.
type OpRow struct {
	Op           string        `json:"op"`
	Calls        int64         `json:"calls"`
	Hits         int64         `json:"cache_hits"`
	Misses       int64         `json:"cache_misses"`
	Negative     int64         `json:"negative_results"`
	Errors       int64         `json:"errors"`
	Coalesced    int64         `json:"coalesced_waits"`
	Forwarded    int64         `json:"forwarded"`
	Backend      int64         `json:"backend_ops"`
	Bytes        int64         `json:"bytes_served"`
	Timed        int64         `json:"timed_calls"` // calls in the latency histogram
	TotalLatency time.Duration `json:"total_latency_ns"`
	P50          time.Duration `json:"p50_ns"`
	P90          time.Duration `json:"p90_ns"`
	P99          time.Duration `json:"p99_ns"`
	Max          time.Duration `json:"max_ns"`
}

// AvgLatency is the mean of the timed calls.
func (r OpRow) AvgLatency() time.Duration {
	if r.Timed == 0 {
		return 0
	}
	return r.TotalLatency / time.Duration(r.Timed)
}

// ErrorRow is one row of profiling_errors.csv.
type ErrorRow struct {
	Op    string
	Errno syscall.Errno
	Count int64
}

// CategoryPaths is one category of profiling_top_paths.csv.
type CategoryPaths struct {
	Category string
	Paths    []PathCount
}

// Report is everything one set of profiling files holds, read at one
// moment. The writers render it; tests build it by hand.
type Report struct {
	Host   string
	PID    int
	Rank   int
	Root   bool
	Target string
	Mount  string
	Tag    string
	Time   time.Time
	Uptime time.Duration

	TopN             int
	PathsFull        bool
	SnapshotInterval time.Duration
	MaxCacheable     int64
	NegativeTTL      time.Duration

	Ops           []OpRow
	Errors        []ErrorRow
	TTL           TTLCounts
	IoctlExternal int64
	IoctlTerminal int64 // terminal ioctls answered ENOTTY, not in Errors
	Large         LargeReads
	Ioctls        map[uint32]int64
	Cache         cache.Stats
	TopPaths      []CategoryPaths // every category, in file order
	FullPaths     []FullPath      // nil unless PathsFull
	PathsDropped  int64
}

// Ops returns the operation rows (what `copper-node stats` shows).
func (c *Collector) Ops() []OpRow {
	st := c.nodeStats()
	return c.opRows(c.delta(countersOf(st)))
}

func (c *Collector) opRows(n nodeCounters) []OpRow {
	var rows []OpRow
	row := func(name string, s *opStat) OpRow {
		l := s.latency.read()
		r := OpRow{
			Op: name, Calls: s.calls.Load(), Errors: s.errors.Load(), Negative: s.negative.Load(),
			Timed: l.Count, TotalLatency: l.Total, P50: l.P50, P90: l.P90, P99: l.P99, Max: l.Max,
		}
		if o := nodeOpOf(name); o != 0 {
			r.Hits, r.Misses, r.Coalesced = n.hits[o], n.misses[o], n.coalesced[o]
			r.Forwarded, r.Backend = n.forwarded[o], n.backend[o]
			if o == op.Read {
				r.Bytes = c.bytesServed.Load()
			}
		}
		return r
	}
	for i, name := range fuseOps {
		s := &c.ops[i]
		if i < alwaysRows || s.calls.Load() > 0 || s.latency.read().Count > 0 {
			rows = append(rows, row(name, s))
		}
	}
	for _, o := range nodeOnlyOps {
		if n.hits[o]|n.misses[o]|n.coalesced[o]|n.forwarded[o]|n.backend[o] != 0 {
			rows = append(rows, row(o.String(), new(opStat))) // no FUSE calls of its own
		}
	}
	var extra []string
	c.extra.Range(func(k, _ any) bool { extra = append(extra, k.(string)); return true })
	sort.Strings(extra)
	for _, name := range extra {
		rows = append(rows, row(name, c.stat(name)))
	}
	return rows
}

func (c *Collector) errorRows(rows []OpRow) []ErrorRow {
	var out []ErrorRow
	for _, r := range rows {
		// Not c.stat: that would register a row (dirplus) that has no
		// FUSE calls as an operation called.
		var s *opStat
		if i := fuseSlot(r.Op); i >= 0 {
			s = &c.ops[i]
		} else if v, ok := c.extra.Load(r.Op); ok {
			s = v.(*opStat)
		} else {
			continue
		}
		for e := range s.errnos {
			if n := s.errnos[e].Load(); n > 0 {
				out = append(out, ErrorRow{Op: r.Op, Errno: syscall.Errno(e), Count: n})
			}
		}
	}
	return out
}

// Report reads every counter now, for a set of files tagged tag.
func (c *Collector) Report(tag string) Report {
	st := c.nodeStats()
	n := c.delta(countersOf(st))
	now := c.cfg.Now()
	r := Report{
		Host: c.cfg.Host, PID: c.cfg.PID, Rank: c.cfg.Rank, Root: c.cfg.Root, Tag: tag,
		Target: c.cfg.Target, Mount: c.cfg.Mount,
		Time: now, Uptime: now.Sub(c.cfg.Started),
		TopN: c.cfg.TopN, PathsFull: c.cfg.PathsFull, SnapshotInterval: c.cfg.SnapshotInterval,
		MaxCacheable: c.cfg.MaxCacheable, NegativeTTL: c.cfg.NegativeTTL,
		TTL:   n.ttl,
		Cache: st.Cache,
	}
	r.Ops = c.opRows(n)
	r.Errors = c.errorRows(r.Ops)
	c.ioctlMu.Lock()
	r.IoctlExternal = c.ioctlExternal
	r.IoctlTerminal = c.ioctlTerminal.Load()
	r.Ioctls = make(map[uint32]int64, len(c.ioctls))
	for k, v := range c.ioctls {
		r.Ioctls[k] = v
	}
	c.ioctlMu.Unlock()
	for i, name := range categories {
		cp := CategoryPaths{Category: name}
		if c.sketches[i] != nil {
			cp.Paths = c.sketches[i].top(c.cfg.TopN)
		}
		r.TopPaths = append(r.TopPaths, cp)
	}
	if c.cfg.LargeReads != nil {
		r.Large = c.cfg.LargeReads()
	}
	if c.paths != nil {
		r.FullPaths = c.paths.list()
		r.PathsDropped = c.paths.dropped.Load()
	}
	return r
}
