// Package backend answers copper operations from the backing filesystem.
// Only a tree's root uses it for the distributed operations, so it is the
// one place where copper touches the parallel filesystem: every call is
// bounded by a semaphore and counted.
package backend

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
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
	slots        chan struct{}
	ops          [len(op.All) + 1]atomic.Int64
	chunkBytes   atomic.Int64 // bytes Chunk read
	res          resolver
	// root is Target, O_PATH|O_DIRECTORY. Its RawConn's Control holds a
	// reference for the length of one operation, so Close never frees
	// (and the kernel never reuses) the fd number under a running one.
	root     *os.File
	rootConn syscall.RawConn
}

// Config describes a backend.
type Config struct {
	Target       string   // absolute, clean host directory shown at the view root
	Parallel     int      // concurrent backend operations (>= 1)
	MaxCacheable int64    // Read of a larger file answers EFBIG
	Guard        []string // host path prefixes answered ENOENT (copper mounts: never recurse into them)
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
			r = b.dirPlus(int(fd), view)
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

func (b *Backend) readdir(root int, view string) op.Result {
	fd, err := b.res.open(root, relative(view), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return op.Fail(osutil.Errno(err))
	}
	defer unix.Close(fd)
	entries, err := listDir(fd)
	if err != nil {
		return b.fail(op.Readdir, view, err)
	}
	// Some filesystems (and Lustre under some settings) report DT_UNKNOWN.
	for i := range entries {
		if entries[i].Mode == 0 {
			var st unix.Stat_t
			if err := osutil.RetryEINTR(func() error {
				return unix.Fstatat(fd, entries[i].Name, &st, unix.AT_SYMLINK_NOFOLLOW)
			}); err == nil {
				entries[i].Mode = st.Mode & syscall.S_IFMT
			}
		}
	}
	// Sorted like a dirplus, whose listing answers later readdirs: a
	// directory lists in one order whichever operation fetched it.
	slices.SortFunc(entries, func(a, b op.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return op.Result{Entries: entries}
}

// listDir reads every entry of an open directory. Its error is the
// getdents errno or a bad entry's (see fail).
func listDir(fd int) ([]op.DirEntry, error) {
	var entries []op.DirEntry
	buf := make([]byte, 32<<10)
	for {
		var n int
		err := osutil.RetryEINTR(func() (err error) { n, err = unix.Getdents(fd, buf); return err })
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return entries, nil
		}
		entries, err = ParseDirents(buf[:n], entries)
		if err != nil {
			return nil, fmt.Errorf("bad directory entry: %w", err)
		}
	}
}

// dirPlus lists a directory whole and lstats every entry (reading the text
// of links) from the directory fd: the same fstatat(AT_SYMLINK_NOFOLLOW)
// and readlinkat that Getattr and Readlink of each name do, so the attrs
// are the versions those would answer. Each stat and readlink counts as a
// Getattr or Readlink operation. The caller holds one slot; the stats also
// use whatever other slots are free at the start, never more than
// Parallel in all. A name gone between getdents and its stat is left out
// (the listing then matches the directory after the delete); any other
// stat error fails the whole dirplus, so that the asker falls back to
// per-name operations and their real errnos (a directory readable but not
// searchable lists but stats nothing).
func (b *Backend) dirPlus(root int, view string) op.Result {
	fd, err := b.res.open(root, relative(view), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return op.Fail(osutil.Errno(err))
	}
	defer unix.Close(fd)
	list, err := listDir(fd)
	if err != nil {
		return b.fail(op.DirPlus, view, err)
	}
	if len(b.guard) > 0 {
		list = slices.DeleteFunc(list, func(e op.DirEntry) bool {
			return Guarded(HostPath(b.target, op.Join(view, e.Name)), b.guard)
		})
	}
	slices.SortFunc(list, func(a, b op.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	plus := make([]op.PlusEntry, len(list))
	errs := make([]syscall.Errno, len(list))
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(list) {
				return
			}
			plus[i], errs[i] = b.statEntry(fd, list[i])
		}
	}
	var wg sync.WaitGroup
	// Extra workers only on slots free now: a busy root does not wait.
spawn:
	for range min(len(list)/8, cap(b.slots)-1) {
		select {
		case b.slots <- struct{}{}:
			wg.Go(func() {
				defer func() { <-b.slots }()
				work()
			})
		default:
			break spawn
		}
	}
	work()
	wg.Wait()
	out := plus[:0]
	for i, e := range plus {
		switch errs[i] {
		case 0:
			out = append(out, e)
		case syscall.ENOENT:
		default:
			return op.Fail(errs[i])
		}
	}
	return op.Result{Plus: out}
}

// statEntry is one dirplus entry: its lstat, and a link's text. A link
// that getdents typed as one is read before its stat: reading it may move
// its atime, and the stat should be the one a later getattr gets.
func (b *Backend) statEntry(dir int, d op.DirEntry) (op.PlusEntry, syscall.Errno) {
	e := op.PlusEntry{Name: d.Name}
	readLink := func() {
		b.ops[op.Readlink].Add(1)
		// A link that cannot be read is still listed; Readlink asks alone.
		if t, errno := readlinkAt(dir, d.Name); errno == 0 {
			e.Target, e.HasTarget = t, true
		}
	}
	if d.Mode == syscall.S_IFLNK {
		readLink()
	}
	var st unix.Stat_t
	b.ops[op.Getattr].Add(1)
	if err := osutil.RetryEINTR(func() error { return unix.Fstatat(dir, d.Name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return e, osutil.Errno(err)
	}
	e.Attr = attrOf(&st)
	switch {
	case !e.Attr.IsSymlink():
		e.Target, e.HasTarget = "", false // replaced by another file since getdents
	case d.Mode != syscall.S_IFLNK:
		readLink() // DT_UNKNOWN, or replaced by a link since getdents
	}
	return e, 0
}

// ParseDirents decodes linux_dirent64 records, skipping "." and "..".
// DT_UNKNOWN entries get Mode 0.
func ParseDirents(buf []byte, out []op.DirEntry) ([]op.DirEntry, error) {
	for len(buf) > 0 {
		const hdr = 19 // ino u64, off i64, reclen u16, type u8
		if len(buf) < hdr {
			return out, errors.New("dirent: truncated header")
		}
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen < hdr+1 || reclen > len(buf) {
			return out, errors.New("dirent: bad record length")
		}
		ino := binary.NativeEndian.Uint64(buf[0:8])
		typ := buf[18]
		name := buf[hdr:reclen]
		if i := indexNUL(name); i >= 0 {
			name = name[:i]
		}
		buf = buf[reclen:]
		if len(name) == 0 {
			return out, errors.New("dirent: empty name")
		}
		if s := string(name); s != "." && s != ".." {
			out = append(out, op.DirEntry{Name: s, Mode: dtToMode(typ), Ino: ino})
		}
	}
	return out, nil
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

func dtToMode(t uint8) uint32 {
	switch t {
	case unix.DT_REG:
		return syscall.S_IFREG
	case unix.DT_DIR:
		return syscall.S_IFDIR
	case unix.DT_LNK:
		return syscall.S_IFLNK
	case unix.DT_CHR:
		return syscall.S_IFCHR
	case unix.DT_BLK:
		return syscall.S_IFBLK
	case unix.DT_FIFO:
		return syscall.S_IFIFO
	case unix.DT_SOCK:
		return syscall.S_IFSOCK
	}
	return 0
}

// maxReadAttempts bounds re-reads of a file that keeps changing under us.
const maxReadAttempts = 5

// readWhole reads a regular file completely. If the file's size or times
// change between the stat before and after the read, it reads again: a
// torn copy would be cached by the whole tree.
func (b *Backend) readWhole(root int, view string) op.Result {
	if view == "/" {
		return op.Fail(syscall.EISDIR)
	}
	dir, name, done, err := b.parent(root, view)
	if err != nil {
		return op.Fail(osutil.Errno(err))
	}
	defer done()
	for attempt := 0; attempt < maxReadAttempts; attempt++ {
		r, stable := readOnce(dir, name, b.maxCacheable)
		if stable {
			return r
		}
	}
	return b.eio(op.Read, view, fmt.Errorf("the file kept changing during %d reads", maxReadAttempts))
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

// readable answers the errno for a file that must not be opened: a
// symlink (ELOOP, as openat2 answers), a directory, anything not regular
// (a FIFO would block the open, opening a device can act on it), or a
// file over the limit.
func readable(st *unix.Stat_t, limit int64) syscall.Errno {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return syscall.ELOOP
	case unix.S_IFDIR:
		return syscall.EISDIR
	default:
		return syscall.EINVAL
	}
	if st.Size > limit {
		return syscall.EFBIG
	}
	return 0
}

func readOnce(dir int, name string, limit int64) (op.Result, bool) {
	var before unix.Stat_t
	if err := osutil.RetryEINTR(func() error { return unix.Fstatat(dir, name, &before, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return op.Fail(osutil.Errno(err)), true
	}
	if errno := readable(&before, limit); errno != 0 {
		return op.Fail(errno), true
	}
	// O_NONBLOCK and O_NOCTTY: if a FIFO or device replaced the file since
	// the stat, the open neither blocks nor acquires it.
	fd, err := openNoFollow(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return op.Fail(osutil.Errno(err)), true
	}
	defer unix.Close(fd)
	if err := osutil.RetryEINTR(func() error { return unix.Fstat(fd, &before) }); err != nil {
		return op.Fail(osutil.Errno(err)), true
	}
	if errno := readable(&before, limit); errno != 0 {
		return op.Fail(errno), true
	}
	// Reads of a regular file ignore O_NONBLOCK on local filesystems; a
	// network or FUSE backing filesystem might not.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, 0); err != nil {
		return op.Fail(osutil.Errno(err)), true
	}
	// One byte more than the size tells a file that grew.
	data := make([]byte, before.Size+1)
	n, err := readFull(fd, data)
	if err != nil {
		return op.Fail(osutil.Errno(err)), true
	}
	var after unix.Stat_t
	if err := osutil.RetryEINTR(func() error { return unix.Fstat(fd, &after) }); err != nil {
		return op.Fail(osutil.Errno(err)), true
	}
	if int64(n) != before.Size || after.Size != before.Size ||
		after.Mtim != before.Mtim || after.Ctim != before.Ctim {
		return op.Result{}, false
	}
	return op.Result{Attr: attrOf(&after), Data: data[:n:n]}, true
}

// readFull reads until buf is full or end of file.
func readFull(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		var m int
		err := osutil.RetryEINTR(func() (err error) { m, err = unix.Read(fd, buf[n:]); return err })
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}
