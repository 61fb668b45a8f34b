// Package profile is copper-node's operation profiler: per-operation
// counts, errors and latencies of the FUSE view, the node's cache
// outcomes, the hottest paths per category, an optional full path list,
// and the files docs/PROFILING.md specifies (written atomically), plus
// Copper 1.0's ioctl control commands.
//
// A Collector is fed by two hooks: OnOp (fuse.Options.OnOp, every FUSE
// operation) and Observe (node.Config.Observe, every answer of the node,
// to its own mount or to a child). Counters are atomics; path tracking
// takes a short per-category (or per-shard) lock and is off unless
// profile_top_n or profile_paths_full ask for it.
package profile

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

// Config sets up a Collector.
type Config struct {
	JobDir string // outputs go to JobDir/profiling, JobDir/tables, JobDir/ioctl
	Host   string // short hostname: <P> = <Host>-<PID>
	PID    int
	Rank   int
	Root   bool // a tree's root (role "root"), else "child"

	TopN             int  // hottest paths kept per category; 0 = none
	PathsFull        bool // keep every path asked
	MaxPaths         int  // cap of the full path list; 0 = DefaultMaxPaths
	SnapshotInterval time.Duration
	MaxCacheable     int64
	NegativeTTL      time.Duration // md_enoent_ttl_ms

	Started time.Time        // origin of uptime_s; zero = New's time
	Now     func() time.Time // nil = time.Now
	Logger  *slog.Logger

	// Stats reads the node's counters (and its cache's); nil reads zeros.
	Stats func() node.Stats
	// ClearCache empties the node's cache (ioctl 100 and 1900); nil = no cache.
	ClearCache func()
}

// Category names of profiling_top_paths.csv, in file order.
const (
	CategoryMetadata    = "metadata"
	CategoryData        = "data"
	CategoryTree        = "tree"
	CategoryLink        = "link"
	CategoryMetadataTTL = "metadata_ttl"
)

// categories lists the categories in file order (read-only).
var categories = [...]string{CategoryMetadata, CategoryData, CategoryTree, CategoryLink, CategoryMetadataTTL}

// categoryOf is the category of an operation's paths; -1 for none.
func categoryOf(o op.Op) int {
	switch o {
	case op.Getattr:
		return 0
	case op.Read:
		return 1
	case op.Readdir, op.DirPlus, op.DirPlusNext:
		return 2
	case op.Readlink:
		return 3
	}
	return -1
}

const ttlCategory = 4

// fuseOps are the FUSE operation names as the fuse package reports them,
// in profiling_operations.csv order (read-only). The first alwaysRows are
// always written; the others only once called.
var fuseOps = [...]string{
	"getattr", "lookup", "readdir", "readlink", "open", "read", "statfs", "getxattr", "ioctl",
	"opendir", "release", "releasedir", "listxattr", "fsync",
	"write", "create", "mkdir", "mknod", "unlink", "rmdir", "rename", "symlink", "link",
	"setattr", "setxattr", "removexattr", "tmpfile", "fallocate", "copy_file_range",
}

const alwaysRows = 9

// fuseSlot is the index of name in fuseOps, or -1.
func fuseSlot(name string) int {
	switch name {
	case "getattr":
		return 0
	case "lookup":
		return 1
	case "readdir":
		return 2
	case "readlink":
		return 3
	case "open":
		return 4
	case "read":
		return 5
	case "statfs":
		return 6
	case "getxattr":
		return 7
	case "ioctl":
		return 8
	}
	for i := alwaysRows; i < len(fuseOps); i++ {
		if fuseOps[i] == name {
			return i
		}
	}
	return -1
}

// nodeOpOf is the distributed operation whose node-level counters share
// a FUSE operation's row; 0 for rows without one.
func nodeOpOf(name string) op.Op {
	switch name {
	case "getattr":
		return op.Getattr
	case "readdir":
		return op.Readdir
	case "readlink":
		return op.Readlink
	case "read":
		return op.Read
	case "dirplus":
		return op.DirPlus
	case "dirplus_next":
		return op.DirPlusNext
	case "chunk":
		return op.Chunk
	}
	return 0
}

// nodeOnlyOps are rows of distributed operations no FUSE operation maps
// to: a node fetches a directory as a dirplus for the lookups, getattrs
// and readdirs in it, and children ask for them; chunks of large files
// serve FUSE reads through the chunk store (package spill). Written once
// counted.
var nodeOnlyOps = [...]op.Op{op.DirPlus, op.DirPlusNext, op.Chunk}

// maxErrno bounds the errno array of an operation; Linux errnos are < 134.
const maxErrno = 256

// opStat is one FUSE operation's counters.
type opStat struct {
	calls    atomic.Int64
	errors   atomic.Int64
	negative atomic.Int64 // answers with ENOENT
	errnos   [maxErrno]atomic.Int64
	latency  histogram
}

// Part selects counters to Reset; Copper 1.0's clear commands each name one.
type Part uint16

const (
	PartCounts         Part = 1 << iota // FUSE calls and errors, forwarded, backend ops, bytes served (ioctl 700)
	PartTimes                           // latencies (ioctl 1000)
	PartHits                            // cache hits (ioctl 800)
	PartMisses                          // cache misses and coalesced waits (ioctl 900)
	PartNegative                        // negative results and ENOENT TTL counters (ioctl 1800)
	PartDataEvents                      // data paths (ioctl 1400)
	PartTreeEvents                      // tree paths (ioctl 1500)
	PartMetadataEvents                  // metadata, link and metadata_ttl paths (ioctl 1600)
	PartIoctlEvents                     // ioctl counts (ioctl 2100)
	PartPaths                           // the full path list

	PartAll Part = 1<<iota - 1 // everything (ioctl 1900)
)

// nodeCounters are the node-level counters the profile reports relative
// to the last reset.
type nodeCounters struct {
	hits, misses, coalesced, forwarded, backend [len(op.All) + 1]int64
	ttl                                         TTLCounts
}

// TTLCounts are the cache's exact-path ENOENT counters.
type TTLCounts struct {
	Stores, Serves, Expires, Clears int64
}

func countersOf(st node.Stats) nodeCounters {
	var c nodeCounters
	for _, o := range op.All {
		s := st.Op(o)
		c.hits[o], c.misses[o], c.coalesced[o] = s.Hits, s.Misses, s.Coalesced
		c.forwarded[o], c.backend[o] = s.Forwarded, s.BackendOps
	}
	c.ttl = TTLCounts{
		Stores:  int64(st.Cache.NegativeStores),
		Serves:  int64(st.Cache.NegativeServes),
		Expires: int64(st.Cache.NegativeExpires),
		Clears:  int64(st.Cache.NegativeClears),
	}
	return c
}

// Collector gathers one node's profile. It is safe for concurrent use.
type Collector struct {
	cfg    Config
	prefix string // <host>-<pid>
	log    *slog.Logger

	ops   [len(fuseOps)]opStat
	extra sync.Map // name -> *opStat, names fuseOps does not list

	bytesServed atomic.Int64

	sketches [len(categories)]*sketch // nil without TopN
	paths    *pathSet                 // nil without PathsFull
	warned   atomic.Bool              // the full path list overflowed

	ioctlMu       sync.Mutex
	ioctls        map[uint32]int64 // every command seen
	ioctlExternal int64            // commands Copper 1.0 does not define

	baseMu sync.Mutex
	base   nodeCounters // node counters at the last reset of each part

	writeMu sync.Mutex // one set of files at a time
}

// New returns a Collector.
func New(cfg Config) *Collector {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Started.IsZero() {
		cfg.Started = cfg.Now()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxPaths <= 0 {
		cfg.MaxPaths = DefaultMaxPaths
	}
	if cfg.Host == "" {
		cfg.Host = "localhost"
	}
	c := &Collector{
		cfg:    cfg,
		prefix: fmt.Sprintf("%s-%d", cfg.Host, cfg.PID),
		log:    cfg.Logger,
		ioctls: map[uint32]int64{},
	}
	if cfg.TopN > 0 {
		for i := range c.sketches {
			c.sketches[i] = newSketch(8 * cfg.TopN)
		}
	}
	if cfg.PathsFull {
		c.paths = newPathSet(cfg.MaxPaths)
	}
	// The node's counters start at zero with it: no baseline to read yet.
	return c
}

// Prefix is <P>, the start of every file name this node writes.
func (c *Collector) Prefix() string { return c.prefix }

func (c *Collector) nodeStats() node.Stats {
	if c.cfg.Stats == nil {
		return node.Stats{}
	}
	return c.cfg.Stats()
}

func (c *Collector) nodeNow() nodeCounters { return countersOf(c.nodeStats()) }

func (c *Collector) stat(name string) *opStat {
	if i := fuseSlot(name); i >= 0 {
		return &c.ops[i]
	}
	if s, ok := c.extra.Load(name); ok {
		return s.(*opStat)
	}
	s, _ := c.extra.LoadOrStore(name, new(opStat))
	return s.(*opStat)
}

// OnOp counts one FUSE operation (fuse.Options.OnOp).
func (c *Collector) OnOp(name string, errno syscall.Errno, d time.Duration) {
	s := c.stat(name)
	s.calls.Add(1)
	if errno != 0 {
		s.errors.Add(1)
		if errno == syscall.ENOENT {
			s.negative.Add(1)
		}
		if errno < maxErrno {
			s.errnos[errno].Add(1)
		}
	}
	s.latency.record(d)
}

// Observe counts one answer of the node (node.Config.Observe).
func (c *Collector) Observe(ob node.Observation) {
	if ob.Bytes > 0 {
		c.bytesServed.Add(int64(ob.Bytes))
	}
	if c.cfg.TopN <= 0 && c.paths == nil {
		return
	}
	hit := ob.Outcome == node.OutcomeHit || ob.Outcome == node.OutcomeNegative || ob.Outcome == node.OutcomeListed
	enoent := ob.Errno == syscall.ENOENT
	if c.cfg.TopN > 0 {
		if cat := categoryOf(ob.Op); cat >= 0 {
			c.sketches[cat].add(ob.Path, hit, enoent)
		}
		served := ob.Outcome == node.OutcomeNegative
		fetched := ob.Outcome == node.OutcomeMiss && ob.Errno != syscall.EINTR
		if served || fetched {
			c.sketches[ttlCategory].ttlEvent(ob.Path, served, fetched, enoent,
				c.cfg.Now().UnixNano(), int64(c.cfg.NegativeTTL))
		}
	}
	if c.paths != nil && !c.paths.add(ob.Op, ob.Path, hit, enoent) && c.warned.CompareAndSwap(false, true) {
		c.log.Warn("profile_paths_full: path list full, further new paths are only counted as dropped",
			"max_paths", c.cfg.MaxPaths)
	}
}

// Reset clears the selected counters. Node and cache counters, which
// never go down, are reported from here on relative to their values now.
func (c *Collector) Reset(p Part) {
	now := c.nodeNow()
	c.baseMu.Lock()
	for _, o := range op.All {
		if p&PartCounts != 0 {
			c.base.forwarded[o], c.base.backend[o] = now.forwarded[o], now.backend[o]
		}
		if p&PartHits != 0 {
			c.base.hits[o] = now.hits[o]
		}
		if p&PartMisses != 0 {
			c.base.misses[o], c.base.coalesced[o] = now.misses[o], now.coalesced[o]
		}
	}
	if p&PartNegative != 0 {
		c.base.ttl = now.ttl
	}
	c.baseMu.Unlock()

	each := func(f func(*opStat)) {
		for i := range c.ops {
			f(&c.ops[i])
		}
		c.extra.Range(func(_, v any) bool { f(v.(*opStat)); return true })
	}
	if p&PartCounts != 0 {
		c.bytesServed.Store(0)
		each(func(s *opStat) {
			s.calls.Store(0)
			s.errors.Store(0)
			for i := range s.errnos {
				s.errnos[i].Store(0)
			}
		})
	}
	if p&PartTimes != 0 {
		each(func(s *opStat) { s.latency.reset() })
	}
	if p&PartNegative != 0 {
		each(func(s *opStat) { s.negative.Store(0) })
	}
	for cat, part := range map[int]Part{0: PartMetadataEvents, 1: PartDataEvents, 2: PartTreeEvents,
		3: PartMetadataEvents, ttlCategory: PartMetadataEvents} {
		if p&part != 0 && c.sketches[cat] != nil {
			c.sketches[cat].reset()
		}
	}
	if p&PartPaths != 0 && c.paths != nil {
		c.paths.reset()
		c.warned.Store(false)
	}
	if p&PartIoctlEvents != 0 {
		c.ioctlMu.Lock()
		clear(c.ioctls)
		c.ioctlExternal = 0
		c.ioctlMu.Unlock()
	}
}

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

// delta returns now relative to the last resets.
func (c *Collector) delta(now nodeCounters) nodeCounters {
	c.baseMu.Lock()
	b := c.base
	c.baseMu.Unlock()
	var d nodeCounters
	for _, o := range op.All {
		d.hits[o] = now.hits[o] - b.hits[o]
		d.misses[o] = now.misses[o] - b.misses[o]
		d.coalesced[o] = now.coalesced[o] - b.coalesced[o]
		d.forwarded[o] = now.forwarded[o] - b.forwarded[o]
		d.backend[o] = now.backend[o] - b.backend[o]
	}
	d.ttl = TTLCounts{
		Stores:  now.ttl.Stores - b.ttl.Stores,
		Serves:  now.ttl.Serves - b.ttl.Serves,
		Expires: now.ttl.Expires - b.ttl.Expires,
		Clears:  now.ttl.Clears - b.ttl.Clears,
	}
	return d
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
	if c.paths != nil {
		r.FullPaths = c.paths.list()
		r.PathsDropped = c.paths.dropped.Load()
	}
	return r
}
