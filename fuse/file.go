package fuse

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/op"
)

// Open refuses every write intent and opens regular files. The kernel
// keeps their pages across opens (FOPEN_KEEP_CACHE): every byte a node
// serves is of its one version. FOPEN_NOFLUSH spares every close() a
// round trip.
//
// On a no-open mount (Options.HandleOpens off) the first read-only open
// is checked as any open is, then answered ENOSYS: the kernel takes that
// as success and from then on opens every file of the mount itself,
// keeping pages across opens, with no OPEN or RELEASE reaching us.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	start := time.Now()
	if !n.fs.handleOpens && flags&writeFlags == 0 {
		// ENOSYS here is the no-open handshake, which the kernel takes
		// as success: profiled as one, not as an error.
		if errno := n.fs.observe(ctx, opOpen, n.path, start, n.checkOpen(ctx)); errno != 0 {
			return nil, 0, errno
		}
		return nil, 0, syscall.ENOSYS
	}
	fh, errno := n.open(ctx, flags)
	if errno = n.fs.observe(ctx, opOpen, n.path, start, errno); errno != 0 {
		return nil, 0, errno
	}
	return fh, gofuse.FOPEN_KEEP_CACHE | gofuse.FOPEN_NOFLUSH, 0
}

// Flush answers ENOSYS, which makes kernels too old for FOPEN_NOFLUSH
// stop sending FLUSH on close: a read-only file has nothing to flush.
func (n *node) Flush(ctx context.Context, _ fs.FileHandle) syscall.Errno {
	n.fs.observe(ctx, opFlush, n.path, time.Now(), 0)
	return syscall.ENOSYS
}

func (n *node) open(ctx context.Context, flags uint32) (*openFile, syscall.Errno) {
	if flags&writeFlags != 0 {
		return nil, syscall.EROFS
	}
	if errno := n.checkOpen(ctx); errno != 0 {
		return nil, errno
	}
	h := &openFile{n: n}
	if n.attr.Size > n.fs.maxCacheable {
		// Opened now rather than at the first read: the descriptor pins
		// the version this open saw, whatever later happens to the name.
		content, errno := n.openDirect(ctx)
		if errno == syscall.ESTALE {
			// The node's stat (the Source's cache) is older than the
			// file: drop it, so the kernel's retry finds the new one.
			n.fs.stale(ctx, n, atOpenDirect, nil, errno)
			return nil, syscall.ESTALE
		}
		if errno != 0 {
			return nil, errno
		}
		h.content, h.shared = content, true
	}
	return h, 0
}

// checkOpen answers whether n can be opened: 0 for a regular file whose
// path still shows n's version.
func (n *node) checkOpen(ctx context.Context) syscall.Errno {
	// A path that no longer shows n's version answers ESTALE: the kernel
	// then looks the whole path up again (LOOKUP_REVAL) and retries the
	// open once, on the node of the version the path shows now.
	r := n.fs.hostAdjusted(n.path, n.fs.src.Get(ctx, op.Getattr, n.path))
	switch {
	case r.Errno != 0 && n.versioned() && goneErrno(r.Errno):
		n.fs.stale(ctx, n, atOpen, nil, r.Errno)
		return syscall.ESTALE
	case r.Errno != 0:
		return r.Errno
	case n.versioned() && !versionOf(r.Attr).sameBytes(versionOf(n.attr)):
		n.fs.stale(ctx, n, atOpen, foundVersion(r), 0)
		return syscall.ESTALE
	case r.Attr.IsDir():
		return syscall.EISDIR
	case !r.Attr.IsRegular():
		return syscall.EINVAL // devices and fifos are opened by the kernel, never by us
	}
	return 0
}

// directShare is one node's large-file content and how many handles use
// it.
type directShare struct {
	mu      sync.Mutex
	content Content
	refs    int
}

// openDirect returns the node's large-file content, opening it for the
// first handle. Every handle of a node reads the same version, so one
// descriptor serves them all: the processes of a node that map one large
// library cost the backing file system one open while any of them holds
// it, not one each. Concurrent first opens wait for one another.
func (n *node) openDirect(ctx context.Context) (Content, syscall.Errno) {
	d := &n.direct
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs == 0 {
		content, errno := n.fs.large.Open(ctx, n.path, n.attr)
		if errno != 0 {
			return nil, errno
		}
		d.content = content
	} else if checker, ok := n.fs.large.(VersionChecker); ok {
		// The shared descriptor keeps the version an earlier open saw;
		// this open must see the file the path shows now. (An earlier
		// handle can outlive its close() a while: RELEASE is sent
		// asynchronously.)
		if errno := checker.Check(ctx, n.path, n.attr); errno != 0 {
			return nil, errno
		}
	}
	d.refs++
	return d.content, 0
}

// releaseDirect drops one handle's use of the large-file content and
// releases it with the last.
func (n *node) releaseDirect() syscall.Errno {
	d := &n.direct
	d.mu.Lock()
	d.refs--
	if d.refs > 0 {
		d.mu.Unlock()
		return 0
	}
	content := d.content
	d.content = nil
	d.mu.Unlock()
	return content.Release()
}

// openContent fetches a small file whole through the Source and hands a
// large one to the large-file provider, both only if they are n's
// version. Otherwise it reports stale, after filesystem.stale: the read
// fails with EIO, and so does every later read of the handle.
func (f *filesystem) openContent(ctx context.Context, n *node) (_ Content, _ syscall.Errno, stale bool) {
	data, large, errno, stale := f.fetchContent(ctx, n)
	if errno != 0 || large != nil {
		return large, errno, stale
	}
	return memoryContent{data: data}, 0, false
}

// fetchContent is openContent with a small file's bytes returned as they
// are (data, large nil): a no-open read serves them at once and would
// only box them into a Content to drop it.
func (f *filesystem) fetchContent(ctx context.Context, n *node) (data []byte, large Content, _ syscall.Errno, stale bool) {
	want := versionOf(n.attr)
	if n.attr.Size <= f.maxCacheable {
		r := f.src.Get(ctx, op.Read, n.path)
		switch {
		case r.Errno == 0:
			if got := versionOf(r.Attr); !got.sameBytes(want) || int64(len(r.Data)) != want.size {
				f.stale(ctx, n, atRead, &got, 0)
				return nil, nil, syscall.EIO, true
			}
			return r.Data, nil, 0, false
		case r.Errno == syscall.EFBIG:
			// The Source will not carry it whole: it grew past the limit
			// (the provider finds the new version and refuses), or the
			// Source's limit is below ours (the provider serves it).
		case goneErrno(r.Errno):
			f.stale(ctx, n, atRead, nil, r.Errno)
			return nil, nil, syscall.EIO, true
		default:
			return nil, nil, r.Errno, false
		}
	}
	content, errno := f.large.Open(ctx, n.path, n.attr)
	if errno == syscall.ESTALE {
		f.stale(ctx, n, atReadDirect, nil, errno)
		return nil, nil, syscall.EIO, true
	}
	if errno != 0 {
		return nil, nil, errno, false
	}
	return nil, content, 0, false
}

// openFile is the handle of one open regular file. A small file's
// content is fetched on the first READ: a warm open is served from the
// page cache and never needs it. A large file's is opened at open, or
// shared with the node's other open handles.
type openFile struct {
	n *node

	mu      sync.Mutex
	content Content
	shared  bool // content is the node's large-file content (openDirect)
	// stale is set once the file turned out to be another version: the
	// kernel sends several READs per open (readahead), and none of them
	// needs to fetch the file again to learn that.
	stale bool
}

func (h *openFile) Read(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	start := time.Now()
	f := h.n.fs
	content, errno := h.ensureContent(ctx)
	if errno != 0 {
		return nil, f.observe(ctx, opRead, h.n.path, start, errno)
	}
	rr, errno := content.Read(ctx, dest, off)
	if errno == syscall.ESTALE {
		// The host file changed under an open descriptor.
		f.stale(ctx, h.n, atReadDirect, nil, errno)
		rr, errno = nil, syscall.EIO
	}
	return rr, f.observe(ctx, opRead, h.n.path, start, errno)
}

func (h *openFile) ensureContent(ctx context.Context) (Content, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stale {
		return nil, syscall.EIO
	}
	if h.content == nil {
		content, errno, stale := h.n.fs.openContent(ctx, h.n)
		if errno != 0 {
			h.stale = stale
			return nil, errno
		}
		h.content = content
	}
	return h.content, 0
}

func (h *openFile) Release(ctx context.Context) syscall.Errno {
	start := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	var errno syscall.Errno
	switch {
	case h.shared:
		errno = h.n.releaseDirect()
	case h.content != nil:
		errno = h.content.Release()
	}
	h.content, h.shared = nil, false
	return h.n.fs.observe(ctx, opRelease, h.n.path, start, errno)
}
