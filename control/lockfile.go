package control

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Lock files are removed when their last holder lets go, so that the
// runtime directory does not fill with one per mount and job directory
// ever used. flock(2) locks the inode, not the name, so removal follows
// the usual protocol: only a process holding the lock unlinks the file,
// and every locker, once its flock succeeds, checks that the path still
// names the inode it locked, else it holds an orphan and tries again.

const (
	// busyAttempts bounds a locker's tries of a held file: it may be held
	// for an instant by a process removing it, or probing it (Holder).
	busyAttempts = 8
	// lockRetryPause is the wait before trying a held file again: a
	// remover holds it for an fstat, a stat and an unlink.
	lockRetryPause = 5 * time.Millisecond
	// goneAttempts bounds a locker's tries when the file it locked was
	// removed first: each time another process found it free and removed
	// it, so one of them gets it soon.
	goneAttempts = 100
	// sweepBound bounds the lock files one sweep tries.
	sweepBound = 32
)

// LockFile opens (creating it 0600) the lock file at path and takes its
// exclusive flock without waiting. A file held by another process is an
// error wrapping unix.EWOULDBLOCK.
func LockFile(path string) (*os.File, error) {
	busy, gone := 0, 0
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return nil, err
		}
		err = flockNB(f)
		named := namesFile(path, f)
		if err == nil && named {
			return f, nil
		}
		f.Close()
		switch {
		case err != nil && !errors.Is(err, unix.EWOULDBLOCK):
			return nil, err
		case err != nil && named: // held: by its owner, or for an instant
			if busy++; busy >= busyAttempts {
				return nil, err
			}
			time.Sleep(lockRetryPause)
		default: // an orphan, removed before or after this flock
			if gone++; gone >= goneAttempts {
				return nil, fmt.Errorf("lock %s: removed under this process %d times in a row", path, gone)
			}
		}
	}
}

// namesFile reports whether path still names f's inode.
func namesFile(path string, f *os.File) bool {
	var have, want unix.Stat_t
	if unix.Fstat(int(f.Fd()), &have) != nil || unix.Lstat(path, &want) != nil {
		return false
	}
	return have.Dev == want.Dev && have.Ino == want.Ino
}

// ReleaseFile closes this process's copy of the lock file f, opened at
// path, and removes the file if nobody holds it any more. A copy shared
// with a child (an inherited descriptor) keeps the lock held, so only
// the last holder to let go removes it, whoever that is.
func ReleaseFile(f *os.File, path string) error {
	err := f.Close()
	removeIfFree(path)
	return err
}

// removeIfFree removes the lock file at path if its flock can be taken
// without waiting and path still names the inode locked, and reports
// whether it did.
func removeIfFree(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close() // after the unlink: the lock is held across it
	if flockNB(f) != nil || !namesFile(path, f) {
		return false
	}
	return os.Remove(path) == nil
}

// SweepLocks removes lock files (mount locks ctl-*.lock, job directory
// locks job-*.lock) in the runtime directory that nobody holds: those of
// holders killed before they could remove them. It tries at most
// sweepBound files, from a random place, so that held ones never starve
// the rest; keep (the caller's own) is left alone. It returns how many
// it removed.
func SweepLocks(keep string) int {
	dir := RuntimeDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, ".lock") && (strings.HasPrefix(n, "ctl-") || strings.HasPrefix(n, "job-")) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return 0
	}
	start, removed := rand.IntN(len(names)), 0
	for i := range min(len(names), sweepBound) {
		p := filepath.Join(dir, names[(start+i)%len(names)])
		if p != keep && removeIfFree(p) {
			removed++
		}
	}
	return removed
}
