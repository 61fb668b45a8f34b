package fuse

import (
	"context"
	"syscall"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/op"
)

// ChunkDataSource is a ChunkSource that can lend the bytes of a chunk it
// keeps in memory (node.Node: a hot chunk, or one a fetch just brought),
// so that a read is answered from them rather than from a copy in the
// reply's buffer. A nil slice with no errno: read the chunk with
// ReadChunk instead. The bytes are never modified.
type ChunkDataSource interface {
	ChunkSource
	ChunkData(ctx context.Context, req op.ChunkReq, off int64, size int) ([]byte, syscall.Errno)
}

// lent answers a read within one chunk with the chunk's own bytes if
// the source lends them; ok false: copy instead. Cold sequential reads
// mostly land here (the chunk was just fetched, or read ahead and still
// hot), which spares copying every byte once more before go-fuse writes
// the reply to /dev/fuse.
func (c chunkedContent) lent(ctx context.Context, off int64, n int) (r gofuse.ReadResult, errno syscall.Errno, ok bool) {
	src, isSrc := c.files.Source.(ChunkDataSource)
	if !isSrc {
		return nil, 0, false
	}
	req, within, one := c.oneChunk(off, n)
	if !one {
		return nil, 0, false
	}
	data, errno := src.ChunkData(ctx, req, within, n)
	switch {
	case errno != 0:
		return c.chunkFailed(off, req, errno)
	case data == nil:
		return nil, 0, false
	case len(data) != n:
		logEIO(c.files.Logger, c.path, off, "chunk shorter than its version says", "chunk", req.Index,
			"got_bytes", len(data), "want_bytes", n, "size", c.version.Size)
		return nil, syscall.EIO, true
	}
	return gofuse.ReadResultData(data), 0, true
}
