// Package backend answers copper operations from the backing filesystem.
// Only a tree's root uses it for the distributed operations, so it is the
// one place where copper touches the parallel filesystem: every call is
// bounded by a semaphore and counted.
package backend

import (
	"context"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/op"
)

// Backend reads Target on this host.
type Backend struct {
	target       string
	guard        []string
	maxCacheable int64
	slots        chan struct{}
	ops          [len(op.All) + 1]atomic.Int64
}

// Config describes a backend.
type Config struct {
	Target       string   // absolute, clean host directory shown at the view root
	Parallel     int      // concurrent backend operations (>= 1)
	MaxCacheable int64    // Read of a larger file answers EFBIG
	Guard        []string // host path prefixes answered ENOENT (copper mounts: never recurse into them)
}

// New returns a backend for cfg.
func New(cfg Config) *Backend {
	if cfg.Parallel < 1 {
		cfg.Parallel = 1
	}
	return &Backend{
		target:       cfg.Target,
		guard:        cfg.Guard,
		maxCacheable: cfg.MaxCacheable,
		slots:        make(chan struct{}, cfg.Parallel),
	}
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
// itself (Copper 1.0 semantics).
func (b *Backend) Do(ctx context.Context, o op.Op, view string) op.Result {
	if errno := op.CheckPath(view); errno != 0 {
		return op.Fail(errno)
	}
	host := HostPath(b.target, view)
	if Guarded(host, b.guard) {
		return op.Fail(syscall.ENOENT)
	}
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return op.Fail(syscall.EINTR)
	}
	defer func() { <-b.slots }()
	if o.Valid() {
		b.ops[o].Add(1)
	}
	switch o {
	case op.Getattr:
		return lstat(host)
	case op.Readdir:
		return readdir(host)
	case op.Readlink:
		return readlink(host)
	case op.Read:
		return readWhole(host, b.maxCacheable)
	}
	return op.Fail(syscall.ENOSYS)
}

func lstat(host string) op.Result {
	var st syscall.Stat_t
	if err := retryEINTR(func() error { return syscall.Lstat(host, &st) }); err != nil {
		return op.Fail(Errno(err))
	}
	return op.Result{Attr: op.AttrFromStat(&st)}
}

func readlink(host string) op.Result {
	for size := 256; size <= op.MaxPathLen*2; size *= 2 {
		buf := make([]byte, size)
		var n int
		err := retryEINTR(func() (err error) { n, err = unix.Readlink(host, buf); return err })
		if err != nil {
			return op.Fail(Errno(err))
		}
		if n < size {
			return op.Result{Target: string(buf[:n])}
		}
	}
	return op.Fail(syscall.ENAMETOOLONG)
}

func readdir(host string) op.Result {
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = unix.Open(host, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		return err
	})
	if err != nil {
		return op.Fail(Errno(err))
	}
	defer unix.Close(fd)
	var entries []op.DirEntry
	buf := make([]byte, 32<<10)
	for {
		var n int
		err := retryEINTR(func() (err error) { n, err = unix.Getdents(fd, buf); return err })
		if err != nil {
			return op.Fail(Errno(err))
		}
		if n <= 0 {
			break
		}
		entries, err = ParseDirents(buf[:n], entries)
		if err != nil {
			return op.Fail(syscall.EIO)
		}
	}
	// Some filesystems (and Lustre under some settings) report DT_UNKNOWN.
	for i := range entries {
		if entries[i].Mode == 0 {
			var st syscall.Stat_t
			if err := retryEINTR(func() error { return syscall.Lstat(host+"/"+entries[i].Name, &st) }); err == nil {
				entries[i].Mode = st.Mode & syscall.S_IFMT
			}
		}
	}
	return op.Result{Entries: entries}
}

// ParseDirents decodes linux_dirent64 records, skipping "." and "..".
// DT_UNKNOWN entries get Mode 0.
func ParseDirents(buf []byte, out []op.DirEntry) ([]op.DirEntry, error) {
	for len(buf) > 0 {
		const hdr = 19 // ino u64, off i64, reclen u16, type u8
		if len(buf) < hdr {
			return out, errors.New("dirent: truncated header")
		}
		reclen := int(nativeU16(buf[16:18]))
		if reclen < hdr+1 || reclen > len(buf) {
			return out, errors.New("dirent: bad record length")
		}
		ino := nativeU64(buf[0:8])
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
func readWhole(host string, limit int64) op.Result {
	for attempt := 0; attempt < maxReadAttempts; attempt++ {
		r, stable := readOnce(host, limit)
		if stable {
			return r
		}
	}
	return op.Fail(syscall.EIO)
}

func readOnce(host string, limit int64) (op.Result, bool) {
	f, err := os.OpenFile(host, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return op.Fail(Errno(err)), true
	}
	defer f.Close()
	var before syscall.Stat_t
	if err := retryEINTR(func() error { return syscall.Fstat(int(f.Fd()), &before) }); err != nil {
		return op.Fail(Errno(err)), true
	}
	if before.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return op.Fail(syscall.EISDIR), true
	}
	if before.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return op.Fail(syscall.EINVAL), true
	}
	if before.Size > limit {
		return op.Fail(syscall.EFBIG), true
	}
	// One byte more than the size tells a file that grew.
	data := make([]byte, before.Size+1)
	n, err := io.ReadFull(f, data)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return op.Fail(Errno(err)), true
	}
	var after syscall.Stat_t
	if err := retryEINTR(func() error { return syscall.Fstat(int(f.Fd()), &after) }); err != nil {
		return op.Fail(Errno(err)), true
	}
	if int64(n) != before.Size || after.Size != before.Size ||
		after.Mtim != before.Mtim || after.Ctim != before.Ctim {
		return op.Result{}, false
	}
	return op.Result{Attr: op.AttrFromStat(&after), Data: data[:n:n]}, true
}

// Errno extracts the errno from an error of the os or syscall packages;
// anything else is EIO.
func Errno(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}

// retryEINTR repeats a system call the kernel interrupted. The Go runtime
// signals its own threads (SIGURG for preemption); when the backing
// filesystem is itself a network or FUSE filesystem, such a signal can
// interrupt a stat or getdents, and an EINTR answer would travel the tree
// as if the file were broken. (os.File reads retry on their own.)
func retryEINTR(call func() error) error {
	for {
		if err := call(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
