package control

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/hpc-copper/copper/internal/osutil"
)

// RuntimeDir is where control sockets, mount locks and the launcher's
// private book and token copies live: $XDG_RUNTIME_DIR/copper, or
// /tmp/copper-<uid>/run. Use MakeRuntimeDir or CheckRuntimeDir before
// trusting anything in it.
func RuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "copper")
	}
	return filepath.Join(os.TempDir(), "copper-"+strconv.Itoa(os.Getuid()), "run")
}

// ownedDirs are the directories copper creates for the runtime directory
// and so must own alone, outermost first. $XDG_RUNTIME_DIR itself is the
// session's (systemd makes it 0700); /tmp/copper-<uid> is a predictable
// name in a shared directory that anyone could have created first.
func ownedDirs() []string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return []string{filepath.Join(d, "copper")}
	}
	base := filepath.Join(os.TempDir(), "copper-"+strconv.Itoa(os.Getuid()))
	return []string{base, filepath.Join(base, "run")}
}

// CheckRuntimeDir refuses a runtime directory that another user could
// have prepared: one that is a symlink, is not a directory, belongs to
// another uid, or can be written by group or others (as ssh-agent and
// tmux refuse theirs). A missing directory is fine: nothing is in it.
func CheckRuntimeDir() error {
	dirs := ownedDirs()
	for _, d := range dirs {
		if err := checkOwnedDir(d); errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
	}
	return checkAbove(dirs[len(dirs)-1])
}

// checkAbove refuses a runtime directory below one that another user
// could change ($XDG_RUNTIME_DIR or $TMPDIR of theirs, or not theirs
// alone): they could swap ours for their own between a check and a use.
func checkAbove(d string) error {
	if err := osutil.CheckPath(d, os.Geteuid(), osutil.TrustSelf); err != nil {
		return fmt.Errorf("runtime directory %s: %w (set XDG_RUNTIME_DIR to a directory of your own)", d, err)
	}
	return nil
}

// MakeRuntimeDir creates the runtime directory (mode 0700) where missing,
// checks it as CheckRuntimeDir does and returns its path.
func MakeRuntimeDir() (string, error) {
	dirs := ownedDirs()
	if err := os.MkdirAll(filepath.Dir(dirs[0]), 0o700); err != nil {
		// Typically an XDG_RUNTIME_DIR exported from a login node (srun
		// passes the environment) that does not exist on this node.
		hint := ""
		if os.Getenv("XDG_RUNTIME_DIR") != "" {
			hint = " (XDG_RUNTIME_DIR is set: inherited from another host? unset it or point it at a directory of yours on this node)"
		}
		return "", fmt.Errorf("runtime directory %s: %w%s", dirs[0], err, hint)
	}
	for _, d := range dirs {
		switch err := os.Mkdir(d, 0o700); {
		case err == nil:
			// Whatever the umask: the mode is the point.
			if err := os.Chmod(d, 0o700); err != nil {
				return "", fmt.Errorf("runtime directory %s: %w", d, err)
			}
		case !errors.Is(err, fs.ErrExist):
			return "", fmt.Errorf("runtime directory %s: %w", d, err)
		}
		if err := checkOwnedDir(d); err != nil {
			return "", err
		}
	}
	if err := checkAbove(dirs[len(dirs)-1]); err != nil {
		return "", err
	}
	return dirs[len(dirs)-1], nil
}

// checkOwnedDir checks one directory that must be this user's alone.
func checkOwnedDir(d string) error {
	fi, err := os.Lstat(d)
	if err != nil {
		return fmt.Errorf("runtime directory %s: %w", d, err)
	}
	hint := "remove it, or set XDG_RUNTIME_DIR to a directory of your own"
	switch st, _ := fi.Sys().(*syscall.Stat_t); {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("runtime directory %s is a symlink; refusing it (%s)", d, hint)
	case !fi.IsDir():
		return fmt.Errorf("runtime directory %s is not a directory (%s)", d, hint)
	case st != nil && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("runtime directory %s is owned by uid %d, not by you (uid %d): another user could take your control sockets there (%s)",
			d, st.Uid, os.Geteuid(), hint)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("runtime directory %s has mode %04o, writable by group or others: want 0700 (chmod 700 %s)", d, fi.Mode().Perm(), d)
	}
	return nil
}
