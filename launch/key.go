package launch

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/secret"
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
	key, err := secret.Read(path, "key file", maxKeyFile, "run chmod 600 "+path+" (and make a new key if it was exposed)")
	if err != nil {
		return nil, err
	}
	if len(key) < KeyLen {
		return nil, fmt.Errorf("key file %s holds %d bytes: want at least %d (remove it and run copper-launch keygen)", path, len(key), KeyLen)
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
		_ = osutil.SyncDir(dir) // best effort: the key is complete either way
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
