package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/internal/osutil"
)

// resolveFlags make openat2 refuse, in every component, a symlink and a
// /proc magic link, and any path leaving the directory it starts from.
// RESOLVE_NO_XDEV is deliberately absent: sites mount software trees
// below a target, and the view shows them as the host does.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// maxEAGAIN bounds openat2 retries: the kernel answers EAGAIN when a
// rename or mount raced with a RESOLVE_BENEATH lookup.
const maxEAGAIN = 16

// openat2Func is unix.Openat2's signature; tests stand in a kernel
// without it.
type openat2Func func(dirfd int, path string, how *unix.OpenHow) (int, error)

// resolver opens a path beneath a directory fd without following any
// symlink: with openat2 when the kernel has it (5.6+), else by an openat
// walk, one O_NOFOLLOW component at a time, that answers the same errnos.
type resolver struct {
	openat2 openat2Func // nil: walk
}

// open opens rel (relative and clean; "." is dir itself) beneath dir.
// O_CLOEXEC is added. A symlink in any component answers ELOOP.
func (rs resolver) open(dir int, rel string, flags int) (int, error) {
	flags |= unix.O_CLOEXEC
	if rs.openat2 == nil {
		return walk(dir, rel, flags)
	}
	how := unix.OpenHow{Flags: uint64(flags), Resolve: resolveFlags}
	for try := 0; ; try++ {
		fd, err := rs.openat2(dir, rel, &how)
		switch {
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN) && try < maxEAGAIN:
		default:
			return fd, err
		}
	}
}

// walk is openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) for kernels
// without it: each intermediate component is opened O_PATH|O_DIRECTORY|
// O_NOFOLLOW from the previous one, so no symlink is ever followed and
// mount points are crossed as openat2 crosses them.
func walk(root int, rel string, flags int) (int, error) {
	dir := root
	defer func() {
		if dir != root {
			_ = unix.Close(dir)
		}
	}()
	for {
		name, rest, more := strings.Cut(rel, "/")
		if name == ".." {
			// CheckPath never lets one through; openat2 refuses one that
			// leaves the start directory with EXDEV.
			return -1, unix.EXDEV
		}
		if !more {
			return openNoFollow(dir, name, flags|unix.O_NOFOLLOW)
		}
		next, err := openNoFollow(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
		if err != nil {
			return -1, err
		}
		if dir != root {
			_ = unix.Close(dir)
		}
		dir, rel = next, rest
	}
}

// openNoFollow opens one name in dir. O_NOFOLLOW with O_DIRECTORY answers
// ENOTDIR for a symlink; it becomes ELOOP, as openat2 answers.
func openNoFollow(dir int, name string, flags int) (int, error) {
	var fd int
	err := osutil.RetryEINTR(func() (err error) { fd, err = unix.Openat(dir, name, flags, 0); return err })
	if errors.Is(err, unix.ENOTDIR) && flags&unix.O_DIRECTORY != 0 {
		var st unix.Stat_t
		if osutil.RetryEINTR(func() error { return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) }) == nil &&
			st.Mode&unix.S_IFMT == unix.S_IFLNK {
			err = unix.ELOOP
		}
	}
	return fd, err
}

// probeOpenat2 tells whether the kernel has openat2: ENOSYS before 5.6,
// EPERM under seccomp profiles that predate it.
func probeOpenat2(root int, openat2 openat2Func, target string) (bool, error) {
	fd, err := resolver{openat2: openat2}.open(root, ".", unix.O_PATH|unix.O_DIRECTORY)
	switch {
	case err == nil:
		_ = unix.Close(fd)
		return true, nil
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
		return false, nil
	}
	return false, fmt.Errorf("target %s: openat2: %w", target, err)
}

// CheckTarget reports, naming the path, why target cannot be exported:
// not absolute and clean, missing, or not a directory (a regular file, a
// symlink to one). Symlinks in target itself are followed: it is the
// administrator's spelling; only what lies beneath it is not.
func CheckTarget(target string) error {
	fd, err := openTarget(target)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// openTarget opens target O_PATH|O_DIRECTORY: every backend lookup starts
// from this fd, never from the path again.
func openTarget(target string) (int, error) {
	if target == "" || !filepath.IsAbs(target) || filepath.Clean(target) != target {
		return -1, fmt.Errorf("target %q: must be an absolute, clean path", target)
	}
	var fd int
	err := osutil.RetryEINTR(func() (err error) {
		fd, err = unix.Open(target, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err == nil {
		return fd, nil
	}
	if errors.Is(err, unix.ENOTDIR) {
		if to, lerr := os.Readlink(target); lerr == nil {
			return -1, fmt.Errorf("target %s (a symlink to %s): %w", target, to, err)
		}
	}
	return -1, fmt.Errorf("target %s: %w", target, err)
}

// OpenBeneath opens the view path view (absolute and clean) beneath
// target with flags, following no symlink in any component below target
// (ELOOP), as the backend's own lookups do: for callers outside a
// Backend, such as a mount reading a large file straight from the host,
// where a name swapped for a symlink must not lead anywhere else. The
// descriptor is O_CLOEXEC.
func OpenBeneath(target, view string, flags int) (int, error) {
	root, err := openTarget(target)
	if err != nil {
		return -1, err
	}
	defer unix.Close(root)
	rel := "."
	if view != "/" {
		rel = strings.TrimPrefix(view, "/")
	}
	rs := resolver{openat2: unix.Openat2}
	if has, err := probeOpenat2(root, unix.Openat2, target); err != nil {
		return -1, err
	} else if !has {
		rs.openat2 = nil
	}
	return rs.open(root, rel, flags)
}
