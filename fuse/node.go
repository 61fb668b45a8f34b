package fuse

import (
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/op"
)

// node is one inode of the view: one view path and, for everything but
// directories, one version of the file there (see stableAttrFor). Each
// name of a hard link is a node of its own. attr is the Source's stat at
// the lookup that made the node (zero for the root); every byte the node
// serves is checked against its version.
type node struct {
	fs.Inode
	fs   *filesystem
	path string
	attr op.Attr

	// invalidated is set once the kernel was asked to forget this node's
	// name (see filesystem.stale).
	invalidated atomic.Bool

	// direct is the content of a file over MaxCacheable, shared by the
	// node's open handles (see openDirect).
	direct directShare

	// No-open mounts (Options.HandleOpens off) read with no handle, so
	// what a handle kept is kept by the node: pinned is the large-file
	// content opened at lookup, and readStale is set once the node's
	// version turned out to be gone (every later read fails at once).
	pinned    pinnedContent
	readStale atomic.Bool
	fetchMu   sync.Mutex // one no-open fetch of a small file at a time

	// listing is a no-open directory's listing while the kernel reads
	// it: each READDIR has a handle of its own (see rawView), and those
	// that go on where another stopped continue its listing.
	listing atomic.Pointer[[]gofuse.DirEntry]

	// dev is the host device the Source reported for this node; the
	// entries of its listing are numbered with it (see dirHandle.load).
	dev      atomic.Uint64
	devKnown atomic.Bool
}

// The operations copper serves; every mutation among them answers EROFS.
var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeListxattrer    = (*node)(nil)
	_ fs.NodeIoctler        = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeFlusher        = (*node)(nil)
	_ fs.NodeReader         = (*node)(nil)
	_ fs.NodeOnForgetter    = (*node)(nil)
	_ fs.FileReader         = (*openFile)(nil)
	_ fs.FileReleaser       = (*openFile)(nil)
	_ fs.FileReaddirenter   = (*dirHandle)(nil)
	_ fs.FileSeekdirer      = (*dirHandle)(nil)
	_ fs.FileReleasedirer   = (*dirHandle)(nil)

	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeWriter         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeSetxattrer     = (*node)(nil)
	_ fs.NodeRemovexattrer  = (*node)(nil)
	_ fs.NodeAllocater      = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
)

// Operation names as reported to Options.OnOp: short local names for
// op's one table of them.
const (
	opLookup      = op.FuseLookup
	opGetattr     = op.FuseGetattr
	opReadlink    = op.FuseReadlink
	opOpen        = op.FuseOpen
	opRead        = op.FuseRead
	opRelease     = op.FuseRelease
	opOpendir     = op.FuseOpendir
	opReaddir     = op.FuseReaddir
	opReleasedir  = op.FuseReleasedir
	opStatfs      = op.FuseStatfs
	opGetxattr    = op.FuseGetxattr
	opListxattr   = op.FuseListxattr
	opIoctl       = op.FuseIoctl
	opFsync       = op.FuseFsync
	opFlush       = op.FuseFlush
	opSetattr     = op.FuseSetattr
	opWrite       = op.FuseWrite
	opCreate      = op.FuseCreate
	opTmpfile     = op.FuseTmpfile
	opMknod       = op.FuseMknod
	opMkdir       = op.FuseMkdir
	opUnlink      = op.FuseUnlink
	opRmdir       = op.FuseRmdir
	opRename      = op.FuseRename
	opSymlink     = op.FuseSymlink
	opLink        = op.FuseLink
	opSetxattr    = op.FuseSetxattr
	opRemovexattr = op.FuseRemovexattr
	opFallocate   = op.FuseFallocate
	opCopyRange   = op.FuseCopyRange
)

// writeFlags are the open flags that would change a file.
const writeFlags = syscall.O_WRONLY | syscall.O_RDWR | syscall.O_TRUNC | syscall.O_APPEND | syscall.O_CREAT

func (n *node) noteDev(dev uint64) {
	n.dev.Store(dev)
	n.devKnown.Store(true)
}

// Lookup answers with the child's attributes, passing the Source's
// errno through (ENOENT becomes a kernel negative entry). Guarded paths
// answer ENOENT without asking the Source.
func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	start := time.Now()
	child := op.Join(n.path, name)
	ch, errno := n.lookup(ctx, name, child, out)
	return ch, n.fs.observe(ctx, opLookup, child, start, errno)
}

func (n *node) lookup(ctx context.Context, name, child string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if len(name) > op.MaxNameLen || len(child) > op.MaxPathLen {
		return nil, syscall.ENAMETOOLONG
	}
	if n.fs.guarded(child) {
		return nil, syscall.ENOENT
	}
	r := n.fs.hostAdjusted(child, n.fs.src.Get(ctx, op.Getattr, child))
	if r.Errno != 0 {
		return nil, r.Errno
	}
	var content Content
	if n.fs.pinsAtLookup(r.Attr) {
		held := false
		if known := n.GetChild(name); known != nil && known.StableAttr() == stableAttrFor(r.Attr, child) {
			kn, ok := known.Operations().(*node)
			held = ok && kn.holdsPinned()
		}
		r, content = n.fs.pinLarge(ctx, child, r, held)
		if r.Errno != 0 {
			return nil, r.Errno
		}
	}
	id := stableAttrFor(r.Attr, child)
	fillAttr(&out.Attr, r.Attr, id.Ino)
	c := &node{fs: n.fs, path: child, attr: r.Attr}
	c.noteDev(r.Attr.Dev)
	ch := n.NewInode(ctx, c, id)
	got, ok := ch.Operations().(*node)
	if ok && got != c {
		// A known node is named again (after a passing error): its
		// next change must invalidate the name again.
		got.invalidated.Store(false)
	}
	if content != nil {
		if ok {
			got.pin(content)
		} else {
			_ = content.Release()
		}
	}
	return ch, 0
}

// versioned reports whether n stands for one version of a file, that is
// anything but a directory (and the root).
func (n *node) versioned() bool {
	return n.attr.Mode&syscall.S_IFMT != 0 && !n.attr.IsDir()
}

// Getattr answers with the Source's stat while it shows n's version. Once
// the path shows another file (or none), n keeps answering with its own
// stat: its size and times must stay those of the pages the kernel holds
// for it. Its name is handed to a new node at the next lookup.
func (n *node) Getattr(ctx context.Context, _ fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	start := time.Now()
	r := n.fs.hostAdjusted(n.path, n.fs.src.Get(ctx, op.Getattr, n.path))
	attr, errno := r.Attr, r.Errno
	if n.versioned() && (errno == 0 || goneErrno(errno)) {
		if errno != 0 || !versionOf(attr).sameBytes(versionOf(n.attr)) {
			n.fs.stale(ctx, n, atGetattr, foundVersion(r), errno)
			attr, errno = n.attr, 0
		}
	}
	if errno == 0 {
		fillAttr(&out.Attr, attr, n.StableAttr().Ino)
		n.noteDev(attr.Dev)
	}
	return n.fs.observe(ctx, opGetattr, n.path, start, errno)
}

// foundVersion is the version in a successful result, nil otherwise.
func foundVersion(r op.Result) *version {
	if r.Errno != 0 {
		return nil
	}
	v := versionOf(r.Attr)
	return &v
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	start := time.Now()
	r := n.fs.src.Get(ctx, op.Readlink, n.path)
	if r.Errno != 0 {
		return nil, n.fs.observe(ctx, opReadlink, n.path, start, r.Errno)
	}
	n.fs.observe(ctx, opReadlink, n.path, start, 0)
	return []byte(r.Target), 0
}

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
	want := versionOf(n.attr)
	if n.attr.Size <= f.maxCacheable {
		r := f.src.Get(ctx, op.Read, n.path)
		switch {
		case r.Errno == 0:
			if got := versionOf(r.Attr); !got.sameBytes(want) || int64(len(r.Data)) != want.size {
				f.stale(ctx, n, atRead, &got, 0)
				return nil, syscall.EIO, true
			}
			return memoryContent{data: r.Data}, 0, false
		case r.Errno == syscall.EFBIG:
			// The Source will not carry it whole: it grew past the limit
			// (the provider finds the new version and refuses), or the
			// Source's limit is below ours (the provider serves it).
		case goneErrno(r.Errno):
			f.stale(ctx, n, atRead, nil, r.Errno)
			return nil, syscall.EIO, true
		default:
			return nil, r.Errno, false
		}
	}
	content, errno := f.large.Open(ctx, n.path, n.attr)
	if errno == syscall.ESTALE {
		f.stale(ctx, n, atReadDirect, nil, errno)
		return nil, syscall.EIO, true
	}
	return content, errno, false
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

// OpendirHandle returns a handle that lists the directory on first
// read. FOPEN_CACHE_DIR|FOPEN_KEEP_CACHE let the kernel keep listings,
// so a warm listdir costs one OPENDIR and never reaches the Source. On a
// no-open mount the kernel never sends OPENDIR (rawView answers it), and
// the handles are rawView's, one per READDIR: they are not reported.
func (n *node) OpendirHandle(ctx context.Context, _ uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.fs.handleOpens {
		n.fs.observe(ctx, opOpendir, n.path, time.Now(), 0)
	}
	return &dirHandle{n: n}, gofuse.FOPEN_CACHE_DIR | gofuse.FOPEN_KEEP_CACHE, 0
}

// dirHandle is one open directory. go-fuse serialises the calls on one
// handle, so it needs no lock.
type dirHandle struct {
	n       *node
	loaded  bool
	entries []gofuse.DirEntry
	next    int
	kept    *[]gofuse.DirEntry // entries, as kept in n.listing (no-open)
	emitted bool
}

// load lists the directory once: ".", "..", then the Source's entries
// minus guarded ones. Entry i has offset i+1, so Seekdir(off) resumes at
// index off.
func (d *dirHandle) load(ctx context.Context) syscall.Errno {
	if d.loaded {
		return 0
	}
	n := d.n
	start := time.Now()
	r := n.fs.src.Get(ctx, op.Readdir, n.path)
	if r.Errno != 0 {
		return n.fs.observe(ctx, opReaddir, n.path, start, r.Errno)
	}
	dev, errno := n.hostDev(ctx)
	if errno != 0 {
		return n.fs.observe(ctx, opReaddir, n.path, start, errno)
	}
	parentIno := uint64(rootIno)
	if _, parent := n.Parent(); parent != nil {
		parentIno = parent.StableAttr().Ino
	}
	entries := make([]gofuse.DirEntry, 0, len(r.Entries)+2)
	entries = append(entries,
		gofuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: n.StableAttr().Ino, Off: 1},
		gofuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: parentIno, Off: 2})
	for _, e := range r.Entries {
		if !validName(e.Name) || n.fs.hiddenIn(n.path, e.Name) {
			continue
		}
		ino := inodeNumber(dev, e.Ino)
		if e.Ino == 0 {
			ino = pathInode(op.Join(n.path, e.Name))
		}
		entries = append(entries, gofuse.DirEntry{
			Name: e.Name,
			Mode: e.Mode & syscall.S_IFMT,
			Ino:  ino,
			Off:  uint64(len(entries) + 1),
		})
	}
	d.entries, d.loaded = entries, true
	if !n.fs.handleOpens {
		d.kept = &entries
		n.listing.Store(d.kept)
	}
	n.fs.observe(ctx, opReaddir, n.path, start, 0)
	return 0
}

// validName rejects names a listing must not hand the kernel: the dot
// entries (added above) and anything no lookup could reach.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= op.MaxNameLen &&
		!strings.ContainsAny(name, "/\x00")
}

// hostDev returns the device of this directory, asking the Source only
// for the root, which no lookup created.
func (n *node) hostDev(ctx context.Context) (uint64, syscall.Errno) {
	if n.devKnown.Load() {
		return n.dev.Load(), 0
	}
	r := n.fs.src.Get(ctx, op.Getattr, n.path)
	if r.Errno != 0 {
		return 0, r.Errno
	}
	n.noteDev(r.Attr.Dev)
	return r.Attr.Dev, 0
}

func (d *dirHandle) Readdirent(ctx context.Context) (*gofuse.DirEntry, syscall.Errno) {
	if errno := d.load(ctx); errno != 0 {
		return nil, errno
	}
	if d.next >= len(d.entries) {
		if d.kept != nil && !d.emitted {
			// The kernel reads on until a READDIR brings nothing:
			// it has the whole listing, let the copy go.
			d.n.listing.CompareAndSwap(d.kept, nil)
		}
		return nil, 0
	}
	d.emitted = true
	e := d.entries[d.next]
	d.next++
	return &e, 0
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if kept := d.n.listing.Load(); !d.loaded && off > 0 && kept != nil {
		// A no-open READDIR going on where another one stopped.
		d.entries, d.loaded, d.kept = *kept, true, kept
	}
	if errno := d.load(ctx); errno != 0 {
		return errno
	}
	d.next = int(min(off, uint64(len(d.entries))))
	return 0
}

func (d *dirHandle) Releasedir(ctx context.Context, _ uint32) {
	if d.n.fs.handleOpens {
		d.n.fs.observe(ctx, opReleasedir, d.n.path, time.Now(), 0)
	}
}

// Statfs reports the target's file system, or neutral constants when it
// cannot be asked.
func (n *node) Statfs(ctx context.Context, out *gofuse.StatfsOut) syscall.Errno {
	start := time.Now()
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.fs.target, &st); err != nil {
		*out = gofuse.StatfsOut{Bsize: 4096, Frsize: 4096, NameLen: op.MaxNameLen}
	} else {
		out.FromStatfsT(&st)
	}
	return n.fs.observe(ctx, opStatfs, n.path, start, 0)
}

// Getxattr and Listxattr answer at once: copper carries no extended
// attributes, and the kernel asks for security.* ones on many accesses.
func (n *node) Getxattr(ctx context.Context, _ string, _ []byte) (uint32, syscall.Errno) {
	return 0, n.fs.observe(ctx, opGetxattr, n.path, time.Now(), syscall.ENODATA)
}

func (n *node) Listxattr(ctx context.Context, _ []byte) (uint32, syscall.Errno) {
	return 0, n.fs.observe(ctx, opListxattr, n.path, time.Now(), 0)
}

// Ioctl hands every command to OnIoctl and succeeds, as Copper 1.0 does,
// except terminal requests: isatty() on a file must stay false. Those
// are answered first and never reach OnIoctl: every isatty() on a file
// of the mount sends one (Python's open() does, per file).
func (n *node) Ioctl(ctx context.Context, _ fs.FileHandle, cmd uint32, _ uint64, _ []byte, _ []byte) (int32, syscall.Errno) {
	start := time.Now()
	if isTerminalIoctl(cmd) {
		return 0, n.fs.observe(ctx, opIoctl, n.path, start, syscall.ENOTTY)
	}
	if n.fs.onIoctl != nil {
		n.fs.onIoctl(cmd, n.path)
	}
	return 0, n.fs.observe(ctx, opIoctl, n.path, start, 0)
}

// isTerminalIoctl matches the legacy tty requests (TCGETS, TIOCGWINSZ,
// ...): type 'T', no direction or size bits.
func isTerminalIoctl(cmd uint32) bool { return cmd&^0xff == 'T'<<8 }

// Fsync succeeds: nothing is ever pending on a read-only view.
func (n *node) Fsync(ctx context.Context, _ fs.FileHandle, _ uint32) syscall.Errno {
	return n.fs.observe(ctx, opFsync, n.path, time.Now(), 0)
}

// refuse answers a mutation. The kernel normally refuses them itself
// (the mount is "ro"); this is the answer if one gets through.
func (n *node) refuse(ctx context.Context, name string) syscall.Errno {
	return n.fs.observe(ctx, name, n.path, time.Now(), syscall.EROFS)
}

func (n *node) Setattr(ctx context.Context, _ fs.FileHandle, _ *gofuse.SetAttrIn, _ *gofuse.AttrOut) syscall.Errno {
	return n.refuse(ctx, opSetattr)
}

func (n *node) Write(ctx context.Context, _ fs.FileHandle, _ []byte, _ int64) (uint32, syscall.Errno) {
	return 0, n.refuse(ctx, opWrite)
}

func (n *node) Create(ctx context.Context, _ string, _, _ uint32, _ *gofuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, n.refuse(ctx, opCreate)
}

func (n *node) Tmpfile(ctx context.Context, _, _ uint32, _ *gofuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, n.refuse(ctx, opTmpfile)
}

func (n *node) Mknod(ctx context.Context, _ string, _, _ uint32, _ *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, n.refuse(ctx, opMknod)
}

func (n *node) Mkdir(ctx context.Context, _ string, _ uint32, _ *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, n.refuse(ctx, opMkdir)
}

func (n *node) Unlink(ctx context.Context, _ string) syscall.Errno { return n.refuse(ctx, opUnlink) }

func (n *node) Rmdir(ctx context.Context, _ string) syscall.Errno { return n.refuse(ctx, opRmdir) }

func (n *node) Rename(ctx context.Context, _ string, _ fs.InodeEmbedder, _ string, _ uint32) syscall.Errno {
	return n.refuse(ctx, opRename)
}

func (n *node) Symlink(ctx context.Context, _, _ string, _ *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, n.refuse(ctx, opSymlink)
}

func (n *node) Link(ctx context.Context, _ fs.InodeEmbedder, _ string, _ *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, n.refuse(ctx, opLink)
}

func (n *node) Setxattr(ctx context.Context, _ string, _ []byte, _ uint32) syscall.Errno {
	return n.refuse(ctx, opSetxattr)
}

func (n *node) Removexattr(ctx context.Context, _ string) syscall.Errno {
	return n.refuse(ctx, opRemovexattr)
}

func (n *node) Allocate(ctx context.Context, _ fs.FileHandle, _, _ uint64, _ uint32) syscall.Errno {
	return n.refuse(ctx, opFallocate)
}

func (n *node) CopyFileRange(ctx context.Context, _ fs.FileHandle, _ uint64, _ *fs.Inode, _ fs.FileHandle, _, _, _ uint64) (uint32, syscall.Errno) {
	return 0, n.refuse(ctx, opCopyRange)
}

// fillAttr converts the Source's attributes for the kernel.
func fillAttr(out *gofuse.Attr, a op.Attr, ino uint64) {
	out.Ino = ino
	out.Size = uint64(a.Size)
	out.Blocks = uint64(a.Blocks)
	out.Atime, out.Atimensec = splitNs(a.AtimeNs)
	out.Mtime, out.Mtimensec = splitNs(a.MtimeNs)
	out.Ctime, out.Ctimensec = splitNs(a.CtimeNs)
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.Uid, a.Gid
	out.Rdev = uint32(a.Rdev)
	out.Blksize = uint32(a.Blksize)
}

// splitNs splits nanoseconds since the epoch into seconds and a
// non-negative remainder; times before 1970 keep their sign in the
// seconds, which the kernel reads as signed.
func splitNs(ns int64) (uint64, uint32) {
	t := time.Unix(0, ns)
	return uint64(t.Unix()), uint32(t.Nanosecond())
}

// inodeFor numbers a file (st_ino) from its host identity, so it has the same
// number on every node (all nodes see the root's stat) and numbers from
// different devices do not collide in practice. Without an identity the
// view path is hashed instead.
func inodeFor(a op.Attr, viewPath string) uint64 {
	if a.Dev == 0 && a.Ino == 0 {
		return pathInode(viewPath)
	}
	return inodeNumber(a.Dev, a.Ino)
}

func inodeNumber(dev, ino uint64) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], dev)
	binary.LittleEndian.PutUint64(b[8:], ino)
	return usableIno(xxhash.Sum64(b[:]))
}

func pathInode(viewPath string) uint64 { return usableIno(xxhash.Sum64String(viewPath)) }

// usableIno keeps hashes off the numbers that are taken: 0 (no inode),
// the root's, and go-fuse's reserved ^0.
func usableIno(h uint64) uint64 {
	switch h {
	case 0, rootIno, ^uint64(0):
		return rootIno + 1
	}
	return h
}
