package spill

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testChunk = 2 * directAlign

// pattern is chunk i of group g: bytes no other chunk has at that place.
func pattern(g string, i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(j*31 + i*7 + len(g) + j>>9)
	}
	return b
}

// chunkFiles lists the run directory's chunk files.
func chunkFiles(t *testing.T, s *Store) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(s.Dir(), "[0-9a-f]*"))
	require.NoError(t, err)
	return names
}

// allocated is the bytes name holds on disk.
func allocated(t *testing.T, name string) int64 {
	t.Helper()
	st, err := os.Stat(name)
	require.NoError(t, err)
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestSharedFile: the aligned chunks of one group share one file, each
// read back whole and in part; an evicted chunk's range is punched out
// of it (the disk holds what the budget counts) and the file goes with
// its last chunk. A short last chunk gets a file of its own, which alone
// is handed over by Open.
func TestSharedFile(t *testing.T) {
	s := Open(Config{Dir: t.TempDir(), BudgetBytes: 3 * testChunk})
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	key := func(i int) string { return fmt.Sprint("g/", i) }
	for i := range 5 {
		s.PutAt(key(i), "g", int64(i*testChunk), pattern("g", i, testChunk))
	}
	require.Len(t, chunkFiles(t, s), 1, "one file for the group")
	name := s.fileOf(key(4))
	assert.LessOrEqual(t, allocated(t, name), int64(3*testChunk), "evicted ranges are punched out")
	for i := range 5 {
		if i < 2 {
			assert.False(t, s.Has(key(i)), "chunk %d evicted", i)
			continue
		}
		got, ok := s.Load(key(i))
		require.True(t, ok, "chunk %d", i)
		require.True(t, bytes.Equal(pattern("g", i, testChunk), got), "chunk %d", i)
		part := make([]byte, 100)
		n, ok := s.ReadAt(key(i), part, testChunk-50)
		require.True(t, ok)
		assert.Equal(t, pattern("g", i, testChunk)[testChunk-50:], part[:n], "the end of chunk %d", i)
		_, _, ok = s.Open(key(i))
		assert.False(t, ok, "a chunk in a shared file is not handed over")
	}

	s.PutAt(key(5), "g", 5*testChunk, pattern("g", 5, 100))
	assert.NotEqual(t, name, s.fileOf(key(5)), "a short last chunk has a file of its own")
	f, size, ok := s.Open(key(5))
	require.True(t, ok)
	assert.EqualValues(t, 100, size)
	require.NoError(t, f.Close())

	for i := range 3 { // another group pushes g out
		s.PutAt(fmt.Sprint("h/", i), "h", int64(i*testChunk), pattern("h", i, testChunk))
	}
	assert.NoFileExists(t, name, "the file goes with its last chunk")
	assert.Len(t, chunkFiles(t, s), 1)
}

// TestSharedFileReadsNeverMixed: readers of a shared file's chunks while
// new chunks of it keep evicting (punching) others get every chunk's own
// bytes or a miss, never a punched range's zeros.
func TestSharedFileReadsNeverMixed(t *testing.T) {
	s := Open(Config{Dir: t.TempDir(), BudgetBytes: 4 * testChunk})
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	const chunks = 64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			buf := make([]byte, testChunk)
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rng.IntN(chunks)
				off := rng.IntN(testChunk)
				n, ok := s.ReadAt(fmt.Sprint("g/", i), buf, int64(off))
				if ok && !bytes.Equal(pattern("g", i, testChunk)[off:], buf[:n]) {
					t.Errorf("chunk %d at %d: wrong bytes", i, off)
					return
				}
			}
		}()
	}
	for round := range 20 {
		for i := range chunks {
			s.PutAt(fmt.Sprint("g/", i), "g", int64(i*testChunk), pattern("g", i, testChunk))
		}
		if round%5 == 0 {
			s.DropMemory()
		}
	}
	close(stop)
	wg.Wait()
	assert.Zero(t, s.Stats().Failures)
}

// TestSharedFileWithoutHoles: where a hole cannot be punched (here: an
// append-only file) the file's chunks are forgotten, never read as the
// bytes left in place of an evicted one, and chunks get files of their
// own from then on.
func TestSharedFileWithoutHoles(t *testing.T) {
	s := Open(Config{Dir: t.TempDir(), BudgetBytes: 3 * testChunk})
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	for i := range 3 {
		s.PutAt(fmt.Sprint("g/", i), "g", int64(i*testChunk), pattern("g", i, testChunk))
	}
	name := s.fileOf("g/0")
	if out, err := exec.Command("chattr", "+a", name).CombinedOutput(); err != nil {
		t.Skipf("chattr +a %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-a", name).Run() })
	s.PutAt("h/0", "h", 0, pattern("h", 0, testChunk)) // evicts g/0: the punch fails
	for i := range 3 {
		assert.False(t, s.Has(fmt.Sprint("g/", i)), "chunk %d of the file given up", i)
	}
	require.NoError(t, exec.Command("chattr", "-a", name).Run())
	got, ok := s.Load("h/0")
	require.True(t, ok)
	assert.True(t, bytes.Equal(pattern("h", 0, testChunk), got))
	s.PutAt("h/1", "h", testChunk, pattern("h", 1, testChunk))
	assert.NotEqual(t, s.fileOf("h/0"), s.fileOf("h/1"), "one file per chunk now")
	_, _, ok = s.Open("h/1")
	assert.True(t, ok, "a chunk in a file of its own")
	assert.EqualValues(t, 2*testChunk, s.Stats().Bytes)
	assert.Zero(t, s.Stats().Failures, "the disk is still in use")
}

// TestSharedFileRemovedBehindTheStore: a shared file removed by someone
// else is never made anew under the chunks counted in it: the next write
// into it fails and the store gives the disk up (one warning), keeping
// chunks in memory.
func TestSharedFileRemovedBehindTheStore(t *testing.T) {
	s := Open(Config{Dir: t.TempDir(), BudgetBytes: 4 * testChunk, MemoryBytes: 4 * testChunk})
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	s.PutAt("g/0", "g", 0, pattern("g", 0, testChunk))
	s.DropMemory()
	require.NoError(t, os.Remove(s.fileOf("g/0")))
	s.PutAt("g/1", "g", testChunk, pattern("g", 1, testChunk))
	assert.Equal(t, "memory", s.Stats().Mode)
	assert.EqualValues(t, 1, s.Stats().Failures)
	assert.False(t, s.Has("g/0"))
	got, ok := s.Load("g/1")
	require.True(t, ok)
	assert.True(t, bytes.Equal(pattern("g", 1, testChunk), got))
}
