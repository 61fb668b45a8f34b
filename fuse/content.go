package fuse

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/op"
)

// Content is the bytes of one open file. The kernel may issue several
// Reads at once; Release comes after the last one has returned.
type Content interface {
	Read(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno)
	Release() syscall.Errno
}

// ContentProvider opens the content of a regular file of the view.
// attr is the file's attributes as the Source reported them.
type ContentProvider interface {
	Open(ctx context.Context, viewPath string, attr op.Attr) (Content, syscall.Errno)
}

// DirectFiles reads files straight from Target+path on this node, as
// Copper 1.0 does for files too large to cache.
type DirectFiles struct{ Target string }

// Open opens the host file read-only. O_NOFOLLOW: the view saw a regular
// file at this path, so a symlink there now is a race, not a file.
func (d DirectFiles) Open(_ context.Context, viewPath string, _ op.Attr) (Content, syscall.Errno) {
	host := filepath.Join(d.Target, viewPath)
	fd, err := syscall.Open(host, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, errnoOf(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		_ = syscall.Close(fd)
		return nil, errnoOf(err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		_ = syscall.Close(fd)
		return nil, syscall.EIO // the host path changed type under the view
	}
	return directContent{fd: fd}, 0
}

type directContent struct{ fd int }

// Read lets go-fuse splice from the host file when it can, so large
// reads are not copied through this process.
func (c directContent) Read(_ context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	return gofuse.ReadResultFd(uintptr(c.fd), off, len(dest)), 0
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
	return gofuse.ReadResultData(c.data[off:end]), 0
}

func (memoryContent) Release() syscall.Errno { return 0 }

// errnoOf extracts the errno of a syscall error; anything else is EIO.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}
