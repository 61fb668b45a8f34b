package fuse

import (
	"bytes"
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// lendingSource is a storeSource that lends the chunks its store keeps
// in memory, as node.Node does.
type lendingSource struct {
	*storeSource
	lent atomic.Int64
}

func (s *lendingSource) ChunkData(_ context.Context, req op.ChunkReq, off int64, size int) ([]byte, syscall.Errno) {
	s.fetch(req)
	data, ok := s.store.Memory(req.Key())
	if !ok {
		return nil, 0
	}
	s.lent.Add(1)
	return data[off:min(off+int64(size), int64(len(data)))], 0
}

// TestChunkReadsLentFromMemory: reads within one chunk are answered with
// the bytes of the chunk the source keeps in memory, reads across chunks
// are copied, and a chunk no longer in memory is copied from its file;
// every byte read through the mount is the file's, at chunk boundaries
// and at random offsets.
func TestChunkReadsLentFromMemory(t *testing.T) {
	const chunk = 1 << 20
	for _, tc := range []struct {
		name    string
		size    int64
		maxRead int
		hot     bool
	}{
		{"many chunks, 1 MiB reads", 5*chunk + 4321, 1 << 20, true},
		{"128 KiB reads", 3*chunk - 1, 128 << 10, true},
		{"one chunk", chunk, 1 << 20, true},
		{"nothing in memory", 3*chunk + 1, 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src *lendingSource
			p, _, want := mountChunkedWith(t, tc.size, chunk, false, tc.maxRead, func(s *storeSource) ChunkSource {
				src = &lendingSource{storeSource: s}
				return src
			}, !tc.hot)
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "bytes of %s", p)
			if tc.hot {
				assert.Positive(t, src.lent.Load(), "reads answered with the chunk's own bytes")
			} else {
				assert.Zero(t, src.lent.Load(), "nothing in memory to lend")
				assert.Positive(t, src.copies.Load())
			}
			requireReadsAt(t, p, want, 0, 1, chunk-10, chunk, 2*chunk-1, tc.size/3, tc.size-7)
		})
	}
}
