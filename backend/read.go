package backend

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/op"
)

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
	return readOpen(dir, name, limit)
}

// readOpen is readOnce after its first stat: open name, check what was
// opened, read it whole and check it did not change meanwhile (stable
// false: it did, read again). A dirplus calls it after its own stat.
func readOpen(dir int, name string, limit int64) (op.Result, bool) {
	var before unix.Stat_t
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
