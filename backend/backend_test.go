package backend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/op"
)

func newTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "d/sub"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(root, "empty"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "d/f.txt"), []byte("hello"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "big"), bytes.Repeat([]byte("x"), 2048), 0o644))
	require.NoError(t, os.Symlink("f.txt", filepath.Join(root, "d/rel")))
	require.NoError(t, os.Symlink("loop", filepath.Join(root, "loop")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "d/sub/é x"), nil, 0o600))
	return root
}

// newTest returns a backend closed when the test ends.
func newTest(t testing.TB, cfg Config) *Backend {
	t.Helper()
	b, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

func TestDo(t *testing.T) {
	root := newTree(t)
	b := newTest(t, Config{Target: root, Parallel: 2, MaxCacheable: 1024, Guard: []string{filepath.Join(root, "empty")}})
	ctx := context.Background()
	cases := []struct {
		name  string
		o     op.Op
		path  string
		errno syscall.Errno
		check func(t *testing.T, r op.Result)
	}{
		{"stat file", op.Getattr, "/d/f.txt", 0, func(t *testing.T, r op.Result) {
			assert.True(t, r.Attr.IsRegular())
			assert.EqualValues(t, 5, r.Attr.Size)
		}},
		{"stat root", op.Getattr, "/", 0, func(t *testing.T, r op.Result) { assert.True(t, r.Attr.IsDir()) }},
		{"stat symlink is lstat", op.Getattr, "/d/rel", 0, func(t *testing.T, r op.Result) { assert.True(t, r.Attr.IsSymlink()) }},
		{"missing", op.Getattr, "/nope", syscall.ENOENT, nil},
		{"not a dir", op.Getattr, "/d/f.txt/x", syscall.ENOTDIR, nil},
		{"loop", op.Getattr, "/loop/x", syscall.ELOOP, nil},
		{"name too long", op.Getattr, "/" + strings.Repeat("n", 256), syscall.ENAMETOOLONG, nil},
		{"guarded", op.Getattr, "/empty", syscall.ENOENT, nil},
		{"readdir", op.Readdir, "/d", 0, func(t *testing.T, r op.Result) {
			got := map[string]uint32{}
			for _, e := range r.Entries {
				got[e.Name] = e.Mode
			}
			assert.Equal(t, map[string]uint32{"f.txt": syscall.S_IFREG, "rel": syscall.S_IFLNK, "sub": syscall.S_IFDIR}, got)
		}},
		{"readdir utf8", op.Readdir, "/d/sub", 0, func(t *testing.T, r op.Result) {
			require.Len(t, r.Entries, 1)
			assert.Equal(t, "é x", r.Entries[0].Name)
		}},
		{"readdir of file", op.Readdir, "/d/f.txt", syscall.ENOTDIR, nil},
		{"readlink", op.Readlink, "/d/rel", 0, func(t *testing.T, r op.Result) { assert.Equal(t, "f.txt", r.Target) }},
		{"readlink of file", op.Readlink, "/d/f.txt", syscall.EINVAL, nil},
		{"read", op.Read, "/d/f.txt", 0, func(t *testing.T, r op.Result) {
			assert.Equal(t, "hello", string(r.Data))
			assert.EqualValues(t, 5, r.Attr.Size)
		}},
		{"read empty file", op.Read, "/d/sub/é x", 0, func(t *testing.T, r op.Result) { assert.Empty(t, r.Data) }},
		{"read too big", op.Read, "/big", syscall.EFBIG, nil},
		{"read dir", op.Read, "/d", syscall.EISDIR, nil},
		{"read symlink", op.Read, "/d/rel", syscall.ELOOP, nil},
		{"bad path", op.Getattr, "d/f.txt", syscall.EINVAL, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := b.Do(ctx, tc.o, tc.path)
			require.Equal(t, tc.errno, r.Errno, "errno %v", r.Errno)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	assert.EqualValues(t, 6, b.Ops(op.Getattr)) // bad paths and guarded paths never reach the disk
}

func TestHostPath(t *testing.T) {
	assert.Equal(t, "/usr/lib", HostPath("/", "/usr/lib"))
	assert.Equal(t, "/srv/x/usr", HostPath("/srv/x", "/usr"))
	assert.Equal(t, "/srv/x", HostPath("/srv/x", "/"))
}

// A file rewritten while it is read must be served whole, as one of its
// versions, never a mix.
func TestReadNeverTorn(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	versions := [][]byte{bytes.Repeat([]byte("a"), 100_000), bytes.Repeat([]byte("b"), 150_000), bytes.Repeat([]byte("c"), 70_000)}
	// Versions of different sizes and contents, rewritten in place.
	require.NoError(t, os.WriteFile(p, versions[0], 0o644))
	b := newTest(t, Config{Target: dir, Parallel: 4, MaxCacheable: 1 << 20})

	stop := rewriteUntilStopped(p, versions)
	defer stop()
	for i := 0; i < 300; i++ {
		r := b.Do(context.Background(), op.Read, "/f")
		if r.Errno == syscall.EIO { // gave up after repeated changes: allowed, never torn
			continue
		}
		require.Zero(t, r.Errno)
		// What was served must be one instant of the file: data as long as
		// the size it was read under, all of one version. A write still in
		// progress at a stable size and mtime (the kernel updates mtime when
		// a write starts) is such an instant too, so a prefix of a version
		// is allowed; a mix of two versions, or data that disagrees with its
		// size, is a torn read.
		require.EqualValues(t, r.Attr.Size, len(r.Data), "data and size disagree")
		if len(r.Data) > 0 {
			first := r.Data[0]
			require.Equal(t, len(r.Data), bytes.Count(r.Data, []byte{first}), "torn read of %d bytes: two versions mixed", len(r.Data))
		}
	}
}

// rewriteUntilStopped rewrites p in place with versions in turn (readers
// can see partial contents) until the returned stop is called; stop
// waits for the writer.
func rewriteUntilStopped(p string, versions [][]byte) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return
			}
			_, _ = f.Write(versions[i%len(versions)])
			_ = f.Close()
		}
	})
	return func() { close(done); wg.Wait() }
}

func TestParseDirentsReal(t *testing.T) {
	root := newTree(t)
	fd, err := unix.Open(filepath.Join(root, "d"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Getdents(fd, buf)
	require.NoError(t, err)
	entries, err := ParseDirents(buf[:n], nil)
	require.NoError(t, err)
	assert.Len(t, entries, 3)
}

func FuzzParseDirents(f *testing.F) {
	f.Add([]byte{})
	rec := make([]byte, 24)
	rec[16] = 24
	rec[18] = unix.DT_REG
	copy(rec[19:], "abc")
	f.Add(rec)
	f.Add(rec[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParseDirents(b, nil)
		if err == nil {
			for _, e := range entries {
				if e.Name == "" || strings.IndexByte(e.Name, 0) >= 0 {
					t.Fatalf("bad name %q accepted", e.Name)
				}
			}
		}
	})
}

// A dirplus answers what Getattr and Readlink of each name answer, sorted,
// without guarded names, and counts each stat and readlink it does.
func TestDirPlus(t *testing.T) {
	root := newTree(t)
	for i := range 100 {
		require.NoError(t, os.WriteFile(filepath.Join(root, "d/sub", fmt.Sprintf("m%03d.py", 99-i)), []byte("x"), 0o644))
	}
	ctx := context.Background()
	cases := []struct {
		name  string
		path  string
		errno syscall.Errno
		names []string // nil: not checked
	}{
		{"dir", "/d", 0, []string{"f.txt", "rel", "sub"}},
		{"guarded left out", "/", 0, []string{"big", "d", "loop"}},
		{"big dir", "/d/sub", 0, nil},
		{"file", "/d/f.txt", syscall.ENOTDIR, nil},
		{"symlink", "/d/rel", syscall.ELOOP, nil},
		{"missing", "/nope", syscall.ENOENT, nil},
	}
	for _, walk := range []bool{false, true} {
		b := newTest(t, Config{Target: root, Parallel: 4, MaxCacheable: 1024, Guard: []string{filepath.Join(root, "empty")}, ForceWalk: walk})
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/walk=%v", tc.name, walk), func(t *testing.T) {
				r := b.Do(ctx, op.DirPlus, tc.path)
				require.Equal(t, tc.errno, r.Errno)
				if tc.errno != 0 {
					return
				}
				var names []string
				for _, e := range r.Plus {
					names = append(names, e.Name)
					p := op.Join(tc.path, e.Name)
					// atime moves when a link is read; the version does not.
					want := b.Do(ctx, op.Getattr, p).Attr
					want.AtimeNs, e.Attr.AtimeNs = 0, 0
					assert.Equal(t, want, e.Attr, p)
					if e.Attr.IsSymlink() {
						assert.True(t, e.HasTarget)
						assert.Equal(t, b.Do(ctx, op.Readlink, p).Target, e.Target, p)
					} else {
						assert.False(t, e.HasTarget)
					}
				}
				assert.True(t, slices.IsSorted(names))
				if tc.names != nil {
					assert.Equal(t, tc.names, names)
				} else {
					assert.Len(t, names, 101)
				}
			})
		}
	}
	b := newTest(t, Config{Target: root, Parallel: 2, MaxCacheable: 1024})
	require.True(t, b.Do(ctx, op.DirPlus, "/d").OK())
	assert.EqualValues(t, 1, b.Ops(op.DirPlus))
	assert.EqualValues(t, 3, b.Ops(op.Getattr), "one stat per entry")
	assert.EqualValues(t, 1, b.Ops(op.Readlink), "one readlink per link")
	assert.EqualValues(t, 0, b.Ops(op.Readdir))
	assert.Equal(t, syscall.ENOSYS, b.Do(ctx, op.DirPlusNext, "/d/f.txt").Errno, "paging is the node's")
}
