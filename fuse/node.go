package fuse

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
	_ fs.FileLookuper       = (*dirHandle)(nil)

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
	ch, errno := n.lookup(ctx, name, child, out, true)
	return ch, n.fs.observe(ctx, opLookup, child, start, errno)
}

// lookup answers a LOOKUP of name, or (pin false) an entry of a
// READDIRPLUS reply: that one pins no large file, whose entry gets no
// lifetime (see notePlusEntry), so the walk that opens it looks it up.
func (n *node) lookup(ctx context.Context, name, child string, out *gofuse.EntryOut, pin bool) (*fs.Inode, syscall.Errno) {
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
	known := n.GetChild(name)
	if known != nil && known.StableAttr() != stableAttrFor(r.Attr, child) {
		known = nil // the name leads to another version now
	}
	if pin && n.fs.pinsAtLookup(r.Attr) {
		held := false
		if known != nil {
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
	if known != nil && known.StableAttr() != id {
		known = nil // pinLarge found the host's newer version
	}
	ch := known // the bridge would pick it over a new inode anyway
	if ch == nil {
		ch = n.NewInode(ctx, &node{fs: n.fs, path: child, attr: r.Attr}, id)
	}
	got, ok := ch.Operations().(*node)
	if ok {
		got.noteDev(r.Attr.Dev)
	}
	if ok && known != nil {
		// A known node is named again (after a passing error): its
		// next change must invalidate the name again.
		got.invalidated.Store(false)
	}
	if !pin {
		n.fs.notePlusEntry(ctx, known == nil, child, r.Attr, out)
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
// of the mount sends one (Python's open() does, per file). The commands
// are the mounter's (and root's): another user of an allow_other mount
// must not clear the tree's caches, reset the profile or make the node
// write its logs, and gets what a plain file answers, ENOTTY.
func (n *node) Ioctl(ctx context.Context, _ fs.FileHandle, cmd uint32, _ uint64, _ []byte, _ []byte) (int32, syscall.Errno) {
	start := time.Now()
	if isTerminalIoctl(cmd) || !mounterCalls(ctx) {
		return 0, n.fs.observe(ctx, opIoctl, n.path, start, syscall.ENOTTY)
	}
	if n.fs.onIoctl != nil {
		n.fs.onIoctl(cmd, n.path)
	}
	return 0, n.fs.observe(ctx, opIoctl, n.path, start, 0)
}

// mounterCalls reports whether the process behind a request runs as the
// user serving the mount, or as root.
func mounterCalls(ctx context.Context) bool {
	c, ok := gofuse.FromContext(ctx)
	return ok && (c.Uid == 0 || int(c.Uid) == os.Geteuid())
}

// isTerminalIoctl matches the legacy tty requests (TCGETS, TIOCGWINSZ,
// ...): type 'T', no direction or size bits.
func isTerminalIoctl(cmd uint32) bool { return cmd&^0xff == 'T'<<8 }

// Fsync succeeds: nothing is ever pending on a read-only view.
func (n *node) Fsync(ctx context.Context, _ fs.FileHandle, _ uint32) syscall.Errno {
	return n.fs.observe(ctx, opFsync, n.path, time.Now(), 0)
}
