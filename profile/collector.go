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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

// Config sets up a Collector.
type Config struct {
	JobDir string // outputs go to JobDir/profiling, JobDir/tables, JobDir/ioctl
	Host   string // short hostname: <P> = <Host>-<PID>
	PID    int
	Rank   int
	Root   bool   // a tree's root (role "root"), else "child"
	Target string // host directory at the view's "/", written for copper-report
	Mount  string // the view's mount point

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
	// LargeReads reads the counters of the files over MaxCacheable read
	// straight from the host (fuse.Mounted.DirectReads); nil reads zeros.
	LargeReads func() LargeReads
}

// LargeFile is one file over max_cacheable_bytes read straight from the
// host: a row of profiling_large_files.csv.
type LargeFile struct {
	Path               string
	Size, Opens, Bytes int64
}

// LargeReads are the files over max_cacheable_bytes this node read
// itself, since it started (the clear commands leave them alone).
type LargeReads struct {
	Files, Opens, Bytes int64
	Dropped             int64       // files counted but not listed (memory bound)
	List                []LargeFile // by path
}

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
	ioctlTerminal atomic.Int64     // isatty's TCGETS & co., answered ENOTTY by the view

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

// OnOp counts one FUSE operation (fuse.Options.OnOp). An ioctl answered
// ENOTTY is a terminal request (isatty on every Python open), which the
// view answers as a tty-less file system must: counted apart, not as an
// error.
func (c *Collector) OnOp(name string, errno syscall.Errno, d time.Duration) {
	s := c.stat(name)
	s.calls.Add(1)
	if errno == syscall.ENOTTY && name == op.FuseIoctl {
		c.ioctlTerminal.Add(1)
	} else if errno != 0 {
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
	fetched := ob.Outcome == node.OutcomeMiss && ob.Errno != syscall.EINTR
	if c.paths != nil && !c.paths.add(ob.Op, ob.Path, hit, enoent, fetched) && c.warned.CompareAndSwap(false, true) {
		c.log.Warn("profile_paths_full: path list full, further new paths are only counted as dropped",
			"max_paths", c.cfg.MaxPaths)
	}
}
