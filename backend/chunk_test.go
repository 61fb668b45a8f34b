package backend

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

func TestChunkReadsOneVersion(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789"), 1000) // 10,000 bytes
	host := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(host, data, 0o644))
	b, err := New(Config{Target: dir, Parallel: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	attr := b.Do(ctx, op.Getattr, "/big").Attr
	v := op.VersionOf(attr)

	var got []byte
	for i := range op.Chunks(v.Size, 4096) {
		req := op.ChunkReq{Path: "/big", Version: v, Index: i, Bytes: 4096}
		r := b.Do(ctx, op.Chunk, req.Encode())
		require.Zero(t, r.Errno, "chunk %d", i)
		require.Len(t, r.Data, int(req.Len()))
		require.True(t, op.VersionOf(r.Attr).SameBytes(v))
		got = append(got, r.Data...)
	}
	require.Equal(t, data, got)
	require.Equal(t, int64(len(data)), b.ChunkBytes())

	// Another version at the path: ESTALE, never its bytes.
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, os.WriteFile(host+".new", bytes.Repeat([]byte("x"), 10000), 0o644))
	require.NoError(t, os.Rename(host+".new", host))
	r := b.Chunk(ctx, op.ChunkReq{Path: "/big", Version: v, Index: 0, Bytes: 4096})
	require.Equal(t, syscall.ESTALE, r.Errno)
	require.NoError(t, os.Remove(host))
	r = b.Chunk(ctx, op.ChunkReq{Path: "/big", Version: v, Index: 0, Bytes: 4096})
	require.Equal(t, syscall.ESTALE, r.Errno)

	// A symlink is never followed; a request that does not decode is EINVAL.
	require.NoError(t, os.Symlink("/etc/passwd", host))
	r = b.Chunk(ctx, op.ChunkReq{Path: "/big", Version: v, Index: 0, Bytes: 4096})
	require.Equal(t, syscall.ELOOP, r.Errno)
	require.Equal(t, syscall.EINVAL, b.Do(ctx, op.Chunk, "/big").Errno)
}
