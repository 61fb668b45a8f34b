package fuse

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/spill"
)

// storeSource serves the chunks of one file from a real chunk store,
// fetching a chunk it does not hold from data, as a node does from its
// parent.
type storeSource struct {
	store             *spill.Store
	data              []byte
	files, copies     atomic.Int64 // reads answered with a chunk file / with bytes
	evictEveryOpen    bool         // drop the chunk right after handing out its file
	fetches           atomic.Int64
	budget, chunkSize int64
}

func (s *storeSource) fetch(req op.ChunkReq) {
	if !s.store.Has(req.Key()) {
		s.fetches.Add(1)
		s.store.Put(req.Key(), s.data[req.Off():req.Off()+req.Len()])
	}
}

func (s *storeSource) ReadChunk(_ context.Context, req op.ChunkReq, dest []byte, off int64) (int, syscall.Errno) {
	s.copies.Add(1)
	s.fetch(req)
	n, ok := s.store.ReadAt(req.Key(), dest, off)
	if !ok {
		n = copy(dest, s.data[req.Off()+off:req.Off()+req.Len()])
	}
	return n, 0
}

func (s *storeSource) ChunkFile(_ context.Context, req op.ChunkReq, _ int64, _ int) (*os.File, syscall.Errno) {
	s.fetch(req)
	f, _, ok := s.store.Open(req.Key())
	if !ok {
		return nil, 0
	}
	if s.evictEveryOpen {
		// Another chunk pushes this one out while the read is in flight:
		// the held file still has its bytes.
		other := req
		other.Index = -1 - req.Index
		s.store.Put(other.Key(), make([]byte, s.budget))
	}
	s.files.Add(1)
	return f, 0
}

// mountChunked mounts a tree with one file of size bytes served by a
// storeSource in chunks of chunkBytes.
func mountChunked(t *testing.T, size, chunkBytes int64, splice bool, maxRead int, edit func(*storeSource)) (string, *storeSource, []byte) {
	t.Helper()
	return mountChunkedWith(t, size, chunkBytes, splice, maxRead, func(s *storeSource) ChunkSource {
		if edit != nil {
			edit(s)
		}
		return s
	}, false)
}

// mountChunkedWith is mountChunked with the source wrap makes of the
// storeSource; cold: the store keeps no chunk in memory.
func mountChunkedWith(t *testing.T, size, chunkBytes int64, splice bool, maxRead int,
	wrap func(*storeSource) ChunkSource, cold bool) (string, *storeSource, []byte) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	require.NoError(t, os.MkdirAll(root, 0o755))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*13 + i>>16)
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "big.bin"), data, 0o644))
	budget := 4 * chunkBytes
	memory := budget
	if cold {
		memory = 0
	}
	src := &storeSource{data: data, budget: budget, chunkSize: chunkBytes,
		store: spill.Open(spill.Config{Dir: filepath.Join(t.TempDir(), "spill"), BudgetBytes: budget + chunkBytes, MemoryBytes: memory})}
	t.Cleanup(func() { require.NoError(t, src.store.Close()) })
	require.NotEmpty(t, src.store.Dir(), "the chunk store is on disk")
	source := wrap(src)
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) {
		o.MaxRead = maxRead
		o.MaxReadahead = maxRead
		o.LargeFiles = ChunkedFiles{Source: source, ChunkBytes: chunkBytes, Splice: splice}
	})
	return filepath.Join(m.Mountpoint(), "big.bin"), src, data
}

// TestChunkReadsSpliceFromTheStore: reads within one chunk are answered
// with the chunk's file (spliced by go-fuse), reads across chunks and
// over a pipe's size are copied, and either way every byte is the
// file's, at chunk boundaries and with the chunk evicted under the read.
func TestChunkReadsSpliceFromTheStore(t *testing.T) {
	const chunk = 1 << 20
	for _, tc := range []struct {
		name       string
		size       int64
		maxRead    int
		evict      bool
		wantSplice bool
	}{
		{"many chunks, 512 KiB reads", 5*chunk + 4321, 512 << 10, false, true},
		{"evicted under the read", 3*chunk + 1, 512 << 10, true, true},
		{"1 MiB reads do not fit a pipe", 3*chunk - 1, 1 << 20, false, false},
		{"one chunk", chunk, 128 << 10, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, src, want := mountChunked(t, tc.size, chunk, true, tc.maxRead, func(s *storeSource) { s.evictEveryOpen = tc.evict })
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "bytes of %s", p)
			if tc.wantSplice {
				assert.Positive(t, src.files.Load(), "reads answered with a chunk file")
			} else {
				assert.Zero(t, src.files.Load(), "reads answered with a chunk file")
				assert.Positive(t, src.copies.Load())
			}
			requireReadsAt(t, p, want, 0, chunk-10, chunk, 2*chunk-1, tc.size-7)
		})
	}
}

// requireReadsAt reads 100 bytes of p at each offset below its size —
// random reads, some across chunk boundaries — and compares them with
// want.
func requireReadsAt(t *testing.T, p string, want []byte, offsets ...int64) {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	for _, off := range offsets {
		if off >= int64(len(want)) {
			continue
		}
		buf := make([]byte, 100)
		n, err := f.ReadAt(buf, off)
		if err != io.EOF {
			require.NoError(t, err)
		}
		require.Equal(t, want[off:off+int64(n)], buf[:n], "at %d", off)
	}
}

// TestChunkReadThroughput logs MiB/s of a sequential read of a file
// held in the chunk store through a fresh mount (the FUSE page cache
// cold, the store's files in the host's page cache), copy vs splice,
// alternating. Numbers only: speed targets live in benchmarks.
func TestChunkReadThroughput(t *testing.T) {
	if os.Getenv("COPPER_CHUNK_THROUGHPUT") == "" {
		t.Skip("set COPPER_CHUNK_THROUGHPUT=1 to measure")
	}
	const size, chunk = 256 << 20, 4 << 20
	for round := range 3 {
		for _, v := range []struct {
			splice  bool
			maxRead int
		}{{false, 1 << 20}, {true, maxSpliceRead}, {false, maxSpliceRead}} {
			p, src, _ := mountChunked(t, size, chunk, v.splice, v.maxRead, func(s *storeSource) {})
			src.budget = size
			for i := range int64(size / chunk) {
				src.fetch(op.ChunkReq{Path: "/big.bin", Index: i, Bytes: chunk})
			}
			start := time.Now()
			f, err := os.Open(p)
			require.NoError(t, err)
			n, err := io.Copy(io.Discard, f)
			require.NoError(t, err)
			f.Close()
			fmt.Printf("round %d splice=%v max_read=%d: %.0f MiB/s (files %d copies %d)\n", round, v.splice, v.maxRead,
				float64(n)/(1<<20)/time.Since(start).Seconds(), src.files.Load(), src.copies.Load())
		}
	}
}

// failingSource answers every chunk, handed over or copied, with errno,
// and counts how it was asked.
type failingSource struct {
	errno         syscall.Errno
	files, copies atomic.Int64
}

func (s *failingSource) ReadChunk(context.Context, op.ChunkReq, []byte, int64) (int, syscall.Errno) {
	s.copies.Add(1)
	return 0, s.errno
}

func (s *failingSource) ChunkFile(context.Context, op.ChunkReq, int64, int) (*os.File, syscall.Errno) {
	s.files.Add(1)
	return nil, s.errno
}

// TestFailedChunkFileIsTheReadsAnswer: a read whose chunk file could not
// be had (the file changed: ESTALE; no ancestor answered: EIO) fails
// with it, without asking for the chunk a second time to copy it.
func TestFailedChunkFileIsTheReadsAnswer(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ESTALE, syscall.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			src := &failingSource{errno: errno}
			p, _, _ := mountChunkedWith(t, 3<<20, 1<<20, true, 128<<10, func(*storeSource) ChunkSource { return src }, false)
			_, err := os.ReadFile(p)
			require.ErrorIs(t, err, syscall.EIO)
			assert.Positive(t, src.files.Load())
			assert.Zero(t, src.copies.Load(), "chunks asked for again to copy")
		})
	}
}
