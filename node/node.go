// Package node is the one place that decides, for every operation, whether
// an answer comes from the cache, from another asker's request already in
// flight, from the parent node, or (at a tree's root) from the backing
// filesystem. The FUSE side and the server side both call Get.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/spill"
)

// Parent is the next node up the tree (a net.Client, or a failover set of
// them). An error is a transport failure; an errno travels in the Result.
type Parent interface {
	Call(ctx context.Context, o op.Op, path string) (op.Result, error)
}

// Config wires a node.
type Config struct {
	Rank    int
	Cache   *cache.Cache
	Backend *backend.Backend // set on a tree's root
	Parent  Parent           // set on every other node
	Logger  *slog.Logger

	// Started is when the provider started: the origin of the two startup
	// timing lines Copper 1.0 users grep for.
	Started time.Time

	RPCTimeout        time.Duration // per forwarded request; 0 = none
	ReadyProbeInitial time.Duration // first readiness probe interval
	ReadyProbeMax     time.Duration // probe interval cap
	ReadyTimeout      time.Duration // give up on the parent after this; 0 = never
	// ReadyHold is the longest this node holds a child's readiness probe
	// while it is not tree-ready; 0: derived (HoldBound).
	ReadyHold time.Duration

	// Observe, when set, sees the outcome of every Get of a valid
	// operation on a valid path, local or from a child, after it is
	// answered. It runs on the request path: keep it cheap and never
	// block. nil costs one comparison per Get.
	Observe func(Observation)

	// Chunks stores the chunks of large files (op.Chunk) this node
	// fetched; nil: the node answers chunk requests ENOSYS.
	Chunks *spill.Store
	// ReadaheadChunks is how many chunks after one a sequential reader
	// asks for are fetched ahead.
	ReadaheadChunks int
	// ChunkBytes is the only chunk size this node answers (chunk_bytes,
	// the same on every node of a job): a peer asking for other bounds
	// gets EINVAL, so no request makes a node allocate more than one
	// chunk. 0: any size up to op.MaxChunkBytes (tests).
	ChunkBytes int64
}

// Outcome says where an answer came from.
type Outcome uint8

const (
	OutcomeHit       Outcome = iota + 1 // positive answer from the cache
	OutcomeNegative                     // ENOENT from the cache's negative (TTL) table
	OutcomeMiss                         // not cached: this asker led the fetch (or gave up waiting)
	OutcomeCoalesced                    // not cached: waited for another asker's fetch
	OutcomeListed                       // ENOENT from the cache: the held listing of the directory lacks the name (no TTL)
)

func (o Outcome) String() string {
	switch o {
	case OutcomeHit:
		return "hit"
	case OutcomeNegative:
		return "negative"
	case OutcomeMiss:
		return "miss"
	case OutcomeCoalesced:
		return "coalesced"
	case OutcomeListed:
		return "listed"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Observation is one answered Get, as Config.Observe sees it.
type Observation struct {
	Op      op.Op
	Path    string
	Outcome Outcome
	Errno   syscall.Errno // of the answer
	Bytes   int           // file content in the answer (Read)
}

// Node is one copper node.
type Node struct {
	cfg    Config
	log    *slog.Logger
	flight *flights

	registered chan struct{}
	treeReady  chan struct{} // closed once, when tree-ready: wakes held probes
	stopping   chan struct{} // closed once, by Stopping: releases held probes
	readyOnce  sync.Once
	regOnce    sync.Once
	stopOnce   sync.Once
	probes     atomic.Int64 // readiness probes this node sent
	held       atomic.Int64 // children's readiness probes held now
	firstRPC   sync.Once

	hits      [len(op.All) + 1]atomic.Int64
	misses    [len(op.All) + 1]atomic.Int64
	coalesced [len(op.All) + 1]atomic.Int64
	forwarded [len(op.All) + 1]atomic.Int64
	fwdErrors atomic.Int64
	inFlight  atomic.Int64

	chunks *chunkState
}

// New checks cfg and returns a node. Exactly one of Backend and Parent is set.
func New(cfg Config) (*Node, error) {
	if cfg.Cache == nil {
		return nil, errors.New("node: no cache")
	}
	if (cfg.Backend == nil) == (cfg.Parent == nil) {
		return nil, fmt.Errorf("node rank %d: need exactly one of backend (root) or parent", cfg.Rank)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	if cfg.ReadyProbeInitial <= 0 {
		cfg.ReadyProbeInitial = 10 * time.Millisecond
	}
	if cfg.ReadyProbeMax < cfg.ReadyProbeInitial {
		cfg.ReadyProbeMax = cfg.ReadyProbeInitial
	}
	if cfg.ReadyHold <= 0 {
		cfg.ReadyHold = HoldBound(cfg.ReadyProbeMax, cfg.RPCTimeout)
	}
	return &Node{
		cfg:        cfg,
		log:        cfg.Logger,
		flight:     newFlights(),
		registered: make(chan struct{}),
		treeReady:  make(chan struct{}),
		stopping:   make(chan struct{}),
		chunks:     newChunkState(cfg.Chunks, cfg.ReadaheadChunks, cfg.ChunkBytes),
	}, nil
}

// IsRoot reports whether this node reads the backing filesystem.
func (n *Node) IsRoot() bool { return n.cfg.Backend != nil }

// MarkRegistered records that this node's server accepts requests. A root
// is then tree-ready.
func (n *Node) MarkRegistered() {
	n.regOnce.Do(func() {
		close(n.registered)
		n.log.Info(fmt.Sprintf("provider registration completed after %d us", time.Since(n.cfg.Started).Microseconds()))
		if n.IsRoot() {
			n.setTreeReady()
		}
	})
}

// Get answers one operation on a view path. It is the handler for both
// local FUSE requests and requests from child nodes.
func (n *Node) Get(ctx context.Context, o op.Op, path string) op.Result {
	if o == op.IsReady {
		return n.answerReady(ctx)
	}
	if !o.Valid() {
		return op.Fail(syscall.ENOSYS)
	}
	if o == op.Chunk {
		// Its own path: the chunk store, not the cache; not observed
		// (the profile counts paths, and this "path" is a request).
		return n.getChunk(ctx, path)
	}
	if errno := op.CheckPath(path); errno != 0 {
		return op.Fail(errno)
	}
	switch o {
	case op.DirPlus:
		return n.getDirPlus(ctx, o, path, "")
	case op.DirPlusNext:
		if path == "/" {
			return op.Fail(syscall.EINVAL) // names no entry to continue after
		}
		dir, name := split(path)
		return n.getDirPlus(ctx, o, dir, name)
	}
	if r, ok := n.cfg.Cache.Lookup(o, path); ok {
		n.hits[o].Add(1)
		if n.cfg.Observe != nil {
			n.observe(o, path, n.hitOutcome(path, r), r)
		}
		return r
	}
	n.misses[o].Add(1)

	if r, outcome, ok := n.viaDirPlus(ctx, o, path); ok {
		if outcome == OutcomeCoalesced {
			n.coalesced[o].Add(1)
		}
		if n.cfg.Observe != nil {
			n.observe(o, path, outcome, r)
		}
		return r
	}

	if o == op.Read {
		n.awaitListing(ctx, path)
	}
	return n.getFlight(ctx, o, path)
}

// awaitListing waits for a dirplus of path's directory in flight: it
// ships the directory's small files, so a read of one that went to the
// parent meanwhile would fetch the same bytes twice (two backend reads
// of one file per tree at the root); after it, getFlight's recheck finds
// them.
func (n *Node) awaitListing(ctx context.Context, path string) {
	if path == "/" {
		return
	}
	dir, _ := split(path)
	if f := n.flight.pending(flightKey(op.DirPlus, dir)); f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
		}
	}
}

// getFlight answers a miss with one request per (op, path) per node:
// every other asker, local or a child, waits for the leader's answer.
func (n *Node) getFlight(ctx context.Context, o op.Op, path string) op.Result {
	deduped := false
	f, led := n.flight.doOn(flightKey(o, path), ctx.Done() == nil, func() op.Result {
		if o == op.Read {
			// A listing that began after Get's awaitListing looked may
			// have read the file before this flight was there to be
			// seen (knownFile): its answer is the read's.
			n.awaitListing(context.WithoutCancel(ctx), path)
		}
		// A flight that finished between our Lookup and do has
		// already stored the answer: do not ask again. That answer is a
		// dedup, like a wait on a flight, not a second miss.
		if r, ok := n.cfg.Cache.Recheck(o, path); ok {
			deduped = true
			return r
		}
		// The fetch outlives any one asker: others may be waiting on it.
		r := n.fetch(context.WithoutCancel(ctx), deadlineOf(ctx), o, path)
		n.cfg.Cache.Store(o, path, r)
		return r
	})
	select {
	case <-f.done:
		outcome := OutcomeMiss
		if !led || deduped {
			n.coalesced[o].Add(1)
			outcome = OutcomeCoalesced
		}
		r := f.res
		if n.cfg.Observe != nil {
			n.observe(o, path, outcome, r)
		}
		return r
	case <-ctx.Done():
		// An asker that gives up reports a miss, whoever started the flight.
		r := op.Fail(syscall.EINTR)
		if n.cfg.Observe != nil {
			n.observe(o, path, OutcomeMiss, r)
		}
		return r
	}
}

// viaDirPlus answers a Getattr or Readdir miss with the whole directory:
// a Getattr of a name whose directory's listing is not held fetches that
// directory's dirplus, a Readdir fetches its own. Every hop on the way
// stores the listing and each name's attributes, so the walk that usually
// follows (Python's imports probe a dozen names per sys.path directory,
// ls -l stats every entry) is answered locally, absent names included.
// ok is false when the caller should ask for the path alone: the
// listing is held but the name's attributes are not (evicted or dropped),
// or the dirplus failed in a way the plain operation may not (EACCES on a
// directory that is searchable but not readable, a stat error, EIO).
func (n *Node) viaDirPlus(ctx context.Context, o op.Op, path string) (op.Result, Outcome, bool) {
	dir, name := path, ""
	switch {
	case o == op.Getattr && path != "/":
		dir, name = split(path)
		if n.cfg.Cache.Listed(dir) {
			return op.Result{}, 0, false
		}
	case o == op.Readdir:
	default:
		return op.Result{}, 0, false
	}
	r, outcome := n.dirPlusFlight(ctx, dir, false)
	switch r.Errno {
	case 0:
	case syscall.EINTR:
		if ctx.Err() == nil {
			return op.Result{}, 0, false
		}
		return r, outcome, true
	case syscall.ENOENT, syscall.ENOTDIR, syscall.ELOOP:
		// The directory is missing, not one, or a link: a name in it
		// answers the same, and so does its own listing.
		return op.Fail(r.Errno), outcome, true
	default:
		return op.Result{}, 0, false
	}
	if o == op.Readdir {
		entries := make([]op.DirEntry, len(r.Plus))
		for i, e := range r.Plus {
			entries[i] = e.Entry()
		}
		return op.Result{Entries: entries}, outcome, true
	}
	if i, found := searchPlus(r.Plus, name); found {
		return op.Result{Attr: r.Plus[i].Attr}, outcome, true
	}
	return op.Fail(syscall.ENOENT), outcome, true
}

// getDirPlus answers a DirPlus of dir (after == "") or a DirPlusNext of
// dir after name: the whole listing after that name. Cutting it into
// pages that fit a frame is the wire's business (package net).
func (n *Node) getDirPlus(ctx context.Context, o op.Op, dir, after string) op.Result {
	r, ok := n.cfg.Cache.Lookup(op.DirPlus, dir)
	outcome := OutcomeHit
	switch {
	case ok:
		n.hits[o].Add(1)
		if n.cfg.Observe != nil {
			outcome = n.hitOutcome(dir, r)
		}
	default:
		n.misses[o].Add(1)
		r, outcome = n.dirPlusFlight(ctx, dir, true)
		if outcome == OutcomeCoalesced {
			n.coalesced[o].Add(1)
		}
	}
	return n.dirPlusAnswer(o, dir, after, outcome, r)
}

// dirPlusAnswer is the answer to a DirPlus (after = "") or DirPlusNext of
// dir from its listing r: the entries after after, observed.
func (n *Node) dirPlusAnswer(o op.Op, dir, after string, outcome Outcome, r op.Result) op.Result {
	if r.OK() && after != "" {
		i, found := searchPlus(r.Plus, after)
		if found {
			i++
		}
		r.Plus = r.Plus[i:]
	}
	if n.cfg.Observe != nil {
		n.observe(o, dir, outcome, r) // the directory, not a page's cursor
	}
	return r
}

// dirPlusFlight fetches dir's dirplus, one request per directory per node
// whatever asked for it (a Getattr in it, its Readdir, a child's DirPlus),
// and stores it. looked says the asker has looked dir's dirplus up
// already: a listing found now was stored by a flight in between, a dedup.
// Otherwise (a Getattr or Readdir missed) it is that request's answer.
func (n *Node) dirPlusFlight(ctx context.Context, dir string, looked bool) (op.Result, Outcome) {
	deduped := false
	f, led := n.flight.doOn(flightKey(op.DirPlus, dir), ctx.Done() == nil, func() op.Result {
		// The request's miss is counted: this look counts no other.
		if r, ok := n.cfg.Cache.Recheck(op.DirPlus, dir); ok {
			deduped = looked
			return r
		}
		r := n.fetch(context.WithoutCancel(ctx), deadlineOf(ctx), op.DirPlus, dir)
		n.cfg.Cache.Store(op.DirPlus, dir, r)
		return r
	})
	select {
	case <-f.done:
		if !led || deduped {
			return f.res, OutcomeCoalesced
		}
		return f.res, OutcomeMiss
	case <-ctx.Done():
		return op.Fail(syscall.EINTR), OutcomeMiss
	}
}

// hitOutcome tells a cached ENOENT from a held listing (which the cache
// consults after its negative table) from one of the negative table.
func (n *Node) hitOutcome(path string, r op.Result) Outcome {
	switch {
	case r.Errno != syscall.ENOENT:
		return OutcomeHit
	case path != "/":
		if dir, _ := split(path); n.cfg.Cache.Listed(dir) {
			return OutcomeListed
		}
	}
	return OutcomeNegative
}

// split returns the directory and last name of a checked path other
// than "/".
func split(path string) (dir, name string) {
	i := strings.LastIndexByte(path, '/')
	return path[:max(i, 1)], path[i+1:]
}

// searchPlus finds name in a listing sorted by name.
func searchPlus(entries []op.PlusEntry, name string) (int, bool) {
	return slices.BinarySearchFunc(entries, name, func(e op.PlusEntry, n string) int {
		return strings.Compare(e.Name, n)
	})
}

func (n *Node) observe(o op.Op, path string, outcome Outcome, r op.Result) {
	n.cfg.Observe(Observation{Op: o, Path: path, Outcome: outcome, Errno: r.Errno, Bytes: len(r.Data)})
}

func flightKey(o op.Op, path string) string {
	return string(rune('0'+o)) + path
}

// deadlineOf is ctx's deadline, zero when it has none.
func deadlineOf(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline()
	return dl
}

// fetch asks the backend or the parent. ctx carries no cancellation (the
// fetch serves every asker of its flight); readyBy is the leading asker's
// deadline (zero: none), which with ReadyTimeout bounds the wait for the
// tree to become ready, so a node whose parent never does fails its
// requests instead of keeping their goroutines forever.
func (n *Node) fetch(ctx context.Context, readyBy time.Time, o op.Op, path string) op.Result {
	n.inFlight.Add(1)
	defer n.inFlight.Add(-1)
	if n.IsRoot() {
		if o == op.DirPlus {
			return n.cfg.Backend.DirPlus(ctx, path, n.knownFile)
		}
		return n.cfg.Backend.Do(ctx, o, path)
	}
	// Forwarding before the parent is ready would race its startup.
	if err := n.waitReadyBy(ctx, readyBy); err != nil {
		n.log.Error("request fails with EIO: the tree is not ready", "op", o.String(), "path", path, "err", err)
		return op.Fail(syscall.EIO)
	}
	cctx, cancel := withTimeout(ctx, n.cfg.RPCTimeout)
	defer cancel()
	n.forwarded[o].Add(1)
	r, err := n.cfg.Parent.Call(cctx, o, path)
	if err != nil {
		n.fwdErrors.Add(1)
		n.log.Error("parent request failed", "op", o.String(), "path", path, "err", err)
		return op.Fail(syscall.EIO)
	}
	n.firstRPC.Do(func() {
		n.log.Info(fmt.Sprintf("first successful parent rpc_%s completed after %d us since provider startup; path=%s",
			o, time.Since(n.cfg.Started).Microseconds(), path))
	})
	return r
}

// withTimeout is context.WithTimeout where 0 means no deadline.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, os.ErrDeadlineExceeded)
}

// Drop forgets what this node's cache holds for path, so the next request
// for it is fetched from the parent or the backend again. The view calls
// it when the bytes it fetched for a file belong to another version than
// the file's stat; a parent's copy is not touched.
func (n *Node) Drop(path string) { n.cfg.Cache.Drop(path) }

// Held returns the whole small file at path if the node's cache holds
// it, asking no one (fuse.HeldReader).
func (n *Node) Held(path string) (op.Result, bool) { return n.cfg.Cache.Held(path) }

// Pushed records that the view stored path's held bytes (size of them) in
// the kernel's page cache: the reads the kernel then serves never reach
// this node, so the push is observed as the path's read, from the cache.
func (n *Node) Pushed(path string, size int) {
	if n.cfg.Observe != nil {
		n.cfg.Observe(Observation{Op: op.Read, Path: path, Outcome: OutcomeHit, Bytes: size})
	}
}
