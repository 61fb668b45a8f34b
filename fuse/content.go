package fuse

import (
	"context"
	"path/filepath"
	"syscall"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/op"
)

// Content is the bytes of one open file. The kernel may issue several
// Reads at once; Release comes after the last one has returned.
type Content interface {
	Read(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno)
	Release() syscall.Errno
}

// ContentProvider opens the content of a regular file of the view.
// attr is the file's attributes as the Source reported them: the version
// the view's inode stands for. Open answers ESTALE when the file it
// finds is another version, and the Content's Read answers ESTALE when
// the bytes it would return are not of the version it opened; the view
// never serves them (see filesystem.stale).
type ContentProvider interface {
	Open(ctx context.Context, viewPath string, attr op.Attr) (Content, syscall.Errno)
}

// VersionChecker is what a ContentProvider can offer to tell, more
// cheaply than an Open, whether viewPath still holds attr's version:
// 0 if it does, ESTALE if it holds another file or none, or the errno
// that kept it from looking. A no-open mount asks it at every lookup of
// a large file whose view inode already holds content (see pinLarge).
type VersionChecker interface {
	Check(ctx context.Context, viewPath string, attr op.Attr) syscall.Errno
}

// DirectFiles reads files straight from Target+path on this node, as
// Copper 1.0 does for files too large to cache, and counts what it reads
// in Reads (nil: not counted).
type DirectFiles struct {
	Target string
	Reads  *DirectReads
}

// Check lstats the host file: what an Open would find, without opening
// it (on a parallel file system, an open and a close are two metadata
// requests, a stat one at most).
func (d DirectFiles) Check(_ context.Context, viewPath string, attr op.Attr) syscall.Errno {
	var st syscall.Stat_t
	if err := osutil.RetryEINTR(func() error { return syscall.Lstat(filepath.Join(d.Target, viewPath), &st) }); err != nil {
		if errno := errnoOf(err); !goneErrno(errno) {
			return errno
		}
		return syscall.ESTALE
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || !versionOfStat(&st).sameBytes(versionOf(attr)) {
		return syscall.ESTALE
	}
	return 0
}

// Open opens the host file read-only and keeps the descriptor, so the
// content stays the version it opened even if another file is renamed
// over the path. O_NOFOLLOW: the view saw a regular file at this path,
// so a symlink there now is a change, not a file.
func (d DirectFiles) Open(_ context.Context, viewPath string, attr op.Attr) (Content, syscall.Errno) {
	// Beneath the target, no symlink in any component: a name on the
	// way swapped for a symlink after the view was built answers ELOOP
	// instead of opening a file outside the target (allow_other mounts
	// serve other users). O_NONBLOCK: a FIFO swapped in for the file
	// must not block the daemon in open (the type check refuses it).
	fd, err := backend.OpenBeneath(d.Target, viewPath, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK)
	if err != nil {
		if errno := errnoOf(err); !goneErrno(errno) {
			return nil, errno
		}
		return nil, syscall.ESTALE // the file the view holds is gone
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		_ = syscall.Close(fd)
		return nil, errnoOf(err)
	}
	want := versionOf(attr)
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || !versionOfStat(&st).sameBytes(want) {
		_ = syscall.Close(fd)
		return nil, syscall.ESTALE
	}
	return directContent{fd: fd, want: want, nlink: st.Nlink, reads: d.Reads, counted: d.Reads.opened(viewPath, st.Size)}, 0
}

// directContent reads one version of a host file through the descriptor
// opened for it.
type directContent struct {
	fd      int
	want    version
	nlink   uint64 // at open
	reads   *DirectReads
	counted *directFile
}

// Read reads into dest and then checks, with fstat, that the file is
// still the version opened: a write in place after the open moves its
// mtime and ctime, and those bytes are never served. A rename over the
// name or a removed link moves ctime too, but also the link count, and
// leaves the bytes alone: ctime counts only while the link count is the
// one seen at open. The check costs the zero-copy splice go-fuse could
// do from the descriptor, and one fstat per read. The read is whole up
// to the end of the file: the kernel takes a short read for the end.
func (c directContent) Read(_ context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if off < 0 {
		return nil, syscall.EINVAL
	}
	n := 0
	for n < len(dest) {
		m, err := syscall.Pread(c.fd, dest[n:], off+int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, errnoOf(err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(c.fd, &st); err != nil {
		return nil, errnoOf(err)
	}
	now := versionOfStat(&st)
	if st.Nlink != c.nlink {
		now.ctimeNs = c.want.ctimeNs
	}
	if !now.sameBytes(c.want) {
		return nil, syscall.ESTALE
	}
	c.reads.read(c.counted, n)
	return bytesResult(dest[:n]), 0
}

func (c directContent) Release() syscall.Errno { return errnoOf(syscall.Close(c.fd)) }

// memoryContent serves a whole file fetched once per open from the
// Source; every read is a slice of it.
type memoryContent struct{ data []byte }

func (c memoryContent) Read(_ context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= int64(len(c.data)) {
		return gofuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(c.data)))
	return bytesResult(c.data[off:end]), 0
}

func (memoryContent) Release() syscall.Errno { return 0 }

// bytesResult answers a read with b, written to /dev/fuse by one writev.
// go-fuse's ReadResultData would first try to splice it: a pipe taken from
// a global pool, a writev of the reply's header into it, then (b being no
// file) a give-up and a drain of the pipe (splice to /dev/null, FIONREAD):
// three system calls and a lock wasted on every read reply before the
// real writev. A result with Slices (go-fuse's withSlice) skips the splice
// attempt; bytesReply is ReadResultVector's one-slice case in one
// allocation instead of two.
func bytesResult(b []byte) gofuse.ReadResult {
	return &bytesReply{vec: [1][]byte{b}}
}

type bytesReply struct{ vec [1][]byte }

func (r *bytesReply) Size() int { return len(r.vec[0]) }

func (r *bytesReply) Done() {}

func (r *bytesReply) Bytes(buf []byte) ([]byte, gofuse.Status) {
	return append(buf[:0], r.vec[0]...), gofuse.OK
}

// Slices is go-fuse's withSlice: the reply goes out by writev from b.
func (r *bytesReply) Slices() ([][]byte, gofuse.Status) { return r.vec[:], gofuse.OK }
