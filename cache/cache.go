// Package cache holds a copper node's cache tables: file metadata, exact-path
// ENOENT results with a lifetime, directory listings, symlink targets and
// small file contents, all under one shared memory budget.
//
// Each table is a github.com/hashicorp/golang-lru/v2/simplelru LRU: it is
// widely used and kept up, every operation is O(1), and its eviction
// callback is the one place where byte accounting happens, whichever way an
// entry leaves (eviction, replacement, invalidation). The LRUs have no entry
// limit of their own; the byte budget bounds them.
//
// Locking: one mutex guards every table. Each Lookup reads two tables (the
// negative table, then the operation's own), a hit moves its entry in the
// LRU list (a write, so a read lock would not do), and eviction crosses
// tables. Per-table mutexes would cost two lock operations per lookup, one
// of them on the negative table that every operation shares, and could not
// keep the total within budget at every instant. The critical sections are a
// map lookup and a list move (see BenchmarkLookupHit: tens of nanoseconds),
// small beside a FUSE request or an RPC, and copper-node runs on a few
// pinned service cores.
//
// Results share memory with the cache: a caller must not modify the Data or
// Entries of a result it passed to Store or got from Lookup. Both slices are
// stored with their capacity clipped, so append copies instead of writing
// into shared memory.
package cache

import (
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/op"
)

// Config sets up a Cache.
type Config struct {
	// BudgetBytes bounds the bytes held across all tables, each entry
	// charged its allocations and bookkeeping as size.go estimates them.
	// Zero or less caches nothing.
	BudgetBytes int64
	// NegativeTTL is how long an exact-path ENOENT is served from the cache
	// (md_enoent_ttl_ms). Zero or less: ENOENT is not cached.
	NegativeTTL time.Duration
	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// Cache is the set of tables of one node. It is safe for concurrent use.
type Cache struct {
	budget int64
	ttl    time.Duration
	now    func() time.Time

	mu       sync.Mutex
	total    int64  // bytes across all tables, kept by the tables' eviction callbacks
	tick     uint64 // recency clock, bumped on every store and hit, orders entries across tables
	data     *table[fileData]
	tree     *table[[]op.DirEntry]
	metadata *table[op.Attr]
	negative *table[time.Time] // value: expiry
	links    *table[string]
	all      []anyTable // in Stats.Tables order
	others   []anyTable // every table but data: evicted oldest first once data is empty
	positive []anyTable // every table but negative
	count    counters
}

// fileData is a cached whole file and the stat it was read under.
type fileData struct {
	attr op.Attr
	data []byte
	// shipped: it came with its directory's dirplus; unread: no Read has
	// been answered with it yet (counted once it is: DirFiles.Read).
	shipped, unread bool
}

type counters struct {
	hits, misses                               OpCounts
	negStores, negServes, negExpires, negClear uint64
	listingServes                              uint64
	rejected                                   uint64
	dirFiles, dirFileBytes, dirFilesRead       uint64
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	c := &Cache{budget: max(cfg.BudgetBytes, 0), ttl: max(cfg.NegativeTTL, 0), now: cfg.Now}
	if c.now == nil {
		c.now = time.Now
	}
	c.data = newTable[fileData](TableData, &c.total)
	c.tree = newTable[[]op.DirEntry](TableTree, &c.total)
	c.metadata = newTable[op.Attr](TableMetadata, &c.total)
	c.negative = newTable[time.Time](TableNegative, &c.total)
	c.links = newTable[string](TableLinks, &c.total)
	c.all = []anyTable{c.data, c.tree, c.metadata, c.negative, c.links}
	c.others = []anyTable{c.tree, c.metadata, c.negative, c.links}
	c.positive = []anyTable{c.data, c.tree, c.metadata, c.links}
	return c
}

// Lookup answers o on path from the cache. A live ENOENT entry answers
// every operation with ENOENT; an expired one is dropped and the lookup
// misses. A path whose directory's listing is held and lacks its name is
// ENOENT too, with no expiry: a listing is a complete snapshot of the
// directory (see listed). DirPlus is answered when the listing and every
// entry's attributes are held. IsReady, DirPlusNext (paging, the node's
// business) and Chunk (the chunk store's) are never cached and not counted.
func (c *Cache) Lookup(o op.Op, path string) (op.Result, bool) {
	return c.lookup(o, path, countAll)
}

// Recheck is Lookup for a request whose miss was already counted: the
// leader of a singleflight looking again in case a flight that just
// finished stored the answer, or looking up the directory listing that
// answers a missed getattr. That look is part of one request, so it
// counts no hit or miss (the node counts a dedup, as groupcache does);
// otherwise a cold get would count two misses here and one at the node.
// An ENOENT it serves is still counted as served.
func (c *Cache) Recheck(o op.Op, path string) (op.Result, bool) {
	return c.lookup(o, path, countNone)
}

func (c *Cache) lookup(o op.Op, path string, mode countMode) (op.Result, bool) {
	hit, miss := mode != countNone, mode == countAll
	if !cached(o) {
		return op.Result{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if expiry, ok := c.negative.peek(path); ok {
		if c.now().Before(expiry) {
			c.count.negServes++
			counter(&c.count.hits[o], hit)
			return op.Fail(syscall.ENOENT), true
		}
		if mode == countHits {
			return op.Result{}, false // expiring it is the Lookup's that follows
		}
		c.negative.remove(path)
		c.count.negExpires++
		counter(&c.count.misses[o], miss)
		return op.Result{}, false
	}
	c.tick++
	var r op.Result
	var ok bool
	switch o {
	case op.Getattr:
		r.Attr, ok = c.metadata.get(path, c.tick)
	case op.Readdir:
		r.Entries, ok = c.tree.get(path, c.tick)
	case op.Readlink:
		r.Target, ok = c.links.get(path, c.tick)
	case op.Read:
		var it *item[fileData]
		if it, ok = c.data.getItem(path, c.tick); ok {
			r.Attr, r.Data = it.val.attr, it.val.data
			c.markRead(&it.val)
		}
	case op.DirPlus:
		r.Plus, ok = c.plus(path)
	}
	if !ok && c.listed(path) == absent {
		c.count.listingServes++
		counter(&c.count.hits[o], hit)
		return op.Fail(syscall.ENOENT), true
	}
	if !ok {
		counter(&c.count.misses[o], miss)
		return op.Result{}, false
	}
	counter(&c.count.hits[o], hit)
	return r, true
}

// Listing states of a path's name in its directory's cached listing.
const (
	unlisted = iota // the directory's listing is not held
	present
	absent
)

// listed says whether path's name is in the cached listing of its
// directory. Listings are kept sorted by name (storePositive sorts), so
// this is a binary search. c.mu is held.
func (c *Cache) listed(path string) int {
	if path == "/" {
		return unlisted
	}
	i := strings.LastIndexByte(path, '/')
	dir, name := path[:max(i, 1)], path[i+1:]
	entries, ok := c.tree.peek(dir)
	if !ok {
		return unlisted
	}
	if _, found := slices.BinarySearchFunc(entries, name, func(e op.DirEntry, n string) int {
		return strings.Compare(e.Name, n)
	}); found {
		return present
	}
	return absent
}

// Listed reports whether dir's listing is held, so that a miss on a name
// in it is answered by the cache without asking anyone.
func (c *Cache) Listed(dir string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.tree.peek(dir)
	return ok
}

// plus assembles a DirPlus answer from the listing of dir and the
// metadata and links of its names; it misses if any name's attributes
// are gone (evicted or dropped). c.mu is held.
func (c *Cache) plus(dir string) ([]op.PlusEntry, bool) {
	entries, ok := c.tree.get(dir, c.tick)
	if !ok {
		return nil, false
	}
	out := make([]op.PlusEntry, len(entries))
	for i, e := range entries {
		p := op.Join(dir, e.Name)
		attr, ok := c.metadata.get(p, c.tick)
		if !ok {
			return nil, false
		}
		out[i] = op.PlusEntry{Name: e.Name, Attr: attr}
		if attr.IsSymlink() {
			out[i].Target, out[i].HasTarget = c.links.get(p, c.tick)
		}
		if attr.IsRegular() {
			out[i].Data, out[i].HasData = c.shippedData(p, attr)
		}
	}
	return out, true
}

// cached reports whether the cache holds answers to o. Chunks of large
// files live in the node's chunk store (package spill), under a budget
// of their own.
func cached(o op.Op) bool {
	return o.Valid() && o != op.IsReady && o != op.DirPlusNext && o != op.Chunk
}

// Store records the answer r to o on path. Successes go to the operation's
// table (a Read also fills the metadata table) and clear any ENOENT entry
// for path; ENOENT goes to the negative table and drops what was known of
// path; other errnos are not cached but still clear an ENOENT entry, as in
// Copper 1.0. A result larger than the whole budget is not stored. When
// Store returns, the total is within budget.
func (c *Cache) Store(o op.Op, path string, r op.Result) {
	if !cached(o) {
		return
	}
	switch {
	case r.Errno == syscall.ENOENT:
		c.storeNegative(path)
	case r.Errno != 0:
		c.mu.Lock()
		c.clearNegative(path)
		c.mu.Unlock()
	default:
		c.storePositive(o, path, r)
	}
}

func (c *Cache) storePositive(o op.Op, path string, r op.Result) {
	// Sizes are computed before locking: a large listing takes a while.
	// They are taken before the slices are clipped (clipping keeps the
	// allocation alive all the same).
	attrSize := metadataBytes(path)
	var entries []op.DirEntry
	var data []byte
	var opSize int64
	var children []child
	switch o {
	case op.Readdir:
		entries = sortedEntries(r.Entries)
		opSize = treeBytes(path, entries)
		entries = entries[:len(entries):len(entries)]
	case op.DirPlus:
		entries, children = plusEntries(path, r.Plus)
		opSize = treeBytes(path, entries)
	case op.Readlink:
		opSize = linkBytes(path, r.Target)
	case op.Read:
		opSize = dataBytes(path, r.Data)
		data = r.Data[:len(r.Data):len(r.Data)]
	}
	now := c.now()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearNegative(path)
	switch o {
	case op.Getattr:
		c.putStat(path, r.Attr, attrSize)
	case op.Readdir:
		put(c, c.tree, path, entries, opSize)
	case op.Readlink:
		put(c, c.links, path, r.Target, opSize)
	case op.Read:
		put(c, c.metadata, path, r.Attr, attrSize)
		put(c, c.data, path, fileData{attr: r.Attr, data: data}, opSize)
	case op.DirPlus:
		// Each entry is what Getattr (and Readlink) of the name would
		// store; the listing goes last, as the most recent.
		for _, ch := range children {
			c.clearNegative(ch.path)
			c.putStat(ch.path, ch.attr, ch.attrSize)
			if ch.hasTarget {
				put(c, c.links, ch.path, ch.target, ch.linkSize)
			}
			if ch.hasData {
				c.storeShipped(ch)
			}
		}
		put(c, c.tree, path, entries, opSize)
	}
	c.evict(now)
}

// child is one DirPlus entry ready to store.
type child struct {
	path                         string
	attr                         op.Attr
	target                       string
	hasTarget, hasData           bool
	data                         []byte
	attrSize, linkSize, dataSize int64
}

// plusEntries derives a listing and the per-name entries of a DirPlus
// answer, sizes included, outside the lock.
func plusEntries(dir string, plus []op.PlusEntry) ([]op.DirEntry, []child) {
	entries := make([]op.DirEntry, len(plus))
	children := make([]child, len(plus))
	for i, e := range plus {
		entries[i] = e.Entry()
		p := op.Join(dir, e.Name)
		children[i] = child{path: p, attr: e.Attr, target: e.Target, hasTarget: e.HasTarget, attrSize: metadataBytes(p)}
		if e.HasTarget {
			children[i].linkSize = linkBytes(p, e.Target)
		}
		if e.HasData {
			children[i].hasData, children[i].data = true, e.Data[:len(e.Data):len(e.Data)]
			children[i].dataSize = dataBytes(p, e.Data)
		}
	}
	return sortedEntries(entries), children
}

// sortedEntries returns entries sorted by name, sorting a copy when they
// are not: listed binary-searches them, and the caller's slice may be
// shared.
func sortedEntries(entries []op.DirEntry) []op.DirEntry {
	cmp := func(a, b op.DirEntry) int { return strings.Compare(a.Name, b.Name) }
	if slices.IsSortedFunc(entries, cmp) {
		return entries
	}
	entries = slices.Clone(entries)
	slices.SortFunc(entries, cmp)
	return entries
}

func (c *Cache) storeNegative(path string) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// The path is gone: whatever the positive tables hold for it is stale.
	for _, t := range c.positive {
		t.remove(path)
	}
	if c.ttl <= 0 {
		return
	}
	if put(c, c.negative, path, now.Add(c.ttl), negativeBytes(path)) {
		c.count.negStores++
	}
	c.evict(now)
}

// clearNegative drops path's ENOENT entry, if any. c.mu is held.
func (c *Cache) clearNegative(path string) {
	if c.negative.remove(path) {
		c.count.negClear++
	}
}

// put stores val in t unless it alone exceeds the budget; either way the
// previous entry for path leaves. c.mu is held.
func put[V any](c *Cache, t *table[V], path string, val V, size int64) bool {
	if size > c.budget {
		t.remove(path)
		c.count.rejected++
		return false
	}
	c.tick++
	t.put(path, val, size, c.tick)
	return true
}

// evict brings the total within budget: expired ENOENT entries go first
// (they are worth nothing), then least recently used file data, and only
// when no data is left the least recently used entry of any other table.
// c.mu is held.
func (c *Cache) evict(now time.Time) {
	for c.total > c.budget {
		if expiry, ok := c.negative.oldestValue(); ok && !now.Before(expiry) {
			c.negative.lru.RemoveOldest()
			c.count.negExpires++
			continue
		}
		if c.data.lru.Len() > 0 {
			c.data.evictOldest()
			continue
		}
		var victim anyTable
		var oldest uint64
		for _, t := range c.others {
			if used, ok := t.oldestUse(); ok && (victim == nil || used < oldest) {
				victim, oldest = t, used
			}
		}
		if victim == nil {
			return // unreachable while the accounting is right: every table is empty
		}
		victim.evictOldest()
	}
}

// Clear drops every entry of every table (Copper 1.0 ioctl 100). Counters
// are kept; dropped entries are not counted as evictions.
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.all {
		t.reset()
	}
	c.total = 0
}

// Drop forgets everything cached for one path, in every table, the
// negative one included, so that the next request for it is fetched
// again. The view calls it when a file's bytes turned out to belong to
// another version than its stat (see package fuse). Counters are kept;
// dropped entries are not counted as evictions. Other paths, a
// directory's children included, are untouched.
func (c *Cache) Drop(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.all {
		t.remove(path)
	}
}

// The tables' names: the rows of the profiler's cache_tables.csv and of
// the report's cache summary (Copper 1.0's reports name data, tree and
// metadata).
const (
	TableData     = "data"
	TableTree     = "tree"
	TableMetadata = "metadata"
	TableNegative = "negative"
	TableLinks    = "links"
)
