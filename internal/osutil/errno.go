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
