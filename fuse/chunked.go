package fuse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
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

// ChunkFileSource is a ChunkSource that can hand over the file holding
// a chunk (node.Node, with a chunk store on disk), so that a read is
// spliced from it into /dev/fuse rather than copied through a buffer.
// A nil file with no errno: read the chunk with ReadChunk instead.
type ChunkFileSource interface {
	ChunkSource
	ChunkFile(ctx context.Context, req op.ChunkReq, off int64, size int) (*os.File, syscall.Errno)
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
	// Splice lets reads that lie within one chunk and fit a pipe
	// (maxSpliceRead) be spliced from the chunk's file when Source is a
	// ChunkFileSource; go-fuse copies them itself if splicing fails.
	Splice bool
	// Logger gets a line for every EIO a read answers here (nil:
	// discard): the application sees only the errno.
	Logger *slog.Logger
}

// maxSpliceRead is the largest read go-fuse can splice: it sends the
// reply header and the data through one pipe of at most
// /proc/sys/fs/pipe-max-size (1 MiB by default; go-fuse will not go
// beyond it even for root) and wants a page to spare. A larger read is
// copied.
const maxSpliceRead = 1<<20 - 2*4096

// Open returns the content of attr's version of viewPath.
func (c ChunkedFiles) Open(_ context.Context, viewPath string, attr op.Attr) (Content, syscall.Errno) {
	if c.ChunkBytes <= 0 || c.Source == nil {
		logEIO(c.Logger, viewPath, 0, "large-file provider not set up", "chunk_bytes", c.ChunkBytes, "source", c.Source != nil)
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
	if r, errno, ok := c.spliced(ctx, off, len(dest)); ok {
		return r, errno
	}
	if r, errno, ok := c.lent(ctx, off, len(dest)); ok {
		return r, errno
	}
	n := 0
	for n < len(dest) {
		pos := off + int64(n)
		req := op.ChunkReq{Path: c.path, Version: c.version, Index: pos / cb, Bytes: cb}
		within := pos - req.Off()
		end := min(int64(len(dest)-n), req.Len()-within)
		m, errno := c.files.Source.ReadChunk(ctx, req, dest[n:n+int(end)], within)
		if errno == syscall.EIO {
			// The node logged its own cause (a parent that failed or
			// answered another version, a backend error) where it knew one.
			logEIO(c.files.Logger, c.path, pos, "chunk read failed (see the node's log for the cause)", "chunk", req.Index)
		}
		if errno != 0 {
			return nil, errno
		}
		if int64(m) != end {
			logEIO(c.files.Logger, c.path, pos, "chunk shorter than its version says", "chunk", req.Index,
				"got_bytes", m, "want_bytes", end, "size", c.version.Size)
			return nil, syscall.EIO
		}
		n += m
	}
	return bytesResult(dest[:n]), 0
}

// chunkFailed is the answer to a read whose chunk the source could not
// get: its errno, an EIO logged with the path and offset.
func (c chunkedContent) chunkFailed(off int64, req op.ChunkReq, errno syscall.Errno) (gofuse.ReadResult, syscall.Errno, bool) {
	if errno == syscall.EIO {
		logEIO(c.files.Logger, c.path, off, "chunk read failed (see the node's log for the cause)", "chunk", req.Index)
	}
	return nil, errno, true
}

// spliced answers a read within one chunk with the chunk's file, if the
// source can hand it over; ok false: copy instead. The file is held
// open until go-fuse has sent the reply, so the bytes are those of the
// chunk (and version) asked for even if the store evicts it meanwhile.
// The source's errno is the read's: the copy would fetch the chunk the
// same way, and asking again cost every failed read a second request up
// the tree (ESTALE from the root; EIO after every ancestor was tried).
func (c chunkedContent) spliced(ctx context.Context, off int64, n int) (gofuse.ReadResult, syscall.Errno, bool) {
	src, ok := c.files.Source.(ChunkFileSource)
	if !c.files.Splice || !ok || n > maxSpliceRead {
		return nil, 0, false
	}
	req, within, ok := c.oneChunk(off, n)
	if !ok {
		return nil, 0, false
	}
	f, errno := src.ChunkFile(ctx, req, within, n)
	switch {
	case errno != 0:
		return c.chunkFailed(off, req, errno)
	case f == nil:
		return nil, 0, false
	}
	return &chunkFileResult{f: f, off: within, n: n, log: c.files.Logger, path: c.path, fileOff: off}, 0, true
}

// oneChunk is the chunk a read of n bytes at off lies within, and the
// read's offset in it; ok false for an empty read or one that spans
// chunks (or runs past the file's last).
func (c chunkedContent) oneChunk(off int64, n int) (req op.ChunkReq, within int64, ok bool) {
	cb := c.files.ChunkBytes
	if n == 0 || off/cb != (off+int64(n)-1)/cb {
		return op.ChunkReq{}, 0, false
	}
	req = op.ChunkReq{Path: c.path, Version: c.version, Index: off / cb, Bytes: cb}
	within = off - req.Off()
	return req, within, within+int64(n) <= req.Len()
}

// chunkFileResult is a read answered from a chunk file: go-fuse splices
// it (Seekable) or, failing that, reads it (Bytes); Done closes it.
type chunkFileResult struct {
	f   *os.File
	off int64
	n   int

	log     *slog.Logger // for the line of a failed read
	path    string
	fileOff int64
}

func (r *chunkFileResult) Seekable() (uintptr, int64, int) { return r.f.Fd(), r.off, r.n }
func (r *chunkFileResult) Size() int                       { return r.n }
func (r *chunkFileResult) Done()                           { _ = r.f.Close() }

// Bytes reads the whole range: a chunk file is never shorter than its
// version says, so a short read is an error, not an end of file.
func (r *chunkFileResult) Bytes(buf []byte) ([]byte, gofuse.Status) {
	if cap(buf) < r.n {
		buf = make([]byte, r.n)
	}
	buf = buf[:r.n]
	if n, err := r.f.ReadAt(buf, r.off); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("chunk file %s ends %d bytes short: %w", r.f.Name(), r.n-n, err)
		}
		logEIO(r.log, r.path, r.fileOff, "reading the chunk file after the splice failed", "err", err)
		return nil, gofuse.EIO
	}
	return buf, gofuse.OK
}

// logEIO logs why a read of path at off answers EIO (nil log: not).
func logEIO(log *slog.Logger, path string, off int64, cause string, attrs ...any) {
	if log == nil {
		return
	}
	log.Error("large-file read answers EIO: "+cause, append([]any{"path", path, "offset", off}, attrs...)...)
}

func (chunkedContent) Release() syscall.Errno { return 0 }

// KernelOffersPassthrough reports whether the kernel offered FUSE
// passthrough (backing files) when this mount started. Copper does not
// use it (see docs/DESIGN.md, large files); stats show the offer next
// to the path in use.
func (m *Mounted) KernelOffersPassthrough() bool {
	return m.server.KernelSettings().Flags64()&gofuse.CAP_PASSTHROUGH != 0
}
