package spill

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/internal/osutil"
)

// lockName is the file in a run directory that its store holds an
// exclusive flock on for as long as it is open: a run directory whose
// lock can be taken belongs to a run that ended (killed, crashed)
// without removing it. flock works across processes and PID
// namespaces, so a live run of another job is never taken for a dead
// one. It is created under another name and renamed once locked, so a
// sweep never finds it unlocked in between.
const lockName = ".lock"

// lockRunDir creates and flocks dir's lock file.
func lockRunDir(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".locking-*")
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, lockName)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// noLockGrace is how old a run directory without a lock file must be
// for a sweep to remove it. A store locks its directory right after
// making it, so one without a lock for this long is of a run killed in
// between, never of a live one.
const noLockGrace = 10 * time.Minute

// sweep removes the run directories in base, other than ours, that we
// own and whose lock file can be locked (their store is gone) or that
// have had no lock file for noLockGrace; it returns how many it
// removed. Anything else (a lock held, a young directory without one,
// another owner, a symlink) is left alone.
func sweep(base, ours string) int {
	entries, err := os.ReadDir(base)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		if !strings.HasPrefix(e.Name(), "run-") || dir == ours {
			continue
		}
		var st syscall.Stat_t
		if syscall.Lstat(dir, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR || int(st.Uid) != os.Geteuid() {
			continue
		}
		fd, err := syscall.Open(filepath.Join(dir, lockName), syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err == syscall.ENOENT {
			if time.Since(time.Unix(st.Mtim.Unix())) > noLockGrace && os.RemoveAll(dir) == nil {
				n++
			}
			continue
		}
		if err != nil {
			continue
		}
		if syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) == nil && os.RemoveAll(dir) == nil {
			n++
		}
		_ = syscall.Close(fd)
	}
	return n
}

// makeRunDir makes base (0700) if missing, checks that it is a directory
// that we own and that no one else can write, nor any directory above it
// (another user could swap our run directory for a link otherwise), and
// makes this run's private directory in it.
func makeRunDir(base string) (string, *os.File, error) {
	if !filepath.IsAbs(base) {
		return "", nil, errors.New("not an absolute path")
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(base, &st); err != nil {
		return "", nil, err
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
		return "", nil, errors.New("not a directory (or a symbolic link)")
	case int(st.Uid) != os.Geteuid():
		return "", nil, fmt.Errorf("owned by uid %d, not by us (uid %d)", st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		return "", nil, fmt.Errorf("writable by others (mode %#o)", st.Mode&0o777)
	}
	// The directories above too: the owner of one could swap base for a
	// directory of links, and chunk writes would land in your files.
	if err := osutil.CheckPath(base, os.Geteuid(), osutil.TrustSelf); err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(base, fmt.Sprintf("run-%d-", os.Getpid()))
	if err != nil {
		return "", nil, err
	}
	lock, err := lockRunDir(dir)
	if err == nil {
		err = os.Chmod(dir, 0o700)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, lock, nil
}

// writeAt writes data at off of the existing file name, buffered.
func writeAt(name string, off int64, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	if _, err = f.WriteAt(data, off); err == nil {
		return f.Close()
	}
	_ = f.Close()
	return err
}
