package node

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/spill"
)

// Chunks of large files (op.Chunk) take their own path through a node:
// the chunk store (package spill) instead of the cache, one flight per
// (path, version, chunk) whoever asks (a local read, a child, readahead),
// and the version checked on every answer. A chunk of another version
// than the one asked for is never stored nor served: the root answers
// ESTALE when the file is no longer that version, and a node that gets
// bytes of another version or length from its parent answers EIO.

// chunkState is a node's chunk machinery; nil Store: no chunk store
// (chunk requests answer ENOSYS).
type chunkState struct {
	store     *spill.Store
	readahead int
	slots     chan struct{} // bounds readahead flights
	// buffers bounds the chunk bytes a node holds in memory at once
	// (fetches in flight, chunks loaded to answer children), so that its
	// memory beyond the cache budget does not grow with the number of
	// readers or children.
	buffers    *semaphore.Weighted
	chunkBytes int64 // the only chunk size answered; 0 = any

	fetched, fetchedBytes, served, localBytes, prefetched, stale, bad atomic.Int64
	lastStaleLog                                                      atomic.Int64 // unix ns
}

// ChunkStats counts a node's chunk traffic.
type ChunkStats struct {
	Fetched    int64       `json:"fetched"`       // chunks fetched from the parent or the backend
	FetchedB   int64       `json:"fetched_bytes"` // their bytes (at a root: bytes read from the backend)
	Served     int64       `json:"served"`        // chunks answered to children
	LocalBytes int64       `json:"local_bytes"`   // large-file bytes read through this node's mount
	Readahead  int64       `json:"readahead"`     // chunks fetched ahead of a sequential reader
	Stale      int64       `json:"stale"`         // chunk requests for a version the file no longer is
	Rejected   int64       `json:"rejected"`      // parent answers of the wrong version or length (EIO)
	Store      spill.Stats `json:"store"`
}

func newChunkState(store *spill.Store, readahead int, chunkBytes int64) *chunkState {
	if store == nil {
		return nil
	}
	return &chunkState{store: store, readahead: max(readahead, 0), slots: make(chan struct{}, max(2*readahead, 2)),
		buffers: semaphore.NewWeighted(MaxChunkBuffers), chunkBytes: chunkBytes}
}

// valid reports whether req has this node's chunk size.
func (c *chunkState) valid(req op.ChunkReq) bool {
	return c.chunkBytes == 0 || req.Bytes == c.chunkBytes
}

// MaxChunkBuffers is the chunk bytes a node holds in memory at once (a
// larger chunk takes the whole allowance): within the 64 MiB a node may
// use beyond its cache budget, with room for the runtime and buffers.
const MaxChunkBuffers = 40 << 20

// hold waits for room for one chunk of req's size in memory; release
// gives it back.
func (c *chunkState) hold(ctx context.Context, req op.ChunkReq) (release func(), err error) {
	n := min(req.Len(), MaxChunkBuffers)
	if err := c.buffers.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { c.buffers.Release(n) }, nil
}

func (n *Node) chunkStats() *ChunkStats {
	c := n.chunks
	if c == nil {
		return nil
	}
	return &ChunkStats{
		Fetched: c.fetched.Load(), FetchedB: c.fetchedBytes.Load(), Served: c.served.Load(), LocalBytes: c.localBytes.Load(),
		Readahead: c.prefetched.Load(), Stale: c.stale.Load(), Rejected: c.bad.Load(),
		Store: c.store.Stats(),
	}
}

// getChunk answers a child's Chunk request: the whole chunk.
func (n *Node) getChunk(ctx context.Context, encoded string) op.Result {
	req, errno := op.DecodeChunkReq(encoded)
	if errno != 0 {
		return op.Fail(errno)
	}
	c := n.chunks
	if c == nil {
		return op.Fail(syscall.ENOSYS)
	}
	if !c.valid(req) {
		return op.Fail(syscall.EINVAL) // another chunk size: a misconfigured or hostile peer
	}
	n.readahead(ctx, req)
	if c.store.Has(req.Key()) {
		release, err := c.hold(ctx, req)
		if err != nil {
			return op.Fail(syscall.EINTR)
		}
		// The answer's bytes are written after this returns; the
		// allowance covers the load, not the send.
		data, ok := c.store.Load(req.Key())
		release() // before any flight: an allowance is never held while waiting for another
		if ok {
			n.hits[op.Chunk].Add(1)
			c.served.Add(1)
			return op.Result{Attr: attrOfVersion(req.Version), Data: data}
		}
	}
	n.misses[op.Chunk].Add(1)
	r := n.chunkFlight(ctx, req)
	if r.OK() {
		c.served.Add(1)
	}
	return r
}

// ReadChunk copies bytes of chunk req from off (within the chunk) into
// dest, for a read through this node's mount. ESTALE: the file is no
// longer req's version.
func (n *Node) ReadChunk(ctx context.Context, req op.ChunkReq, dest []byte, off int64) (int, syscall.Errno) {
	c, errno := n.chunkRead(ctx, req, off, len(dest))
	if errno != 0 {
		return 0, errno
	}
	if m, ok := c.store.ReadAt(req.Key(), dest, off); ok {
		n.hits[op.Chunk].Add(1)
		c.localBytes.Add(int64(m))
		return m, 0
	}
	n.misses[op.Chunk].Add(1)
	r := n.chunkFlight(ctx, req)
	if !r.OK() {
		return 0, r.Errno
	}
	m := copy(dest, r.Data[min(off, int64(len(r.Data))):])
	c.localBytes.Add(int64(m))
	return m, 0
}

// ChunkFile returns the chunk store's open file of chunk req, fetching
// the chunk first if it is not held, for a read through this node's
// mount that hands the kernel the file (a splice) instead of copying
// its bytes; n is the bytes the read takes from it. A nil file with no
// errno means the store keeps chunks (or this one, hot) in memory, holds
// this one in a file shared with other chunks, or just evicted it: read
// it with ReadChunk. The caller closes the file.
func (n *Node) ChunkFile(ctx context.Context, req op.ChunkReq, off int64, size int) (*os.File, syscall.Errno) {
	if c := n.chunks; c != nil && c.valid(req) && (c.store.Dir() == "" || c.store.Hot(req.Key())) {
		return nil, 0 // chunks (or this one) in memory: copying is cheaper than its file
	}
	c, errno := n.chunkRead(ctx, req, off, size)
	if errno != 0 {
		return nil, errno
	}
	f, _, ok := c.store.Open(req.Key())
	switch {
	case ok:
		n.hits[op.Chunk].Add(1)
	case c.store.Has(req.Key()):
		// Held in its version's shared file, which is never handed
		// over (an eviction punches it): the caller copies the range.
		// A flight here would load the whole chunk from disk for
		// nothing, once per read.
		return nil, 0
	default:
		n.misses[op.Chunk].Add(1)
		if r := n.chunkFlight(ctx, req); !r.OK() {
			return nil, r.Errno
		}
		if c.store.Hot(req.Key()) {
			return nil, 0 // just fetched: still in memory
		}
		if f, _, ok = c.store.Open(req.Key()); !ok {
			return nil, 0
		}
	}
	c.localBytes.Add(int64(size))
	return f, 0
}

// chunkRead checks that this node serves chunks and that req is one of
// its large files' (ENOSYS, EINVAL), and starts the readahead when a
// read of size bytes at off is a chunk's first: the part every read of a
// chunk through the mount shares (ReadChunk, ChunkFile, ChunkData).
func (n *Node) chunkRead(ctx context.Context, req op.ChunkReq, off int64, size int) (*chunkState, syscall.Errno) {
	c := n.chunks
	if c == nil {
		return nil, syscall.ENOSYS
	}
	if !c.valid(req) || off < 0 || size < 0 {
		return nil, syscall.EINVAL
	}
	if off == 0 || off < int64(size) {
		n.readahead(ctx, req) // the first read of a chunk
	}
	return c, 0
}

// chunkFlight fetches req once per node whoever asks, stores it and
// answers it; askers that wait get the leader's bytes.
func (n *Node) chunkFlight(ctx context.Context, req op.ChunkReq) op.Result {
	c := n.chunks
	key := req.Key()
	readyBy := deadlineOf(ctx)
	f, led := n.flight.do(flightKey(op.Chunk, key), func() op.Result {
		fctx := context.WithoutCancel(ctx) // others may be waiting on this fetch
		release, err := c.hold(fctx, req)
		if err != nil {
			return op.Fail(syscall.EINTR)
		}
		defer release()
		if data, ok := c.store.Load(key); ok { // a flight that just finished
			return op.Result{Attr: attrOfVersion(req.Version), Data: data}
		}
		r := n.fetchChunk(fctx, readyBy, req)
		if r.OK() {
			c.fetched.Add(1)
			c.fetchedBytes.Add(int64(len(r.Data)))
			c.store.PutAt(key, chunkGroup(req), req.Off(), r.Data)
		}
		return r
	})
	select {
	case <-f.done:
		if !led {
			n.coalesced[op.Chunk].Add(1)
		}
		return f.res
	case <-ctx.Done():
		return op.Fail(syscall.EINTR)
	}
}

// fetchChunk asks the backend (root) or the parent for req and checks
// the answer is req's version and length.
func (n *Node) fetchChunk(ctx context.Context, readyBy time.Time, req op.ChunkReq) op.Result {
	var r op.Result
	if n.IsRoot() {
		n.inFlight.Add(1)
		r = n.cfg.Backend.Chunk(ctx, req)
		n.inFlight.Add(-1)
	} else {
		r = n.fetch(ctx, readyBy, op.Chunk, req.Encode())
	}
	switch {
	case r.Errno == syscall.ESTALE:
		// The file is another version now: what this node holds of the
		// path (its stat, above all) is of the old one. Every hop the
		// answer passes drops it, so the next lookup through this node
		// reaches the root and shows the new version.
		n.cfg.Cache.Drop(req.Path)
		n.chunks.stale.Add(1)
		n.logStaleChunk(req)
		return r
	case !r.OK():
		return r
	case int64(len(r.Data)) != req.Len() || !op.VersionOf(r.Attr).SameBytes(req.Version):
		n.chunks.bad.Add(1)
		n.log.Error("chunk answer of another version or length: not served",
			"path", req.Path, "chunk", req.Index, "bytes", len(r.Data), "want_bytes", req.Len(),
			"got_version", fmt.Sprintf("%+v", op.VersionOf(r.Attr)), "want_version", fmt.Sprintf("%+v", req.Version))
		return op.Fail(syscall.EIO)
	}
	return r
}

// logStaleChunk logs, at most once a second per node, that a large file
// changed under a reader: its chunks of the old version are gone.
func (n *Node) logStaleChunk(req op.ChunkReq) {
	now := time.Now().UnixNano()
	last := n.chunks.lastStaleLog.Load()
	if now-last < int64(time.Second) || !n.chunks.lastStaleLog.CompareAndSwap(last, now) {
		return
	}
	n.log.Warn("large file changed on the backing file system: chunks of the version being read are gone, reads of it fail",
		"path", req.Path, "chunk", req.Index, "size", req.Version.Size, "ino", req.Version.Ino,
		"mtime_ns", req.Version.MtimeNs, "ctime_ns", req.Version.CtimeNs)
}

// readahead fetches, in the background, the readahead chunks after req
// that are not held, when req looks like part of a sequential read (the
// first chunk, or the one before it is held): a node then fetches chunk
// k+1 from its parent while it answers chunk k, and the parent, asked
// for k+1, does the same, so a chain of nodes streams a file rather
// than moving it hop by hop. A full set of readahead slots skips it.
func (n *Node) readahead(ctx context.Context, req op.ChunkReq) {
	c := n.chunks
	if c.readahead == 0 {
		return
	}
	if req.Index > 0 {
		prev := req
		prev.Index--
		if !c.store.Has(prev.Key()) {
			return
		}
	}
	last := op.Chunks(req.Version.Size, req.Bytes) - 1
	for i := req.Index + 1; i <= min(req.Index+int64(c.readahead), last); i++ {
		next := req
		next.Index = i
		if c.store.Has(next.Key()) {
			continue
		}
		select {
		case c.slots <- struct{}{}:
		default:
			return
		}
		c.prefetched.Add(1)
		go func() {
			defer func() { <-c.slots }()
			n.chunkFlight(context.WithoutCancel(ctx), next)
		}()
	}
}

// attrOfVersion is the attribute part a stored chunk's answer carries:
// the version it is of.
func attrOfVersion(v op.Version) op.Attr {
	return op.Attr{Dev: v.Dev, Ino: v.Ino, Size: v.Size, MtimeNs: v.MtimeNs, CtimeNs: v.CtimeNs, Mode: syscall.S_IFREG}
}
