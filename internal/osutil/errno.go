package osutil

import (
	"errors"
	"syscall"
)

// Errno extracts the errno of an error from the os or syscall packages:
// 0 for nil, EIO for an error that carries none.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}

// RetryEINTR repeats a system call the kernel interrupted. The Go runtime
// signals its own threads (SIGURG for preemption); when the backing
// filesystem is itself a network or FUSE filesystem, such a signal can
// interrupt an open, a stat or a getdents, and an EINTR answer would
// travel the tree as if the file were broken. (os.File calls retry on
// their own; raw syscall and unix calls do not.)
func RetryEINTR(call func() error) error {
	for {
		if err := call(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
