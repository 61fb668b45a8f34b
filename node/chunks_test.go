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

// lyingParent answers chunk requests with bytes of another version or
// length than asked.
type lyingParent struct{ res op.Result }

func (p lyingParent) Call(_ context.Context, o op.Op, _ string) (op.Result, error) {
	if o == op.IsReady {
		return op.Result{Ready: true}, nil
	}
	return p.res, nil
}

// A parent's chunk of another version or length is never stored nor
// served: the reader gets EIO, and nothing is held.
func TestChunkOfAnotherVersionIsRejected(t *testing.T) {
	v := op.Version{Ino: 7, Size: 100, MtimeNs: 1, CtimeNs: 2}
	req := op.ChunkReq{Path: "/lib.so", Version: v, Index: 0, Bytes: 64}
	other := v
	other.CtimeNs = 3
	for name, res := range map[string]op.Result{
		"another version": {Attr: op.Attr{Ino: 7, Size: 100, MtimeNs: 1, CtimeNs: 3}, Data: make([]byte, 64)},
		"short":           {Attr: op.Attr{Ino: 7, Size: 100, MtimeNs: 1, CtimeNs: 2}, Data: make([]byte, 63)},
	} {
		t.Run(name, func(t *testing.T) {
			store := spill.Open(spill.Config{MemoryBytes: 1 << 20})
			n, err := New(Config{Rank: 1, Cache: newCache(), Parent: lyingParent{res}, Chunks: store})
			require.NoError(t, err)
			n.MarkRegistered()
			require.NoError(t, n.AwaitParent(context.Background()))
			buf := make([]byte, 64)
			_, errno := n.ReadChunk(context.Background(), req, buf, 0)
			assert.Equal(t, syscall.EIO, errno)
			assert.False(t, store.Has(req.Key()))
			assert.Equal(t, syscall.EIO, n.Get(context.Background(), op.Chunk, req.Encode()).Errno)
			assert.EqualValues(t, 2, n.Stats().Chunks.Rejected)
		})
	}
}

// Through a chain, a chunk is read from the backend once and fetched
// once per node, and a changed file answers ESTALE at every hop.
func TestChunkChain(t *testing.T) {
	dir := sourceDir(t)
	root := newRoot(t, dir)
	root.chunks = newChunkState(spill.Open(spill.Config{MemoryBytes: 1 << 20}), 0, 4)
	mid := newChild(t, 1, &direct{n: root})
	mid.chunks = newChunkState(spill.Open(spill.Config{MemoryBytes: 1 << 20}), 0, 4)
	leaf := newChild(t, 2, &direct{n: mid})
	leaf.chunks = newChunkState(spill.Open(spill.Config{MemoryBytes: 1 << 20}), 0, 4)

	attr := leaf.Get(context.Background(), op.Getattr, "/pkg/__init__.py").Attr
	req := op.ChunkReq{Path: "/pkg/__init__.py", Version: op.VersionOf(attr), Index: 0, Bytes: 4}
	for range 3 {
		buf := make([]byte, 4)
		m, errno := leaf.ReadChunk(context.Background(), req, buf, 0)
		require.Zero(t, errno)
		assert.Equal(t, "x = ", string(buf[:m]))
	}
	for _, n := range []*Node{root, mid, leaf} {
		assert.EqualValues(t, 1, n.Stats().Chunks.Fetched)
	}
	assert.EqualValues(t, 1, root.Stats().Op(op.Chunk).BackendOps)

	other := req
	other.Bytes = 8
	assert.Equal(t, syscall.EINVAL, mid.Get(context.Background(), op.Chunk, other.Encode()).Errno, "another chunk size")
	_, errno := leaf.ReadChunk(context.Background(), other, make([]byte, 4), 0)
	assert.Equal(t, syscall.EINVAL, errno)

	stale := req
	stale.Version.MtimeNs++
	_, errno = leaf.ReadChunk(context.Background(), stale, make([]byte, 4), 0)
	assert.Equal(t, syscall.ESTALE, errno)
	for _, n := range []*Node{root, mid, leaf} {
		assert.EqualValues(t, 1, n.Stats().Chunks.Stale)
	}
}

// TestChunkFile: a leaf with its chunk store on disk hands over the
// chunk's file (fetched through the tree once), with the chunk's bytes;
// a store in memory, or one holding the chunk hot, hands over nothing
// (the caller copies), and a changed file answers ESTALE.
func TestChunkFile(t *testing.T) {
	dir := sourceDir(t)
	root := newRoot(t, dir)
	root.chunks = newChunkState(spill.Open(spill.Config{MemoryBytes: 1 << 20}), 0, 4)
	leaf := newChild(t, 1, &direct{n: root})
	disk := spill.Open(spill.Config{Dir: t.TempDir(), BudgetBytes: 1 << 20}) // nothing hot
	t.Cleanup(func() { require.NoError(t, disk.Close()) })
	leaf.chunks = newChunkState(disk, 0, 4)

	attr := leaf.Get(context.Background(), op.Getattr, "/pkg/__init__.py").Attr
	req := op.ChunkReq{Path: "/pkg/__init__.py", Version: op.VersionOf(attr), Index: 0, Bytes: 4}
	for range 2 {
		f, errno := leaf.ChunkFile(context.Background(), req, 0, 4)
		require.Zero(t, errno)
		require.NotNil(t, f)
		buf := make([]byte, 4)
		_, err := f.ReadAt(buf, 0)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		assert.Equal(t, "x = ", string(buf))
	}
	assert.EqualValues(t, 1, leaf.Stats().Chunks.Fetched)
	assert.EqualValues(t, 8, leaf.Stats().Chunks.LocalBytes)

	f, errno := root.ChunkFile(context.Background(), req, 0, 4)
	assert.Zero(t, errno)
	assert.Nil(t, f, "a store in memory has no file to hand over")

	hot := newChild(t, 2, &direct{n: root})
	hotStore := spill.Open(spill.Config{Dir: t.TempDir(), BudgetBytes: 1 << 20, MemoryBytes: 1 << 20})
	t.Cleanup(func() { require.NoError(t, hotStore.Close()) })
	hot.chunks = newChunkState(hotStore, 0, 4)
	for range 2 {
		f, errno = hot.ChunkFile(context.Background(), req, 0, 4)
		assert.Zero(t, errno)
		assert.Nil(t, f, "a hot chunk is copied from memory")
	}
	buf := make([]byte, 4)
	m, errno := hot.ReadChunk(context.Background(), req, buf, 0)
	require.Zero(t, errno)
	assert.Equal(t, "x = ", string(buf[:m]))
	assert.EqualValues(t, 1, hot.Stats().Chunks.Fetched)

	stale := req
	stale.Version.MtimeNs++
	_, errno = leaf.ChunkFile(context.Background(), stale, 0, 4)
	assert.Equal(t, syscall.ESTALE, errno)
}
