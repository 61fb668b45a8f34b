// Package backend answers copper operations from the backing filesystem.
// Only a tree's root uses it for the distributed operations, so it is the
// one place where copper touches the parallel filesystem: every call is
// bounded by a semaphore and counted.
package backend

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/op"
)

// Backend reads Target on this host. It resolves every view path
// beneath a directory fd opened once, and never follows a symlink there:
// peers ask for paths, and a followed link would serve any host file
// with the daemon's rights. The view still shows links as links; the
// kernel of each client follows them with the caller's own rights.
type Backend struct {
	log          *slog.Logger
	target       string
	guard        []string
	maxCacheable int64
	dirFiles     int64 // largest file shipped with its directory's dirplus (0: none)
	slots        chan struct{}
	ops          [len(op.All) + 1]atomic.Int64
	chunkBytes   atomic.Int64 // bytes Chunk read
	shipped      atomic.Int64 // files read into dirplus answers
	shippedBytes atomic.Int64 // their bytes
	shippedKnown atomic.Int64 // files dirplus answers carried from the caller's Known
	res          resolver
	// root is Target, O_PATH|O_DIRECTORY. Its RawConn's Control holds a
	// reference for the length of one operation, so Close never frees
	// (and the kernel never reuses) the fd number under a running one.
	root     *os.File
	rootConn syscall.RawConn
}

// Config describes a backend.
type Config struct {
	Target       string // absolute, clean host directory shown at the view root
	Parallel     int    // concurrent backend operations (>= 1)
	MaxCacheable int64  // Read of a larger file answers EFBIG
	// DirFiles is the largest regular file whose content a DirPlus answer
	// carries (at most MaxCacheable; 0: none), up to DirFilesTotal bytes
	// per directory.
	DirFiles int64
	Guard    []string // host path prefixes answered ENOENT (copper mounts: never recurse into them)
	// ForceWalk resolves paths by the openat walk that kernels without
	// openat2 (before 5.6) get automatically; for tests.
	ForceWalk bool
	// Logger gets one line for every EIO the backend makes up (a file
	// that kept changing, a bad directory entry, a closed target); nil
	// discards them.
	Logger *slog.Logger
}

// New opens cfg.Target and returns a backend for it. A target that is
// not a directory (a file, a symlink to one, a missing path) is an error
// naming it. Close releases the target.
func New(cfg Config) (*Backend, error) { return newBackend(cfg, unix.Openat2) }

func newBackend(cfg Config, openat2 openat2Func) (*Backend, error) {
	if cfg.Parallel < 1 {
		cfg.Parallel = 1
	}
	fd, err := openTarget(cfg.Target)
	if err != nil {
		return nil, err
	}
	var res resolver
	if !cfg.ForceWalk {
		has, err := probeOpenat2(fd, openat2, cfg.Target)
		if err != nil {
			_ = unix.Close(fd)
			return nil, err
		}
		if has {
			res.openat2 = openat2
		}
	}
	root := os.NewFile(uintptr(fd), cfg.Target)
	rc, err := root.SyscallConn()
	if err != nil {
		_ = root.Close()
		return nil, fmt.Errorf("target %s: %w", cfg.Target, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{
		log:          log,
		target:       cfg.Target,
		guard:        cfg.Guard,
		maxCacheable: cfg.MaxCacheable,
		dirFiles:     max(min(cfg.DirFiles, cfg.MaxCacheable), 0),
		slots:        make(chan struct{}, cfg.Parallel),
		res:          res,
		root:         root,
		rootConn:     rc,
	}, nil
}

// Close releases the target directory once running operations end;
// later ones answer EIO.
func (b *Backend) Close() error { return b.root.Close() }

// Resolver names how paths are resolved: "openat2" or "openat walk".
func (b *Backend) Resolver() string {
	if b.res.openat2 != nil {
		return "openat2"
	}
	return "openat walk"
}

// HostPath maps a view path to the backing path.
func HostPath(target, view string) string {
	switch {
	case target == "/":
		return view
	case view == "/":
		return target
	}
	return target + view
}

// Guarded reports whether a host path lies in a guarded prefix.
func Guarded(host string, guard []string) bool {
	for _, g := range guard {
		if op.Within(host, g) {
			return true
		}
	}
	return false
}

// Ops returns how many backend operations of type o were performed.
func (b *Backend) Ops(o op.Op) int64 {
	if !o.Valid() {
		return 0
	}
	return b.ops[o].Load()
}

// Do performs one operation on the backing filesystem. Read of a file
// larger than MaxCacheable answers EFBIG: the caller reads such files
// itself (Copper 1.0 semantics). A path through a symlink answers ELOOP:
// a kernel resolves links itself, so only a peer that is not a plain
// client asks for one; Read and Readdir of a symlink answer ELOOP too.
// Chunk's "path" is a ChunkReq's encoding (see Chunk).
func (b *Backend) Do(ctx context.Context, o op.Op, view string) op.Result {
	return b.operate(ctx, o, view, nil)
}

// DirPlus is Do(ctx, op.DirPlus, view), except that a file known says the
// caller holds or is reading is not read again for the answer.
func (b *Backend) DirPlus(ctx context.Context, view string, known Known) op.Result {
	return b.operate(ctx, op.DirPlus, view, known)
}

func (b *Backend) operate(ctx context.Context, o op.Op, view string, known Known) op.Result {
	if o == op.Chunk {
		req, errno := op.DecodeChunkReq(view)
		if errno != 0 {
			return op.Fail(errno)
		}
		return b.Chunk(ctx, req)
	}
	if errno := op.CheckPath(view); errno != 0 {
		return op.Fail(errno)
	}
	if len(b.guard) > 0 && Guarded(HostPath(b.target, view), b.guard) {
		return op.Fail(syscall.ENOENT)
	}
	// Paging a dirplus is the node's business: the backend lists whole.
	if !o.Valid() || o == op.IsReady || o == op.DirPlusNext {
		return op.Fail(syscall.ENOSYS)
	}
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return op.Fail(syscall.EINTR)
	}
	defer func() { <-b.slots }()
	b.ops[o].Add(1)
	var r op.Result
	if err := b.rootConn.Control(func(fd uintptr) {
		if o == op.DirPlus {
			r = b.dirPlus(int(fd), view, known)
			return
		}
		r = b.do(int(fd), o, view)
	}); err != nil {
		return b.eio(o, view, fmt.Errorf("target closed (the node is stopping): %w", err))
	}
	return r
}

func (b *Backend) do(root int, o op.Op, view string) op.Result {
	switch o {
	case op.Getattr:
		return b.getattr(root, view)
	case op.Readdir:
		return b.readdir(root, view)
	case op.Readlink:
		return b.readlink(root, view)
	case op.Read:
		return b.readWhole(root, view)
	}
	return op.Fail(syscall.ENOSYS)
}

// relative turns a checked view path into one relative to the target.
func relative(view string) string {
	if view == "/" {
		return "."
	}
	return view[1:]
}

// parent opens the directory that holds view's last name (view != "/").
// done closes it; for a name at the top it is root itself, not closed.
func (b *Backend) parent(root int, view string) (dir int, name string, done func(), err error) {
	i := strings.LastIndexByte(view, '/')
	name = view[i+1:]
	if i == 0 {
		return root, name, func() {}, nil
	}
	dir, err = b.res.open(root, view[1:i], unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, "", nil, err
	}
	return dir, name, func() { _ = unix.Close(dir) }, nil
}

func (b *Backend) getattr(root int, view string) op.Result {
	var st unix.Stat_t
	if view == "/" {
		if err := osutil.RetryEINTR(func() error { return unix.Fstat(root, &st) }); err != nil {
			return op.Fail(osutil.Errno(err))
		}
		return op.Result{Attr: attrOf(&st)}
	}
	dir, name, done, err := b.parent(root, view)
	if err != nil {
		return op.Fail(osutil.Errno(err))
	}
	defer done()
	if err := osutil.RetryEINTR(func() error { return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return op.Fail(osutil.Errno(err))
	}
	return op.Result{Attr: attrOf(&st)}
}

// attrOf converts a stat result of the unix package (which has fstatat
// on every platform) as op.AttrFromStat converts syscall's.
func attrOf(st *unix.Stat_t) op.Attr {
	return op.Attr{
		Dev:     st.Dev,
		Ino:     st.Ino,
		Mode:    st.Mode,
		Nlink:   uint32(st.Nlink),
		Uid:     st.Uid,
		Gid:     st.Gid,
		Rdev:    st.Rdev,
		Size:    st.Size,
		Blocks:  st.Blocks,
		Blksize: int32(st.Blksize),
		AtimeNs: st.Atim.Nano(),
		MtimeNs: st.Mtim.Nano(),
		CtimeNs: st.Ctim.Nano(),
	}
}

func (b *Backend) readlink(root int, view string) op.Result {
	if view == "/" {
		return op.Fail(syscall.EINVAL) // the target is a directory
	}
	dir, name, done, err := b.parent(root, view)
	if err != nil {
		return op.Fail(osutil.Errno(err))
	}
	defer done()
	t, errno := readlinkAt(dir, name)
	if errno != 0 {
		return op.Fail(errno)
	}
	return op.Result{Target: t}
}

func readlinkAt(dir int, name string) (string, syscall.Errno) {
	for size := 256; size <= op.MaxPathLen*2; size *= 2 {
		buf := make([]byte, size)
		var n int
		err := osutil.RetryEINTR(func() (err error) { n, err = unix.Readlinkat(dir, name, buf); return err })
		if err != nil {
			return "", osutil.Errno(err)
		}
		if n < size {
			return string(buf[:n]), 0
		}
	}
	return "", syscall.ENAMETOOLONG
}

// fail answers err's errno; an error without one (a bad directory
// entry) is an EIO, logged with its cause.
func (b *Backend) fail(o op.Op, view string, err error) op.Result {
	if errno := osutil.Errno(err); errno != syscall.EIO {
		return op.Fail(errno)
	}
	return b.eio(o, view, err)
}

// eio logs why o on view answers EIO, once, here: the answer travels the
// tree and every application that asks gets it.
func (b *Backend) eio(o op.Op, view string, cause error) op.Result {
	b.log.Error("backend: answering EIO", "op", o.String(), "path", view, "cause", cause)
	return op.Fail(syscall.EIO)
}
