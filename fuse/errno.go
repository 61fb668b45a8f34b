package fuse

import (
	"syscall"

	"github.com/hpc-copper/copper/internal/osutil"
)

// errnoOf is the errno the kernel gets for err (osutil.Errno: 0 for nil,
// EIO for an error without one).
func errnoOf(err error) syscall.Errno { return osutil.Errno(err) }
