// Package secret reads the files that hold copper's secrets (the job key,
// peer tokens): only from a regular file that this user owns and that no
// one else may read, checked on the descriptor that is read, so that
// another user can neither plant nor swap one.
package secret

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// Read returns the contents of the secret file at path, at most limit
// bytes. what names the file in errors ("key file", "token file"); fix is
// appended to the error about loose permissions. Errors wrap the
// underlying one (os.ErrNotExist for a missing file).
func Read(path, what string, limit int64, fix string) ([]byte, error) {
	// O_NONBLOCK: a FIFO planted at the name (a <book>.token beside a
	// book in a group's directory) must fail the type check below, not
	// block the launcher in open(2) for ever. Reads of a regular file
	// ignore it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat() // of the file opened, not of whatever the path names later
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file (%v)", what, path, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%s %s is owned by uid %d, not by this user (uid %d): a secret someone else controls protects nothing",
			what, path, st.Uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %04o: others may read it; %s", what, path, perm, fix)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s %s is larger than %d bytes: not a copper secret", what, path, limit)
	}
	return b, nil
}
