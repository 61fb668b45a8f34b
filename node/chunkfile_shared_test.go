package node

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/spill"
)

// A chunk held in its version's shared spill file (page-aligned, not the
// last) cannot be handed over as a file of its own: ChunkFile says so
// (nil, no errno) without a miss and without loading the whole chunk
// from disk through a flight, which the reader's copy then did again
// (one chunk read from disk per FUSE read of a cold chunk).
func TestChunkFileOfSharedChunkLoadsNothing(t *testing.T) {
	const cb = 4096
	dir := t.TempDir()
	content := make([]byte, 3*cb)
	_, _ = rand.Read(content)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big"), content, 0o644))
	root := newRoot(t, dir)
	root.chunks = newChunkState(spill.Open(spill.Config{MemoryBytes: 1 << 20}), 0, cb)
	leaf := newChild(t, 1, &direct{n: root})
	disk := spill.Open(spill.Config{Dir: t.TempDir(), BudgetBytes: 1 << 20}) // nothing hot
	t.Cleanup(func() { require.NoError(t, disk.Close()) })
	leaf.chunks = newChunkState(disk, 0, cb)

	attr := leaf.Get(context.Background(), op.Getattr, "/big").Attr
	req := op.ChunkReq{Path: "/big", Version: op.VersionOf(attr), Index: 1, Bytes: cb}
	buf := make([]byte, cb)
	m, errno := leaf.ReadChunk(context.Background(), req, buf, 0)
	require.Zero(t, errno)
	require.Equal(t, content[cb:2*cb], buf[:m])
	require.True(t, disk.Has(req.Key()))
	require.False(t, disk.Hot(req.Key()))

	misses, hits := leaf.Stats().Op(op.Chunk).Misses, disk.Stats().Hits
	f, errno := leaf.ChunkFile(context.Background(), req, 100, 1000)
	require.Zero(t, errno)
	require.Nil(t, f, "a chunk in a shared file is not handed over")
	assert.Equal(t, misses, leaf.Stats().Op(op.Chunk).Misses, "a held chunk is no miss")
	assert.Equal(t, hits, disk.Stats().Hits, "nothing read from the spill file")

	m, errno = leaf.ReadChunk(context.Background(), req, buf[:1000], 100)
	require.Zero(t, errno)
	assert.Equal(t, content[cb+100:cb+1100], buf[:m])
	assert.EqualValues(t, 1, leaf.Stats().Chunks.Fetched)
}
