package fuse

import (
	"context"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/op"
)

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

// Lookup answers an entry of a READDIRPLUS reply (go-fuse's
// FileLookuper): the node's lookup, not reported as a LOOKUP, and with
// no large file pinned.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return d.n.lookup(ctx, name, op.Join(d.n.path, name), out, false)
}
