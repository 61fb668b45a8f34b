package fuse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// fdSource is a dirSource whose reads, and held bytes, come from one
// open descriptor (fstat, then read): a file replaced by rename during
// the read is read whole in its old version, as the root's torn-read
// protection guarantees, so every (stat, bytes) pair it gives is one
// version's. Its Getattr answers each path's first stat for ever, as a
// node's cache keeps a directory's listing (dirplus) while reads and
// held bytes find the host's newer versions: a listing then shows
// versions whose bytes the Source no longer holds.
type fdSource struct {
	*dirSource
	stats *sync.Map // path → op.Result of its first Getattr
}

func (s fdSource) readWhole(p string) (op.Result, bool) {
	f, err := os.Open(filepath.Join(s.root, p))
	if err != nil {
		return op.Fail(errnoOf(err)), false
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return op.Fail(errnoOf(err)), false
	}
	if st.Size > s.maxRead {
		return op.Fail(syscall.EFBIG), false
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return op.Fail(errnoOf(err)), false
	}
	return op.Result{Attr: op.AttrFromStat(&st), Data: data}, true
}

func (s fdSource) Get(ctx context.Context, o op.Op, p string) op.Result {
	switch o {
	case op.Read:
		r, _ := s.readWhole(p)
		return r
	case op.Getattr:
		if r, ok := s.stats.Load(p); ok {
			return r.(op.Result)
		}
		r, _ := s.stats.LoadOrStore(p, s.dirSource.Get(ctx, o, p))
		return r.(op.Result)
	}
	return s.dirSource.Get(ctx, o, p)
}

func (s fdSource) Held(p string) (op.Result, bool) { return s.readWhole(p) }

// versionBytes is version v's content: its tag repeated, n bytes long.
func versionBytes(v, n int) []byte {
	tag := fmt.Appendf(nil, "%08d|", v)
	return bytes.Repeat(tag, n/len(tag)+1)[:n]
}

// versionLen varies the length from version to version, above and below
// a page, for odd files; even files keep theirs (the versions of one
// file are v+1, v+2 of a v divisible by 10), which only the version check
// tells apart.
func versionLen(v int) int {
	if (v/10)%2 == 0 {
		v /= 10
	}
	return 9 + (v*2731)%(treeMaxCacheable-9)
}

// TestPushedBytesMatchTheirInodeUnderReplacement: files are replaced on
// the host (rename over, new length) while readers list their directory
// for the first time and read every file, and the listings show
// versions the Source's reads and held bytes have moved past: every read
// that succeeds returns exactly the bytes, and fstat the length, of the
// version the descriptor's inode stands for, and the listings pushed
// files.
func TestPushedBytesMatchTheirInodeUnderReplacement(t *testing.T) {
	const rounds, files, readers = 12, 24, 3
	root, keep := t.TempDir(), t.TempDir()
	// versions maps a view inode number to the version it stands for;
	// a link in keep keeps each version's host inode (and its number).
	var versions sync.Map
	write := func(dir string, i, v int) {
		tmp := filepath.Join(dir, fmt.Sprintf(".f%02d.tmp", i))
		require.NoError(t, os.WriteFile(tmp, versionBytes(v, versionLen(v)), 0o644))
		require.NoError(t, os.Link(tmp, filepath.Join(keep, strconv.Itoa(v))))
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(tmp, &st))
		versions.Store(inodeNumber(st.Dev, st.Ino), v)
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("f%02d", i))))
	}
	for r := range rounds {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", r))
		require.NoError(t, os.Mkdir(dir, 0o755))
		for i := range files {
			write(dir, i, r*1000+i*10)
		}
	}
	m := mountSource(t, fdSource{dirSource: newDirSource(root, treeMaxCacheable), stats: new(sync.Map)}, root, treeMaxCacheable, nil)

	var checked, failed atomic.Int64
	check := func(path string) {
		f, err := os.Open(path)
		if err != nil {
			failed.Add(1) // the name went to a new version under the walk
			return
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ESTALE) {
			failed.Add(1) // the documented answer for a version gone from the host
			return
		}
		if !assert.NoError(t, err, path) {
			return
		}
		info, err := f.Stat()
		require.NoError(t, err)
		v, ok := versions.Load(info.Sys().(*syscall.Stat_t).Ino)
		if !assert.True(t, ok, "%s: an inode of no version written", path) {
			return
		}
		want := versionBytes(v.(int), versionLen(v.(int)))
		assert.Equal(t, int64(len(want)), info.Size(), "%s: the inode's size is its version's", path)
		assert.True(t, bytes.Equal(want, data), "%s: read %d bytes starting %q, not version %d's %d", path, len(data), data[:min(len(data), 9)], v, len(want))
		checked.Add(1)
	}
	for r := range rounds {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", r))
		view := filepath.Join(m.Mountpoint(), fmt.Sprintf("d%02d", r))
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := 1; v <= 2; v++ {
				for i := range files {
					write(dir, i, r*1000+i*10+v)
				}
			}
		}()
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				des, err := os.ReadDir(view)
				if !assert.NoError(t, err) {
					return
				}
				for _, de := range des {
					if de.Type().IsRegular() && de.Name()[0] != '.' {
						check(filepath.Join(view, de.Name()))
					}
				}
			}()
		}
		wg.Wait()
	}
	st := m.PushStats()
	t.Logf("reads checked %d, failed as documented %d; pushes %+v", checked.Load(), failed.Load(), st)
	assert.NotZero(t, st.Pushed, "the listings pushed files")
	assert.NotZero(t, checked.Load())
}
