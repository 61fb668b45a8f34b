package control

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFDEnv names the environment variable by which a process holding a
// mount's lock hands it to a process it starts: the number of the
// inherited file descriptor.
const LockFDEnv = "COPPER_MOUNT_LOCK_FD"

// Lock is the exclusive claim on one mount: flock(2) on a file in the
// runtime directory named after the mount. The kernel ties the lock to
// the open file, which a starting process passes on to the node it
// starts, so the claim runs from the launcher's first check to the
// node's exit, and a holder that dies (even by SIGKILL) frees it: no
// stale pid file to judge, no window between "check" and "start". The
// file goes with the last holder (lockfile.go).
type Lock struct {
	f     *os.File
	mount string
	path  string
}

// pidWidth is the fixed size of the pid record in a lock file: written
// in place, so that a reader never sees it half rewritten or empty.
const pidWidth = 16

// LockPath names the lock file of mount.
func LockPath(mount string) (string, error) {
	return runtimePath(mount, ".lock")
}

// BusyError says another live process holds a mount's lock.
type BusyError struct {
	Mount string
	Path  string // the lock file
	PID   int    // the holder that last claimed it; 0 when unknown
}

func (e *BusyError) Error() string {
	how := fmt.Sprintf("stop it first with copper-launch stop and the same --mount and --local or --rank, or copper-node stop --mount %s", e.Mount)
	if e.PID <= 0 {
		return fmt.Sprintf("mount %s is already claimed by another copper process (lock %s is held); %s", e.Mount, e.Path, how)
	}
	switch name := processName(e.PID); name {
	case "copper-node":
		return fmt.Sprintf("mount %s is already served by copper-node pid %d; %s", e.Mount, e.PID, how)
	case "copper-launch":
		return fmt.Sprintf("mount %s is being started by copper-launch pid %d (lock %s)", e.Mount, e.PID, e.Path)
	case "":
		return fmt.Sprintf("mount %s is already claimed (lock %s is held; pid %d, which claimed it last, is gone); %s", e.Mount, e.Path, e.PID, how)
	default:
		return fmt.Sprintf("mount %s is already claimed by %s pid %d (lock %s); %s", e.Mount, name, e.PID, e.Path, how)
	}
}

// LockMount takes mount's lock without waiting, creating the runtime
// directory if needed, and records this process as the holder. A lock
// held by a live process is a *BusyError.
func LockMount(mount string) (*Lock, error) {
	if _, err := MakeRuntimeDir(); err != nil {
		return nil, err
	}
	path, err := LockPath(mount)
	if err != nil {
		return nil, err
	}
	f, err := LockFile(path)
	if err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &BusyError{Mount: mount, Path: path, PID: readPID(path)}
		}
		return nil, fmt.Errorf("mount %s: lock %s: %w", mount, path, err)
	}
	l := &Lock{f: f, mount: mount, path: path}
	if err := l.Claim(); err != nil {
		l.Close()
		return nil, err
	}
	SweepLocks(path) // those of holders killed before they removed theirs
	return l, nil
}

// LockFromEnv adopts the lock of mount handed down through LockFDEnv.
// ok is false when none was handed down.
func LockFromEnv(mount string) (l *Lock, ok bool, err error) {
	v := os.Getenv(LockFDEnv)
	if v == "" {
		return nil, false, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, true, fmt.Errorf("%s=%q: want an inherited file descriptor ≥ 3", LockFDEnv, v)
	}
	l, err = adopt(os.NewFile(uintptr(fd), "mount-lock"), mount)
	if err != nil {
		return nil, true, fmt.Errorf("%s=%d: %w", LockFDEnv, fd, err)
	}
	return l, true, nil
}

// adopt checks that f is mount's lock file and that it holds the lock:
// flock on the same open file is a no-op for its holders, and fails for
// anyone else while a holder lives.
func adopt(f *os.File, mount string) (*Lock, error) {
	path, err := LockPath(mount)
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := CheckRuntimeDir(); err != nil {
		f.Close()
		return nil, err
	}
	var have, want unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &have); err != nil {
		f.Close()
		return nil, fmt.Errorf("mount %s: inherited lock: %w", mount, err)
	}
	if err := unix.Stat(path, &want); err != nil || have.Dev != want.Dev || have.Ino != want.Ino {
		f.Close()
		return nil, fmt.Errorf("mount %s: the inherited file is not its lock %s", mount, path)
	}
	if err := flockNB(f); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &BusyError{Mount: mount, Path: path, PID: readPID(path)}
		}
		return nil, fmt.Errorf("mount %s: lock %s: %w", mount, path, err)
	}
	return &Lock{f: f, mount: mount, path: path}, nil
}

// File is the open lock file, to hand to a child (exec.Cmd.ExtraFiles).
func (l *Lock) File() *os.File { return l.f }

// Path is the lock file.
func (l *Lock) Path() string { return l.path }

// Claim records this process as the holder, for the messages of those
// who find the mount taken.
func (l *Lock) Claim() error {
	rec := fmt.Sprintf("%-*d\n", pidWidth-1, os.Getpid())
	if _, err := l.f.WriteAt([]byte(rec), 0); err != nil {
		return fmt.Errorf("mount %s: lock %s: %w", l.mount, l.path, err)
	}
	return nil
}

// Close closes this process's copy. It never unlocks explicitly: a child
// it was handed to shares the lock, which ends only when the last copy
// is closed. The last holder to close (the node at its exit, or a
// launcher whose node never took over) removes the lock file.
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := ReleaseFile(l.f, l.path)
	l.f = nil
	return err
}

// Holder reports whether a live process holds mount's lock and which pid
// claimed it last (0 when unknown). It probes by trying the lock, so a
// start racing with it may find the mount busy for that instant.
func Holder(mount string) (pid int, held bool, err error) {
	path, err := LockPath(mount)
	if err != nil {
		return 0, false, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("mount %s: lock file: %w", mount, err)
	}
	defer f.Close() // releases the probe's lock, if it got it
	switch err := flockNB(f); {
	case err == nil:
		return 0, false, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return readPID(path), true, nil
	default:
		return 0, false, fmt.Errorf("mount %s: lock %s: %w", mount, path, err)
	}
}

func flockNB(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// readPID reads the holder's pid from a lock file; 0 when unreadable.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// processName is pid's command name, "" when it is not running.
func processName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// WithLockFD returns env with LockFDEnv set to fd, for a child that
// inherits the lock as that descriptor; any other value is dropped.
func WithLockFD(env []string, fd int) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, LockFDEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(out, LockFDEnv+"="+strconv.Itoa(fd))
}
