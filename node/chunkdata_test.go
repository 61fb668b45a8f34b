package node

import (
	"context"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/spill"
)

// TestChunkData: a node lends the bytes of a chunk it fetched or keeps in
// memory (hot, or the memory fallback), the part asked for, and lends
// nothing for a chunk held only in its spill file (the caller preads
// it); a changed file answers ESTALE. Every chunk is fetched once.
func TestChunkData(t *testing.T) {
	dir := sourceDir(t)
	root := newRoot(t, dir)
	root.chunks = newChunkState(spill.Open(spill.Config{MemoryBytes: 1 << 20}), 0, 4)
	attr := root.Get(context.Background(), op.Getattr, "/pkg/__init__.py").Attr
	req := op.ChunkReq{Path: "/pkg/__init__.py", Version: op.VersionOf(attr), Index: 0, Bytes: 4}

	for _, tc := range []struct {
		name   string
		store  func(t *testing.T) *spill.Store
		second string // what the second ChunkData of the chunk lends
	}{
		{"memory", func(*testing.T) *spill.Store { return spill.Open(spill.Config{MemoryBytes: 1 << 20}) }, "= "},
		{"disk, hot", func(t *testing.T) *spill.Store {
			return spill.Open(spill.Config{Dir: t.TempDir(), BudgetBytes: 1 << 20, MemoryBytes: 1 << 20})
		}, "= "},
		{"disk, nothing hot", func(t *testing.T) *spill.Store {
			return spill.Open(spill.Config{Dir: t.TempDir(), BudgetBytes: 1 << 20})
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := newChild(t, 1, &direct{n: root})
			store := tc.store(t)
			t.Cleanup(func() { require.NoError(t, store.Close()) })
			leaf.chunks = newChunkState(store, 0, 4)

			data, errno := leaf.ChunkData(context.Background(), req, 1, 2)
			require.Zero(t, errno)
			assert.Equal(t, " =", string(data), "the fetched chunk's bytes 1..3")
			data, errno = leaf.ChunkData(context.Background(), req, 2, 5)
			require.Zero(t, errno)
			assert.Equal(t, tc.second, string(data), "the held chunk's bytes from 2, to its end")
			if tc.second == "" {
				assert.Nil(t, data, "a chunk only on disk is not lent")
				buf := make([]byte, 4)
				m, errno := leaf.ReadChunk(context.Background(), req, buf, 0)
				require.Zero(t, errno)
				assert.Equal(t, "x = ", string(buf[:m]))
			}
			assert.EqualValues(t, 1, leaf.Stats().Chunks.Fetched)

			stale := req
			stale.Version.MtimeNs++
			_, errno = leaf.ChunkData(context.Background(), stale, 0, 4)
			assert.Equal(t, syscall.ESTALE, errno)
			_, errno = leaf.ChunkData(context.Background(), req, -1, 4)
			assert.Equal(t, syscall.EINVAL, errno)
		})
	}
}
