package fuse

import (
	"container/list"
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/op"
)

// Reads of a no-open mount (Options.HandleOpens off) come with no handle:
// what a handle did at open and kept between reads, the node does.

// Read serves a READ. A handled open reads through its handle; a no-open
// read reads the node's version.
func (n *node) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if h, ok := fh.(*openFile); ok {
		return h.Read(ctx, dest, off)
	}
	start := time.Now()
	rr, errno := n.readNoOpen(ctx, dest, off)
	return rr, n.fs.observe(ctx, opRead, n.path, start, errno)
}

// readNoOpen reads n's version with no handle. A small file is fetched
// whole through the Source for each request (its cache makes that a
// lookup in memory) and checked against n's version every time: no copy
// outlives the request, so the first read that misses the kernel's pages
// after a change fetches the new bytes, fails with EIO and has the
// kernel forget the name, and the next open sees the new version. A
// large file reads through the content pinned at lookup.
func (n *node) readNoOpen(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if n.readStale.Load() {
		// Found gone before: the kernel sends several READs per open
		// (readahead), and none needs to fetch again to learn that.
		return nil, syscall.EIO
	}
	f := n.fs
	if n.attr.Size > f.maxCacheable {
		return n.readPinned(ctx, dest, off)
	}
	// One fetch at a time per node, so that concurrent readahead
	// requests after a change do not all fetch the new version.
	n.fetchMu.Lock()
	if n.readStale.Load() {
		n.fetchMu.Unlock()
		return nil, syscall.EIO
	}
	data, content, errno, stale := f.fetchContent(ctx, n)
	if stale {
		n.readStale.Store(true)
	}
	n.fetchMu.Unlock()
	if errno != 0 {
		return nil, errno
	}
	if content == nil {
		return memoryContent{data: data}.Read(ctx, dest, off)
	}
	// A file the Source refused whole (EFBIG) came from the large-file
	// provider and is closed again.
	defer func() { _ = content.Release() }()
	rr, errno := content.Read(ctx, dest, off)
	if errno == syscall.ESTALE {
		f.stale(ctx, n, atReadDirect, nil, errno)
		n.readStale.Store(true)
		return nil, syscall.EIO
	}
	return rr, errno
}

// readPinned reads a large file through the node's pinned content.
func (n *node) readPinned(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	h, errno := n.acquirePinned(ctx)
	if errno != 0 {
		return nil, errno
	}
	rr, errno := h.content.Read(ctx, dest, off)
	n.unpin(h)
	if errno == syscall.ESTALE {
		// The host file changed in place under the pinned descriptor.
		n.fs.stale(ctx, n, atReadDirect, nil, errno)
		n.readStale.Store(true)
		return nil, syscall.EIO
	}
	return rr, errno
}

// pinnedContent is a no-open node's large-file content: opened at the
// lookup that made or named the node, released when the kernel forgets
// the node or when maxPinned others were used since, and never while a
// read uses it.
type pinnedContent struct {
	mu   sync.Mutex
	held *heldContent

	elem *list.Element // in filesystem.pins, under its lock
}

// maxPinned bounds the host descriptors a mount keeps pinned: the kernel
// can keep a view inode for the whole job, and a node should not hold a
// descriptor of every large file a job ever looked up. Beyond it, the
// least recently used one is closed; its inode's next read opens the
// file again (and fails with EIO if the file changed meanwhile).
const maxPinned = 1024

// pinList orders a mount's pinned nodes by use, most recent first.
type pinList struct {
	mu   sync.Mutex
	list list.List
	max  int // maxPinned; tests lower it
}

// used notes that n's pinned content was just used or installed, and
// releases the least recently used ones over the bound. Never called
// under a node's pinnedContent.mu: the victims' are taken here.
func (f *filesystem) used(n *node) {
	l := &f.pins
	l.mu.Lock()
	if n.pinned.elem != nil {
		l.list.MoveToFront(n.pinned.elem)
	} else {
		n.pinned.elem = l.list.PushFront(n)
	}
	var victims []*node
	for l.list.Len() > max(l.max, 1) {
		e := l.list.Back()
		v := e.Value.(*node)
		l.list.Remove(e)
		v.pinned.elem = nil
		victims = append(victims, v)
	}
	l.mu.Unlock()
	for _, v := range victims {
		v.dropPinned()
	}
}

// unlisted takes n off the mount's pinned list.
func (f *filesystem) unlisted(n *node) {
	l := &f.pins
	l.mu.Lock()
	if n.pinned.elem != nil {
		l.list.Remove(n.pinned.elem)
		n.pinned.elem = nil
	}
	l.mu.Unlock()
}

type heldContent struct {
	content Content
	refs    int // the node's hold and the reads in flight, under pinnedContent.mu
}

// pin makes c the node's content, unless it has one: that one is of the
// same version (the node's), and reads already use it.
func (n *node) pin(c Content) {
	p := &n.pinned
	p.mu.Lock()
	if p.held == nil {
		p.held = &heldContent{content: c, refs: 1}
		p.mu.Unlock()
		n.fs.used(n)
		return
	}
	p.mu.Unlock()
	_ = c.Release()
}

// acquirePinned returns the node's content for one read, opening it if
// the lookup could not (an error it then had is reported now).
func (n *node) acquirePinned(ctx context.Context) (*heldContent, syscall.Errno) {
	p := &n.pinned
	p.mu.Lock()
	if p.held == nil {
		c, errno := n.fs.large.Open(ctx, n.path, n.attr)
		if errno != 0 {
			p.mu.Unlock()
			if errno == syscall.ESTALE {
				// Unlocked: a lookup of the name pins under p.mu, and
				// stale waits for the kernel's directory lock.
				n.fs.stale(ctx, n, atReadDirect, nil, errno)
				n.readStale.Store(true)
				return nil, syscall.EIO
			}
			return nil, errno
		}
		p.held = &heldContent{content: c, refs: 1}
	}
	p.held.refs++
	h := p.held
	p.mu.Unlock()
	n.fs.used(n)
	return h, 0
}

func (n *node) unpin(h *heldContent) {
	p := &n.pinned
	p.mu.Lock()
	h.refs--
	last := h.refs == 0
	p.mu.Unlock()
	if last {
		_ = h.content.Release()
	}
}

// holdsPinned reports whether a lookup of n's version would find content
// pinned already.
func (n *node) holdsPinned() bool {
	p := &n.pinned
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held != nil
}

// OnForget releases the pinned content: the kernel has forgotten the
// node, so no descriptor of the view can read it anymore.
func (n *node) OnForget() {
	n.fs.unlisted(n)
	n.dropPinned()
}

// dropPinned releases the node's hold on its pinned content; reads in
// flight keep it until they return.
func (n *node) dropPinned() {
	p := &n.pinned
	p.mu.Lock()
	h := p.held
	p.held = nil
	p.mu.Unlock()
	if h != nil {
		n.unpin(h)
	}
}

// pinsAtLookup reports whether a lookup that finds a pins its content:
// a large regular file on a no-open mount.
func (f *filesystem) pinsAtLookup(a op.Attr) bool {
	return !f.handleOpens && a.IsRegular() && a.Size > f.maxCacheable
}

// pinLarge opens the large file at child for a no-open lookup, which is
// the last request a no-open open sends: the descriptor pins the version
// the lookup shows, as a handled open's does (a later rename over the
// name cannot reach it). A host file newer than the Source's stat is the
// handled open's ESTALE: the lookup answers with this host's stat
// instead (noteHostNewer), so the kernel gets the new version's inode.
// Other errors leave the node unpinned; its first read opens the file
// and reports them. When the inode the lookup leads to already holds
// content (held), a VersionChecker provider is asked instead of opening.
func (f *filesystem) pinLarge(ctx context.Context, child string, r op.Result, held bool) (op.Result, Content) {
	var content Content
	var errno syscall.Errno
	if checker, ok := f.large.(VersionChecker); ok && held {
		errno = checker.Check(ctx, child, r.Attr)
	} else {
		content, errno = f.large.Open(ctx, child, r.Attr)
	}
	if errno != syscall.ESTALE {
		if errno != 0 {
			return r, nil
		}
		return r, content
	}
	old := &node{fs: f, path: child, attr: r.Attr}
	f.logStale(ctx, old, atOpenDirect, nil, errno)
	if f.drop != nil {
		f.drop.Drop(child)
	}
	f.noteHostNewer(old)
	r = f.hostAdjusted(child, f.src.Get(ctx, op.Getattr, child))
	if r.Errno != 0 || !f.pinsAtLookup(r.Attr) {
		return r, nil
	}
	if content, errno = f.large.Open(ctx, child, r.Attr); errno != 0 {
		return r, nil
	}
	return r, content
}
