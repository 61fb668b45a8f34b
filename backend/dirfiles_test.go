package backend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// A dirplus carries the content of each regular file up to DirFiles
// (capped by MaxCacheable), as Read answers it: not larger files, links,
// directories or unreadable files, and no more than DirFilesTotal bytes.
func TestDirPlusShipsSmallFiles(t *testing.T) {
	root := t.TempDir()
	write := func(name string, n int, mode os.FileMode) {
		require.NoError(t, os.WriteFile(filepath.Join(root, name), bytes.Repeat([]byte{byte(len(name))}, n), mode))
	}
	write("a.pyc", 100, 0o644)
	write("empty", 0, 0o644)
	write("edge", 4096, 0o644)
	write("over", 4097, 0o644)
	write("secret", 10, 0o000) // root reads it anyway; checked below for non-root
	require.NoError(t, os.Symlink("a.pyc", filepath.Join(root, "link")))
	require.NoError(t, os.Mkdir(filepath.Join(root, "sub"), 0o755))
	ctx := context.Background()

	cases := []struct {
		name     string
		dirFiles int64
		maxCache int64
		shipped  []string
	}{
		{"off", 0, 1 << 20, nil},
		{"4 KiB", 4096, 1 << 20, []string{"a.pyc", "edge", "empty", "secret"}},
		{"capped by max_cacheable", 1 << 20, 100, []string{"a.pyc", "empty", "secret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newTest(t, Config{Target: root, Parallel: 4, MaxCacheable: tc.maxCache, DirFiles: tc.dirFiles})
			r := b.Do(ctx, op.DirPlus, "/")
			require.True(t, r.OK())
			var shipped []string
			var bytesShipped int64
			for _, e := range r.Plus {
				if !e.HasData {
					assert.Nil(t, e.Data)
					continue
				}
				shipped = append(shipped, e.Name)
				bytesShipped += int64(len(e.Data))
				read := b.Do(ctx, op.Read, "/"+e.Name)
				require.True(t, read.OK())
				assert.Equal(t, read.Data, e.Data, e.Name)
				assert.Equal(t, read.Attr, e.Attr, "%s: the entry's stat is the one its bytes were read under", e.Name)
			}
			if os.Geteuid() != 0 {
				tc.shipped = deleteName(tc.shipped, "secret")
			}
			assert.Equal(t, tc.shipped, shipped)
			files, n := b.Shipped()
			assert.EqualValues(t, len(shipped), files)
			assert.Equal(t, bytesShipped, n)
			assert.EqualValues(t, len(shipped), b.Ops(op.Read)-int64(len(shipped)), "each shipped file counts as one read (and the test read each once)")
		})
	}
}

func deleteName(names []string, name string) []string {
	var out []string
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// A directory of more small files than DirFilesTotal ships that many
// bytes at most; the rest are listed without content.
func TestDirPlusShipsWithinTotal(t *testing.T) {
	root := t.TempDir()
	const size = 60 << 10
	n := DirFilesTotal/size + 10
	for i := range n {
		require.NoError(t, os.WriteFile(filepath.Join(root, fmt.Sprintf("f%03d", i)), bytes.Repeat([]byte{1}, size), 0o644))
	}
	b := newTest(t, Config{Target: root, Parallel: 8, MaxCacheable: 1 << 20, DirFiles: 64 << 10})
	r := b.Do(context.Background(), op.DirPlus, "/")
	require.True(t, r.OK())
	require.Len(t, r.Plus, n)
	total, files := 0, 0
	for _, e := range r.Plus {
		if e.HasData {
			total += len(e.Data)
			files++
		}
	}
	assert.LessOrEqual(t, total, DirFilesTotal)
	assert.Equal(t, DirFilesTotal/size, files, "as many as fit")
}

// A file rewritten while its directory is listed is shipped whole, as
// one of its versions under that version's stat, or not at all.
func TestDirPlusShipsNeverTorn(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	versions := [][]byte{bytes.Repeat([]byte("a"), 30_000), bytes.Repeat([]byte("b"), 50_000), bytes.Repeat([]byte("c"), 20_000)}
	require.NoError(t, os.WriteFile(p, versions[0], 0o644))
	b := newTest(t, Config{Target: dir, Parallel: 4, MaxCacheable: 1 << 20, DirFiles: 64 << 10})
	stop := rewriteUntilStopped(p, versions)
	defer stop()
	shipped := 0
	for range 300 {
		r := b.Do(context.Background(), op.DirPlus, "/")
		require.Zero(t, r.Errno)
		require.Len(t, r.Plus, 1)
		e := r.Plus[0]
		if !e.HasData {
			continue
		}
		shipped++
		require.EqualValues(t, e.Attr.Size, len(e.Data), "data and size disagree")
		if len(e.Data) > 0 {
			require.Equal(t, len(e.Data), bytes.Count(e.Data, e.Data[:1]), "torn: two versions mixed")
		}
	}
	t.Logf("shipped %d of 300", shipped)
	assert.Equal(t, syscall.Errno(0), b.Do(context.Background(), op.DirPlus, "/").Errno)
}

// A file the caller holds in the listed version ships from there, one it
// is reading ships no content, and neither is read again; one it holds in
// another version (the file changed since) is read.
func TestDirPlusKnownFilesAreNotReadAgain(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"held", "reading", "old", "plain"} {
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte("bytes of "+name), 0o644))
	}
	b := newTest(t, Config{Target: root, Parallel: 4, MaxCacheable: 1 << 20, DirFiles: 4096})
	ctx := context.Background()
	var mu sync.Mutex
	var asked []string
	known := func(path string, attr op.Attr) ([]byte, bool, bool) {
		mu.Lock()
		asked = append(asked, path) // from the dirplus's workers
		mu.Unlock()
		switch path {
		case "/held":
			return []byte("bytes of held"), true, false
		case "/reading":
			return nil, false, true
		}
		return nil, false, false // "/old": held in another version is the caller's "not held"
	}
	r := b.DirPlus(ctx, "/", known)
	require.True(t, r.OK())
	got := map[string]string{}
	for _, e := range r.Plus {
		if e.HasData {
			got[e.Name] = string(e.Data)
		}
	}
	assert.Equal(t, map[string]string{"held": "bytes of held", "old": "bytes of old", "plain": "bytes of plain"}, got)
	assert.ElementsMatch(t, []string{"/held", "/reading", "/old", "/plain"}, asked)
	assert.EqualValues(t, 2, b.Ops(op.Read), "only old and plain read")
	assert.EqualValues(t, 1, b.ShippedKnown())
	files, _ := b.Shipped()
	assert.EqualValues(t, 2, files)
}
