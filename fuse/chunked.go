package fuse

import (
	"context"
	"sync/atomic"
	"syscall"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/op"
)

// ChunkSource reads one chunk of one version of a large file (node.Node):
// off is within the chunk. ESTALE means the file is no longer that
// version.
type ChunkSource interface {
	ReadChunk(ctx context.Context, req op.ChunkReq, dest []byte, off int64) (int, syscall.Errno)
}

// ChunkedFiles serves files over MaxCacheable in chunks through the tree:
// each node fetches a chunk once from its parent (the root from the
// backing file system), keeps it in its chunk store and serves it to its
// children and its own reads. Opening costs nothing: the version is the
// view inode's (attr), and every chunk is asked for by that version, so
// a file that changes yields ESTALE at the first chunk no node holds,
// never a mix of versions.
type ChunkedFiles struct {
	Source     ChunkSource
	ChunkBytes int64
	Opened     *atomic.Int64 // counts Opens; nil ok
}

// Open returns the content of attr's version of viewPath.
func (c ChunkedFiles) Open(_ context.Context, viewPath string, attr op.Attr) (Content, syscall.Errno) {
	if c.ChunkBytes <= 0 || c.Source == nil {
		return nil, syscall.EIO
	}
	if c.Opened != nil {
		c.Opened.Add(1)
	}
	return chunkedContent{files: c, path: viewPath, version: op.VersionOf(attr)}, 0
}

type chunkedContent struct {
	files   ChunkedFiles
	path    string
	version op.Version
}

// Read fills dest from the chunks covering [off, off+len(dest)), up to
// the end of the file.
func (c chunkedContent) Read(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	if off < 0 {
		return nil, syscall.EINVAL
	}
	size := c.version.Size
	if off >= size {
		return gofuse.ReadResultData(nil), 0
	}
	dest = dest[:min(int64(len(dest)), size-off)]
	cb := c.files.ChunkBytes
	n := 0
	for n < len(dest) {
		pos := off + int64(n)
		req := op.ChunkReq{Path: c.path, Version: c.version, Index: pos / cb, Bytes: cb}
		within := pos - req.Off()
		end := min(int64(len(dest)-n), req.Len()-within)
		m, errno := c.files.Source.ReadChunk(ctx, req, dest[n:n+int(end)], within)
		if errno != 0 {
			return nil, errno
		}
		if int64(m) != end {
			return nil, syscall.EIO // a chunk shorter than its version says
		}
		n += m
	}
	return gofuse.ReadResultData(dest[:n]), 0
}

func (chunkedContent) Release() syscall.Errno { return 0 }

// KernelOffersPassthrough reports whether the kernel offered FUSE
// passthrough (backing files) when this mount started. Copper does not
// use it (see docs/DESIGN.md, large files); stats show the offer next
// to the path in use.
func (m *Mounted) KernelOffersPassthrough() bool {
	return m.server.KernelSettings().Flags64()&gofuse.CAP_PASSTHROUGH != 0
}
