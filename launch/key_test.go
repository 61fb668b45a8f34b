package launch

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadKeyRefuses(t *testing.T) {
	dir := t.TempDir()
	good := bytes.Repeat([]byte{0xa5}, KeyLen)
	tests := []struct {
		name  string
		setup func(path string)
		want  string
	}{
		{name: "missing", setup: func(string) {}, want: "no such file"},
		{name: "group readable", setup: func(p string) { write(t, p, good, 0o640) }, want: "has mode 0640: others may read it"},
		{name: "world readable", setup: func(p string) { write(t, p, good, 0o604) }, want: "has mode 0604"},
		{name: "group writable", setup: func(p string) { write(t, p, good, 0o620) }, want: "has mode 0620"},
		{name: "short", setup: func(p string) { write(t, p, good[:KeyLen-1], 0o600) }, want: "holds 31 bytes: want at least 32"},
		{name: "empty", setup: func(p string) { write(t, p, nil, 0o600) }, want: "holds 0 bytes"},
		{name: "huge", setup: func(p string) { write(t, p, make([]byte, maxKeyFile+1), 0o600) }, want: "larger than 4096 bytes"},
		{name: "directory", setup: func(p string) { require.NoError(t, os.Mkdir(p, 0o700)) }, want: "not a regular file"},
		{name: "another user's", setup: func(p string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			write(t, p, good, 0o600)
			require.NoError(t, os.Chown(p, 65534, 65534))
		}, want: "is owned by uid 65534, not by this user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			tc.setup(path)
			_, err := ReadKey(path)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, tc.want)
			// LoadOrCreateKey never replaces a bad key silently.
			_, created, err := LoadOrCreateKey(path)
			if tc.name != "missing" {
				require.ErrorContains(t, err, tc.want)
				assert.False(t, created)
			}
		})
	}
	path := filepath.Join(dir, "good")
	write(t, path, append(good, '\n'), 0o600)
	key, err := ReadKey(path)
	require.NoError(t, err)
	assert.Equal(t, append(good, '\n'), key, "a key is used byte for byte")
}

func write(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, mode))
	require.NoError(t, os.Chmod(path, mode)) // past the umask
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", ".copper")
	path := filepath.Join(dir, "key")
	key, created, err := LoadOrCreateKey(path)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Len(t, key, KeyLen)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	again, created, err := LoadOrCreateKey(path)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, key, again)
	leftovers, err := filepath.Glob(filepath.Join(dir, ".key.tmp-*"))
	require.NoError(t, err)
	assert.Empty(t, leftovers)
}

// TestLoadOrCreateKeyRace: 64 ranks starting at once with no key all end
// with the same key, exactly one of them created it, and no temporary
// file is left behind.
func TestLoadOrCreateKeyRace(t *testing.T) {
	for round := range 5 {
		dir := filepath.Join(t.TempDir(), strconv.Itoa(round))
		path := filepath.Join(dir, "key")
		const ranks = 64
		keys := make([][]byte, ranks)
		errs := make([]error, ranks)
		createdBy := make([]bool, ranks)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for r := range ranks {
			wg.Go(func() {
				<-start
				keys[r], createdBy[r], errs[r] = LoadOrCreateKey(path)
			})
		}
		close(start)
		wg.Wait()
		creators := 0
		for r := range ranks {
			require.NoError(t, errs[r], "rank %d", r)
			require.Equal(t, keys[0], keys[r], "rank %d has another key", r)
			if createdBy[r] {
				creators++
			}
		}
		assert.Equal(t, 1, creators, "ranks that created the key")
		onDisk, err := ReadKey(path)
		require.NoError(t, err)
		assert.Equal(t, keys[0], onDisk)
		leftovers, err := filepath.Glob(filepath.Join(dir, ".key.tmp-*"))
		require.NoError(t, err)
		assert.Empty(t, leftovers)
	}
}

func TestPeerToken(t *testing.T) {
	key := bytes.Repeat([]byte{1}, KeyLen)
	a := PeerToken(key, "job-1")
	assert.Len(t, a, 64, "hex of a SHA-256 HMAC")
	assert.Equal(t, a, PeerToken(key, "job-1"), "every rank derives the same token")
	assert.NotEqual(t, a, PeerToken(key, "job-2"), "another job, another token")
	assert.NotEqual(t, a, PeerToken(bytes.Repeat([]byte{2}, KeyLen), "job-1"), "another key, another token")
	assert.NotContains(t, string(a), string(key))
}

func TestKeygenCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir", "key")
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		env := Env{Getenv: func(string) string { return "" }, Hostname: "h", Stdout: &out, Stderr: &errOut}
		code := Main(t.Context(), env, args)
		return code, out.String(), errOut.String()
	}
	code, out, _ := run("keygen", "--key-file", path)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "created key file "+path)
	key, err := ReadKey(path)
	require.NoError(t, err)

	code, out, _ = run("keygen", "--key-file", path)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "key file "+path+" exists and is usable")
	again, err := ReadKey(path)
	require.NoError(t, err)
	assert.Equal(t, key, again, "keygen never replaces a key")

	require.NoError(t, os.Chmod(path, 0o644))
	code, _, errOut := run("keygen", "--key-file", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "key file "+path+" has mode 0644")

	code, _, errOut = run("keygen", "--foreground")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--foreground applies to start, not keygen")
}
