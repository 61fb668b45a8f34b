package spill

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func chunk(i, n int) []byte { return bytes.Repeat([]byte{byte(i)}, n) }

func TestDiskStoreBudgetAndPrivacy(t *testing.T) {
	base := filepath.Join(t.TempDir(), "spill")
	s := Open(Config{Dir: base, BudgetBytes: 3000, MemoryBytes: 1000})
	dir := s.Dir()
	require.NotEmpty(t, dir)
	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())

	for i := range 5 {
		s.Put(fmt.Sprint(i), chunk(i, 1000))
		require.LessOrEqual(t, s.Stats().Bytes, int64(3000))
	}
	assert.False(t, s.Has("0"), "least recently used evicted")
	assert.False(t, s.Has("1"))
	buf := make([]byte, 600)
	n, ok := s.ReadAt("3", buf, 500)
	require.True(t, ok)
	assert.Equal(t, chunk(3, 500), buf[:n])
	whole, ok := s.Load("4")
	require.True(t, ok)
	assert.Equal(t, chunk(4, 1000), whole)

	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 4, "evicted chunks leave no file")
	assert.Equal(t, lockName, files[0].Name(), "the run's lock file and three chunks")
	for _, f := range files {
		info, err := f.Info()
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), f.Name())
	}
	stats := s.Stats()
	assert.Equal(t, "disk", stats.Mode)
	assert.Equal(t, int64(5), stats.Spilled)
	assert.Equal(t, int64(2), stats.Evicted)

	require.NoError(t, s.Close())
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "close removes the run directory")
	_, err = os.Stat(base)
	assert.NoError(t, err, "the base directory (other runs') stays")
}

// A base directory we cannot use degrades to memory, and the chunks are
// still served.
func TestUnusableDirDegradesToMemory(t *testing.T) {
	tmp := t.TempDir()
	ro := filepath.Join(tmp, "ro")
	require.NoError(t, os.Mkdir(ro, 0o500))
	file := filepath.Join(tmp, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	link := filepath.Join(tmp, "link")
	require.NoError(t, os.Symlink(tmp, link))
	open := filepath.Join(tmp, "open")
	require.NoError(t, os.Mkdir(open, 0o777))
	require.NoError(t, os.Chmod(open, 0o777))
	theirs := filepath.Join(tmp, "theirs") // another user's: they could swap what is in it
	require.NoError(t, os.Mkdir(theirs, 0o755))
	for _, tc := range []struct{ name, dir string }{
		{"not writable", filepath.Join(ro, "sub")},
		{"a file", file},
		{"a symlink", link},
		{"writable by others", open},
		{"under a directory writable by others", filepath.Join(open, "spill")},
		{"under another user's directory", filepath.Join(theirs, "spill")},
		{"relative", "spill"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "under another user's directory" {
				if os.Geteuid() != 0 {
					t.Skip("needs root to give a directory to another uid")
				}
				require.NoError(t, os.Chown(theirs, 2000, 2000))
			}
			if tc.name == "not writable" && os.Geteuid() == 0 {
				// root writes through mode bits: make it read-only for real.
				require.NoError(t, syscall.Mount("tmpfs", ro, "tmpfs", syscall.MS_RDONLY, "size=1m"))
				t.Cleanup(func() { _ = syscall.Unmount(ro, syscall.MNT_DETACH) })
			}
			s := Open(Config{Dir: tc.dir, BudgetBytes: 1 << 20, MemoryBytes: 2000})
			t.Cleanup(func() { _ = s.Close() })
			assert.Empty(t, s.Dir())
			s.Put("a", chunk(1, 1500))
			s.Put("b", chunk(2, 1500))
			assert.False(t, s.Has("a"), "memory budget applies")
			got, ok := s.Load("b")
			require.True(t, ok)
			assert.Equal(t, chunk(2, 1500), got)
			assert.Equal(t, "memory", s.Stats().Mode)
			assert.Equal(t, int64(1), s.Stats().Failures)
		})
	}
}

// A disk that fills up mid-run degrades with the chunk still kept.
func TestFullDiskDegrades(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tiny tmpfs: run it as root")
	}
	base := t.TempDir()
	require.NoError(t, syscall.Mount("tmpfs", base, "tmpfs", 0, "size=64k,mode=0700"))
	t.Cleanup(func() { _ = syscall.Unmount(base, syscall.MNT_DETACH) })
	s := Open(Config{Dir: base, BudgetBytes: 1 << 20, MemoryBytes: 1 << 20})
	t.Cleanup(func() { _ = s.Close() })
	require.NotEmpty(t, s.Dir())
	s.Put("small", chunk(1, 1000))
	s.Put("big", chunk(2, 200<<10)) // ENOSPC
	assert.Equal(t, "memory", s.Stats().Mode)
	got, ok := s.Load("big")
	require.True(t, ok)
	assert.Equal(t, chunk(2, 200<<10), got)
	entries, err := os.ReadDir(base)
	require.NoError(t, err)
	assert.Empty(t, entries, "the run directory is removed when the disk is given up")
}

// Puts racing Close (readahead that outlives its node) leave nothing.
func TestCloseWhilePutting(t *testing.T) {
	s := Open(Config{Dir: filepath.Join(t.TempDir(), "spill"), BudgetBytes: 1 << 30, MemoryBytes: 1 << 20})
	dir := s.Dir()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			s.Put(fmt.Sprint(i), chunk(i, 4096))
		}
	}()
	require.NoError(t, s.Close())
	<-done
	_, err := os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "the run directory is gone")
	assert.Zero(t, s.Stats().Chunks)
}

// A run directory whose store is gone without removing it (the node was
// killed) is removed by the next store in the same base, and so is one
// that has had no lock file for noLockGrace (killed between making it
// and locking it); a live one, or a young directory with no lock file,
// is left alone.
func TestSweepRemovesOnlyDeadRuns(t *testing.T) {
	base := filepath.Join(t.TempDir(), "spill")
	live := Open(Config{Dir: base, BudgetBytes: 1 << 20})
	t.Cleanup(func() { _ = live.Close() })
	dead := Open(Config{Dir: base, BudgetBytes: 1 << 20})
	dead.Put("k", chunk(1, 100))
	deadDir := dead.Dir()
	require.NoError(t, dead.lock.Close()) // as a killed process's lock goes
	odd := filepath.Join(base, "run-no-lock")
	require.NoError(t, os.Mkdir(odd, 0o700))
	old := filepath.Join(base, "run-no-lock-old")
	require.NoError(t, os.Mkdir(old, 0o700))
	long := time.Now().Add(-noLockGrace - time.Minute)
	require.NoError(t, os.Chtimes(old, long, long))

	next := Open(Config{Dir: base, BudgetBytes: 1 << 20})
	t.Cleanup(func() { _ = next.Close() })
	assert.NoDirExists(t, deadDir, "the dead run's directory is swept")
	assert.DirExists(t, live.Dir(), "a live run's is not")
	assert.DirExists(t, odd, "nor a young one without a lock file")
	assert.NoDirExists(t, old, "an old one without a lock file is swept")
	assert.DirExists(t, next.Dir())
}

// TestOpenKeepsTheChunk: a chunk file handed out by Open keeps its
// bytes after the store evicts the chunk; a chunk not held, or a store
// in memory, opens nothing.
func TestOpenKeepsTheChunk(t *testing.T) {
	s := Open(Config{Dir: t.TempDir(), BudgetBytes: 8, MemoryBytes: 8})
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	s.Put("a", []byte("aaaaaaaa"))
	f, size, ok := s.Open("a")
	require.True(t, ok)
	defer f.Close()
	require.EqualValues(t, 8, size)
	s.Put("b", []byte("bbbbbbbb")) // evicts a
	require.False(t, s.Has("a"))
	got := make([]byte, 8)
	_, err := f.ReadAt(got, 0)
	require.NoError(t, err)
	require.Equal(t, "aaaaaaaa", string(got))
	_, _, ok = s.Open("a")
	require.False(t, ok, "an evicted chunk")

	mem := Open(Config{MemoryBytes: 8})
	t.Cleanup(func() { require.NoError(t, mem.Close()) })
	mem.Put("a", []byte("aaaaaaaa"))
	_, _, ok = mem.Open("a")
	require.False(t, ok, "a store in memory has no files")
}

// TestDropMemory: the clear-cache command frees the chunks a store keeps
// in memory; a store on disk frees its hot copies and keeps its files.
func TestDropMemory(t *testing.T) {
	mem := Open(Config{MemoryBytes: 1 << 20})
	t.Cleanup(func() { require.NoError(t, mem.Close()) })
	mem.Put("a", chunk(1, 100))
	mem.Put("b", chunk(2, 50))
	assert.EqualValues(t, 150, mem.DropMemory())
	assert.False(t, mem.Has("a"))
	assert.Zero(t, mem.Stats().Bytes)

	disk := Open(Config{Dir: t.TempDir(), BudgetBytes: 1 << 20, MemoryBytes: 1 << 20})
	t.Cleanup(func() { require.NoError(t, disk.Close()) })
	disk.Put("a", chunk(1, 100))
	assert.EqualValues(t, 100, disk.DropMemory(), "the hot copy goes")
	assert.Zero(t, disk.DropMemory())
	assert.True(t, disk.Has("a"), "the file stays")
	got, ok := disk.Load("a")
	require.True(t, ok)
	assert.Equal(t, chunk(1, 100), got)
}

// TestHotChunksAnsweredFromMemory: on disk, the newest chunks up to
// MemoryBytes are also kept in memory and answered from there (their
// files removed behind the store's back prove it); older ones are read
// from their files, and an evicted chunk leaves memory too.
func TestHotChunksAnsweredFromMemory(t *testing.T) {
	s := Open(Config{Dir: t.TempDir(), BudgetBytes: 3000, MemoryBytes: 2000})
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	for i := range 3 {
		s.Put(fmt.Sprint(i), chunk(i, 1000))
	}
	for i := range 3 {
		require.NoError(t, os.Remove(s.fileOf(fmt.Sprint(i))))
	}
	buf := make([]byte, 1000)
	n, ok := s.ReadAt("2", buf, 10)
	require.True(t, ok, "hot")
	assert.Equal(t, chunk(2, 990), buf[:n])
	whole, ok := s.Load("1")
	require.True(t, ok, "hot")
	assert.Equal(t, chunk(1, 1000), whole)
	_, ok = s.ReadAt("0", buf, 0)
	assert.False(t, ok, "cooled: read from its file, which is gone")

	s.Put("3", chunk(3, 1000)) // evicts 2, the least recently read, and its hot copy
	assert.False(t, s.Has("2"))
	_, ok = s.ReadAt("1", buf, 0)
	assert.True(t, ok, "still hot: the evicted chunk's copy made room")
	n, ok = s.ReadAt("3", buf, 0)
	require.True(t, ok)
	assert.Equal(t, chunk(3, 1000), buf[:n])
	assert.EqualValues(t, 2000, s.DropMemory(), "hot bytes stay within MemoryBytes")

	small := Open(Config{Dir: t.TempDir(), BudgetBytes: 1000, MemoryBytes: 2000})
	t.Cleanup(func() { require.NoError(t, small.Close()) })
	small.Put("a", chunk(1, 1000))
	small.Put("b", chunk(2, 1000)) // evicts a, and its hot copy with it
	assert.EqualValues(t, 1000, small.DropMemory())
}

// TestChunkFilesWhole: chunk files hold exactly the bytes put, whatever
// their length against O_DIRECT's alignment and buffer and wherever they
// sit in memory (page-aligned bytes are written from where they are, the
// rest through the aligned buffer), written direct or (a file system
// that refuses O_DIRECT) buffered.
func TestChunkFilesWhole(t *testing.T) {
	sizes := []int{1, directAlign - 1, directAlign, 3*directAlign + 5, directPiece, directPiece + 1, 2*directPiece + 123}
	for _, buffered := range []bool{false, true} {
		for _, shift := range []int{0, 1} {
			for _, size := range sizes {
				t.Run(fmt.Sprintf("buffered=%v/shift=%d/%d", buffered, shift, size), func(t *testing.T) {
					chunkFileWhole(t, buffered, shift, size)
				})
			}
		}
	}
}

// chunkFileWhole puts size bytes that start shift bytes past a page
// boundary and checks the file and a Load of it.
func chunkFileWhole(t *testing.T, buffered bool, shift, size int) {
	s := Open(Config{Dir: t.TempDir(), BudgetBytes: 4 << 20})
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	s.direct.off.Store(buffered)
	raw := make([]byte, size+2*directAlign)
	start := (directAlign-int(uintptrOf(raw)%directAlign))%directAlign + shift
	data := raw[start : start+size]
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	s.Put("k", data)
	require.False(t, s.Hot("k"), "MemoryBytes 0: nothing hot")
	assert.Equal(t, buffered, s.direct.off.Load(), "written direct unless told otherwise")
	st, err := os.Stat(s.fileOf("k"))
	require.NoError(t, err)
	assert.EqualValues(t, size, st.Size())
	got, ok := s.Load("k")
	require.True(t, ok)
	assert.True(t, bytes.Equal(data, got))
	assert.Zero(t, s.Stats().Failures)
}
