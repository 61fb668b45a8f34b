package launch

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// KeyLen is the length of a key copper-launch creates, and the shortest
// key file it accepts.
const KeyLen = 32

// maxKeyFile bounds what is read from a key file: a key is a few dozen
// bytes, and a mistaken path must not be read whole.
const maxKeyFile = 4096

// ReadKey reads the job key at path. It refuses, naming the file, a key
// file that is not a regular file owned by this user, that grants any
// group or other permission, or that holds fewer than KeyLen bytes: the
// key is what keeps other users out of the job's tree.
func ReadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat() // of the file opened, not of whatever the path names later
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file (%v)", path, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("key file %s is owned by uid %d, not by this user (uid %d): a key someone else controls protects nothing",
			path, st.Uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %04o: others may read it; run chmod 600 %s (and make a new key if it was exposed)",
			path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	switch {
	case len(key) < KeyLen:
		return nil, fmt.Errorf("key file %s holds %d bytes: want at least %d (remove it and run copper-launch keygen)", path, len(key), KeyLen)
	case len(key) > maxKeyFile:
		return nil, fmt.Errorf("key file %s is larger than %d bytes: not a copper key", path, maxKeyFile)
	}
	return key, nil
}

// LoadOrCreateKey returns the job key at path, creating it first if it
// does not exist. Creation is safe when thousands of ranks start at once
// on a shared filesystem: each writes KeyLen random bytes to its own
// temporary file (0600) in the same directory, syncs it, and link(2)s it
// to path, which succeeds for exactly one of them; the others find path
// taken (EEXIST) and read the winner's complete file. The directory is
// created 0700 if missing. created reports whether this call made the key.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	key, err = ReadKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("key file %s: creating its directory: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	fresh := make([]byte, KeyLen)
	rand.Read(fresh) // crypto/rand.Read never fails (Go ≥ 1.24)
	_, err = tmp.Write(fresh)
	if err == nil {
		err = tmp.Sync() // complete on disk before anyone can see it under path
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("key file %s: writing %s: %w", path, tmp.Name(), err)
	}
	switch err := os.Link(tmp.Name(), path); {
	case err == nil:
		syncDir(dir)
		return fresh, true, nil
	case errors.Is(err, os.ErrExist):
		// Another rank won the race; its file was complete before the
		// link. An NFS client may still hold a cached "no such file" for
		// the name for a moment after the server said it exists.
		for range 50 {
			key, err := ReadKey(path)
			if !errors.Is(err, os.ErrNotExist) {
				return key, false, err
			}
			time.Sleep(100 * time.Millisecond)
		}
		key, err := ReadKey(path)
		return key, false, err
	default:
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
}

// syncDir makes a new directory entry durable; best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// peerTokenLabel separates the peer token from any other use of the key.
const peerTokenLabel = "copper peer token v1"

// PeerToken is the job's peer token: hex(HMAC-SHA256(key, "copper peer
// token v1" || jobID)). Every rank derives it from the key and the job id,
// so it is never sent; another job of the same user (another job id) has
// another token. Hex keeps it text in the token file.
func PeerToken(key []byte, jobID string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(peerTokenLabel))
	m.Write([]byte(jobID))
	return []byte(hex.EncodeToString(m.Sum(nil)))
}

// keygen is `copper-launch keygen`: create key_file if missing, else check
// it, and say which.
func keygen(c Command, env Env) int {
	s := c.Settings
	if err := s.Expand(-1); err != nil {
		return fail(env.Stderr, -1, err)
	}
	_, created, err := LoadOrCreateKey(s.KeyFile)
	if err != nil {
		return fail(env.Stderr, -1, err)
	}
	if created {
		fmt.Fprintf(env.Stdout, "copper-launch: created key file %s (every node of a job must read this same file)\n", s.KeyFile)
	} else {
		fmt.Fprintf(env.Stdout, "copper-launch: key file %s exists and is usable\n", s.KeyFile)
	}
	return exitOK
}
