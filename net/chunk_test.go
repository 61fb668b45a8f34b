package net

import (
	"bytes"
	"context"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// A chunk request travels as its encoding and reaches the handler
// checked; its answer (larger than inlineData: the tail write) comes back
// whole. A request no ChunkReq decodes to is answered without the handler.
func TestCallChunk(t *testing.T) {
	var handled atomic.Int32 // the handler runs on the server's goroutines
	s := startServer(t, func(_ context.Context, o op.Op, path string) op.Result {
		handled.Add(1)
		req, errno := op.DecodeChunkReq(path)
		if o != op.Chunk || errno != 0 {
			return op.Fail(syscall.EPROTO)
		}
		return op.Result{Attr: op.Attr{Ino: req.Version.Ino, Size: req.Version.Size},
			Data: bytes.Repeat([]byte{byte(req.Index)}, int(req.Len()))}
	}, Config{})
	c := dial(t, s.Addr(), Config{})
	req := op.ChunkReq{Path: "/lib/big.so", Version: op.Version{Ino: 5, Size: 300 << 10}, Index: 2, Bytes: 128 << 10}
	res, err := c.Call(callCtx(t), op.Chunk, req.Encode())
	require.NoError(t, err)
	require.Zero(t, res.Errno)
	assert.Equal(t, bytes.Repeat([]byte{2}, 44<<10), res.Data)
	assert.Equal(t, uint64(5), res.Attr.Ino)

	for _, bad := range []string{"/lib/big.so", "0:0:0:0:1:0:0:/x", "9:4:0:0:10:0:0:/x"} {
		res, err := c.Call(callCtx(t), op.Chunk, bad)
		require.NoError(t, err)
		assert.Equal(t, syscall.EINVAL, res.Errno, bad)
	}
	assert.EqualValues(t, 1, handled.Load())
}
