package osutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// PathTrust says which directories on the way to a path CheckPath accepts.
type PathTrust int

const (
	// TrustGroup accepts any directory but one that everyone may write
	// without the sticky bit, or a name in a sticky directory that
	// everyone may write (/tmp) that belongs to another user: a name
	// there is predictable, and another user could have created it
	// first. Shared project directories stay usable.
	TrustGroup PathTrust = iota
	// TrustSelf accepts only directories of root or uid that no one else
	// may write (sticky ones excepted, for names in them of root or
	// uid), and a last component of root or uid: for paths through which
	// a job reads what it runs.
	TrustSelf
)

// maxLinks bounds the symlinks CheckPath follows, as the kernel's 40.
const maxLinks = 40

// CheckPath walks the existing path (absolute) from / and fails, naming
// the directory, when another user than uid (and root) could make path
// name something else: replace a directory on the way, or a name in it,
// by one of their own. Symlinks on the way are followed and checked the
// same way.
func CheckPath(path string, uid int, trust PathTrust) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s: not an absolute path", path)
	}
	w := walker{uid: uid, trust: trust}
	return w.walk(path)
}

type walker struct {
	uid   int
	trust PathTrust
	links int
}

// walk checks each step from / to the end of path.
func (w *walker) walk(path string) error {
	dir := "/"
	parent, err := lstat(dir)
	if err != nil {
		return err
	}
	// Not cleaned: ".." after a symlink is the parent of its target, as
	// for the kernel; dir never holds a symlink, so its parent is lexical.
	rest := strings.Split(path, "/")
	for i, name := range rest {
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			dir = filepath.Dir(dir)
			if parent, err = lstat(dir); err != nil {
				return err
			}
			continue
		}
		child := filepath.Join(dir, name)
		st, err := lstat(child)
		if err != nil {
			return err
		}
		if err := w.step(dir, parent, child, st); err != nil {
			return err
		}
		if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			if w.links++; w.links > maxLinks {
				return fmt.Errorf("%s: too many symbolic links", path)
			}
			target, err := os.Readlink(child)
			if err != nil {
				return err
			}
			if !filepath.IsAbs(target) {
				target = dir + "/" + target
			}
			return w.walk(strings.Join(append([]string{target}, rest[i+1:]...), "/"))
		}
		dir, parent = child, st
	}
	if w.trust == TrustSelf && !w.trusted(int(parent.Uid)) {
		return fmt.Errorf("%s belongs to uid %d, not to you (uid %d)", dir, parent.Uid, w.uid)
	}
	return nil
}

// step checks the move from dir (its stat pst) to its entry child (st).
func (w *walker) step(dir string, pst *syscall.Stat_t, child string, st *syscall.Stat_t) error {
	others := pst.Mode & 0o002
	if w.trust == TrustSelf {
		if !w.trusted(int(pst.Uid)) {
			return fmt.Errorf("directory %s belongs to uid %d, not to you (uid %d) or root: its owner could swap %s", dir, pst.Uid, w.uid, child)
		}
		others = pst.Mode & 0o022
	}
	if others == 0 {
		return nil
	}
	if pst.Mode&syscall.S_ISVTX == 0 {
		return fmt.Errorf("directory %s has mode %04o: others may write it without the sticky bit, so they could swap %s", dir, pst.Mode&0o7777, child)
	}
	if !w.trusted(int(st.Uid)) {
		return fmt.Errorf("%s belongs to uid %d, not to you (uid %d): another user created it first in the shared directory %s", child, st.Uid, w.uid, dir)
	}
	return nil
}

func (w *walker) trusted(uid int) bool { return uid == 0 || uid == w.uid }

func lstat(p string) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	return &st, nil
}

// MkdirAllTrusted creates dir (mode perm) where missing, as os.MkdirAll,
// then checks the path as CheckPath does for this user: a directory on
// the way that another user created first, or can swap, is an error
// naming it.
func MkdirAllTrusted(dir string, perm os.FileMode, trust PathTrust) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, perm); err != nil {
		return err
	}
	return CheckPath(abs, os.Geteuid(), trust)
}

// AppendLog opens the log file path for appending, creating it (0644) and
// its directory (0755, checked as MkdirAllTrusted does with TrustGroup)
// if missing. A link planted at the name is refused (O_NOFOLLOW), never
// followed to append to the file it names.
func AppendLog(path string) (*os.File, error) {
	if err := MkdirAllTrusted(filepath.Dir(path), 0o755, TrustGroup); err != nil {
		return nil, fmt.Errorf("log directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}
