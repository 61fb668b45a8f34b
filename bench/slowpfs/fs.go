package slowpfs

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/op"
)

// ClientOptions configure one client mount.
type ClientOptions struct {
	// CacheTimeout is how long this client's kernel keeps what it
	// learned: entries, attributes, "no such file" answers, listings and
	// file pages. A Lustre client keeps them as long as it holds the
	// server's locks, which during a job start is the whole job. Opens
	// always reach the server, as on Lustre. 0 = no client cache: every
	// access is a request.
	CacheTimeout time.Duration
	Debug        bool // go-fuse request tracing on stderr
}

// Client is one mounted client view of the emulated filesystem.
type Client struct {
	e          *Emulator
	opts       ClientOptions
	server     *fuse.Server
	mountpoint string
	rootDev    uint64

	mu        sync.Mutex
	unmounted bool
}

// Mount mounts a new client view of the emulator at dir (which must
// exist). As root it mounts directly; otherwise through fusermount3.
func (e *Emulator) Mount(dir string, opts ClientOptions) (*Client, error) {
	mountpoint, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("slowpfs: mount point %q: %w", dir, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(e.backing, &st); err != nil {
		return nil, fmt.Errorf("slowpfs: backing %s: %w", e.backing, err)
	}
	c := &Client{e: e, opts: opts, mountpoint: mountpoint, rootDev: uint64(st.Dev)}
	cache := max(opts.CacheTimeout, 0)
	fsOpts := &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName: "slowpfs:" + e.backing,
			Name:   "slowpfs",
			// Read-only: the kernel refuses mutations itself, and with
			// MS_RDONLY it never invalidates attributes for atime.
			Options:           []string{"ro", "default_permissions"},
			DirectMountStrict: os.Geteuid() == 0,
			DirectMountFlags:  syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV,
			// Many clients' worth of requests may be in flight at once.
			MaxBackground:      64,
			DisableReadDirPlus: true,
			// The data the client caches never changes.
			ExplicitDataCacheControl: true,
			EnableSymlinkCaching:     cache > 0,
			Debug:                    opts.Debug,
		},
		EntryTimeout:    &cache,
		AttrTimeout:     &cache,
		NegativeTimeout: &cache,
		NullPermissions: true,
		RootStableAttr:  &fs.StableAttr{Ino: 1},
		Logger:          log.New(os.Stderr, "slowpfs: ", log.LstdFlags),
	}
	server, err := fs.Mount(mountpoint, &node{c: c, path: "/"}, fsOpts)
	if err != nil {
		return nil, fmt.Errorf("slowpfs: mount client of %s at %s: %w", e.backing, mountpoint, err)
	}
	c.server = server
	e.mu.Lock()
	e.clients = append(e.clients, c)
	e.mu.Unlock()
	return c, nil
}

// Mountpoint returns the client's absolute mount directory.
func (c *Client) Mountpoint() string { return c.mountpoint }

// Unmount unmounts the client, lazily when it is busy. Calling it again
// is a no-op.
func (c *Client) Unmount() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unmounted {
		return nil
	}
	err := c.server.Unmount()
	if err != nil {
		if lazy := syscall.Unmount(c.mountpoint, syscall.MNT_DETACH); lazy != nil {
			return fmt.Errorf("slowpfs: unmount %s: %w", c.mountpoint, errors.Join(err, lazy))
		}
	}
	c.unmounted = true
	return nil
}

func (c *Client) caching() bool { return c.opts.CacheTimeout > 0 }

// ino gives backing files stable inode numbers, mixing in the device
// when the backing directory spans filesystems.
func (c *Client) ino(st *syscall.Stat_t) uint64 {
	swap := func(d uint64) uint64 { return d<<32 | d>>32 }
	return st.Ino ^ swap(uint64(st.Dev)) ^ swap(c.rootDev)
}

// node is one inode of a client view; its view path is fixed at lookup
// (the view is read-only).
type node struct {
	fs.Inode
	c    *Client
	path string
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.FileReader         = (*file)(nil)
	_ fs.FileReleaser       = (*file)(nil)
	_ fs.FileReaddirenter   = (*dir)(nil)
	_ fs.FileSeekdirer      = (*dir)(nil)
	_ fs.FileReleasedirer   = (*dir)(nil)
)

func (n *node) emu() *Emulator { return n.c.e }

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	child := op.Join(n.path, name)
	var st syscall.Stat_t
	err := n.emu().Metadata(OpLookup, child, 1, func() error {
		return syscall.Lstat(n.emu().host(child), &st)
	})
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	out.Attr.FromStat(&st)
	ch := n.NewInode(ctx, &node{c: n.c, path: child}, fs.StableAttr{Mode: st.Mode & syscall.S_IFMT, Ino: n.c.ino(&st)})
	return ch, 0
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	err := n.emu().Metadata(OpGetattr, n.path, 1, func() error {
		if f, ok := fh.(*file); ok {
			return syscall.Fstat(f.fd, &st)
		}
		if n.path == "/" {
			return syscall.Stat(n.emu().host(n.path), &st)
		}
		return syscall.Lstat(n.emu().host(n.path), &st)
	})
	if err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	if n.path == "/" {
		out.Ino = 1
	} else {
		out.Ino = n.c.ino(&st)
	}
	return 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	buf := make([]byte, op.MaxPathLen+1)
	var size int
	err := n.emu().Metadata(OpReadlink, n.path, 1, func() (err error) {
		size, err = syscall.Readlink(n.emu().host(n.path), buf)
		return err
	})
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return buf[:size], 0
}

const writeFlags = syscall.O_WRONLY | syscall.O_RDWR | syscall.O_TRUNC | syscall.O_APPEND | syscall.O_CREAT

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&writeFlags != 0 {
		n.emu().Free(OpOpen, n.path, true)
		return nil, 0, syscall.EROFS
	}
	fd := -1
	err := n.emu().Metadata(OpOpen, n.path, 1, func() (err error) {
		fd, err = unix.Open(n.emu().host(n.path), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		return err
	})
	if err != nil {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
		return nil, 0, fs.ToErrno(err)
	}
	var fuseFlags uint32
	if n.c.caching() {
		fuseFlags = fuse.FOPEN_KEEP_CACHE
	}
	return &file{n: n, fd: fd}, fuseFlags, 0
}

// file is one open backing file.
type file struct {
	n  *node
	fd int
}

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := f.n.emu().Data(f.n.path, off, func() (int, error) {
		return unix.Pread(f.fd, dest, off)
	})
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (f *file) Release(ctx context.Context) syscall.Errno {
	f.n.emu().Free(OpRelease, f.n.path, false)
	return fs.ToErrno(unix.Close(f.fd))
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	err := n.emu().Metadata(OpOpendir, n.path, 1, func() error {
		return syscall.Access(n.emu().host(n.path), unix.R_OK|unix.X_OK)
	})
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	var fuseFlags uint32
	if n.c.caching() {
		fuseFlags = fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	return &dir{n: n}, fuseFlags, 0
}

// dir is one open directory; it lists the backing directory on first
// read, charging one readdir operation per DirEntriesPerOp entries.
// go-fuse serialises calls on one handle.
type dir struct {
	n       *node
	loaded  bool
	entries []fuse.DirEntry
	next    int
}

func (d *dir) load() syscall.Errno {
	if d.loaded {
		return 0
	}
	e := d.n.emu()
	entries, err := listDir(e.host(d.n.path))
	if err != nil {
		e.Free(OpReaddir, d.n.path, true)
		return fs.ToErrno(err)
	}
	per := e.model.Params().DirEntriesPerOp
	ops := max(1, (len(entries)+per-1)/per)
	if err := e.Metadata(OpReaddir, d.n.path, ops, func() error { return nil }); err != nil {
		return fs.ToErrno(err)
	}
	for i := range entries {
		entries[i].Off = uint64(i + 1) // Seekdir(off) resumes at index off
	}
	d.entries, d.loaded = entries, true
	return 0
}

func (d *dir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if errno := d.load(); errno != 0 {
		return nil, errno
	}
	if d.next >= len(d.entries) {
		return nil, 0
	}
	e := d.entries[d.next]
	d.next++
	return &e, 0
}

func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if errno := d.load(); errno != 0 {
		return errno
	}
	d.next = int(min(off, uint64(len(d.entries))))
	return 0
}

func (d *dir) Releasedir(ctx context.Context, _ uint32) {
	d.n.emu().Free(OpReleasedir, d.n.path, false)
}

// listDir reads a whole directory with getdents(2), keeping inode
// numbers and types.
func listDir(path string) ([]fuse.DirEntry, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var out []fuse.DirEntry
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, fmt.Errorf("getdents %s: %w", path, err)
		}
		if n <= 0 {
			return out, nil
		}
		for off := 0; off < n; {
			var de fuse.DirEntry
			size := de.Parse(buf[off:n])
			if size <= 0 {
				return nil, fmt.Errorf("getdents %s: malformed entry at byte %d", path, off)
			}
			off += size
			out = append(out, de)
		}
	}
}

// Statfs describes the backing filesystem; it costs nothing (df is not
// part of a job start).
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	err := syscall.Statfs(n.emu().backing, &st)
	n.emu().Free(OpStatfs, n.path, err != nil)
	if err != nil {
		return fs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	return 0
}

// Getxattr answers "no such attribute" for free: the kernel asks for
// security.capability on exec, which a real client answers from cache.
func (n *node) Getxattr(ctx context.Context, _ string, _ []byte) (uint32, syscall.Errno) {
	n.emu().Free(OpGetxattr, n.path, true)
	return 0, syscall.ENODATA
}
