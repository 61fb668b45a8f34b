package node

import (
	"context"
	"syscall"

	"github.com/hpc-copper/copper/op"
)

// ChunkData returns size bytes of chunk req from off (within the chunk)
// without copying them, for a read through this node's mount that hands
// go-fuse the bytes themselves: the chunk the store keeps in memory (hot,
// or the memory fallback), or the one a fetch just brought. The bytes are
// the chunk's own and never modified. nil with no errno: the chunk is held
// only in its spill file; read it with ReadChunk, which preads it into the
// reply's buffer (a copy either way). ESTALE: the file is no longer req's
// version.
func (n *Node) ChunkData(ctx context.Context, req op.ChunkReq, off int64, size int) ([]byte, syscall.Errno) {
	c, errno := n.chunkRead(ctx, req, off, size)
	if errno != 0 {
		return nil, errno
	}
	key := req.Key()
	data, ok := c.store.Memory(key)
	switch {
	case ok:
		n.hits[op.Chunk].Add(1)
	case c.store.Has(key):
		return nil, 0
	default:
		n.misses[op.Chunk].Add(1)
		r := n.chunkFlight(ctx, req)
		if !r.OK() {
			return nil, r.Errno
		}
		data = r.Data
	}
	from := min(off, int64(len(data)))
	part := data[from:min(from+int64(size), int64(len(data)))]
	c.localBytes.Add(int64(len(part)))
	return part, 0
}

// chunkGroup names the file version req is a chunk of: the chunk store
// keeps a version's chunks in one file (spill.Store.PutAt). A chunk key
// starts with its index, so the "file:" prefix never meets one.
func chunkGroup(req op.ChunkReq) string {
	req.Index = 0
	return "file:" + req.Key()
}
