package backend

import (
	"context"
	"fmt"
	"syscall"

	"github.com/bytedance/gopkg/lang/dirtmake"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/op"
)

// Chunk reads one chunk of the version req names: it opens the file
// beneath the target (never through a symlink), checks with fstat that
// the descriptor is that version before and after reading, and answers
// ESTALE when it is another one (or none: the file changed or went away),
// so the tree never holds a chunk of a version it was not asked for. The
// answer carries the stat it was read under. A file that is not regular
// answers as Read does (ELOOP, EISDIR, EINVAL).
func (b *Backend) Chunk(ctx context.Context, req op.ChunkReq) op.Result {
	if len(b.guard) > 0 && Guarded(HostPath(b.target, req.Path), b.guard) {
		return op.Fail(syscall.ENOENT)
	}
	if req.Path == "/" {
		return op.Fail(syscall.EISDIR)
	}
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return op.Fail(syscall.EINTR)
	}
	defer func() { <-b.slots }()
	b.ops[op.Chunk].Add(1)
	var r op.Result
	if err := b.rootConn.Control(func(fd uintptr) { r = b.readChunk(int(fd), req) }); err != nil {
		return b.eio(op.Chunk, req.Path, fmt.Errorf("target directory closed (the node is stopping): %w", err))
	}
	if r.OK() {
		b.chunkBytes.Add(int64(len(r.Data)))
	}
	return r
}

// ChunkBytes is how many bytes Chunk has read from the backing file system.
func (b *Backend) ChunkBytes() int64 { return b.chunkBytes.Load() }

func (b *Backend) readChunk(root int, req op.ChunkReq) op.Result {
	dir, name, done, err := b.parent(root, req.Path)
	if err != nil {
		return b.fail(op.Chunk, req.Path, err)
	}
	defer done()
	fd, err := openNoFollow(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		if osutil.Errno(err) != syscall.ENOENT {
			return b.fail(op.Chunk, req.Path, err)
		}
		return op.Fail(syscall.ESTALE) // the version asked for is gone
	}
	defer unix.Close(fd)
	var before unix.Stat_t
	if err := osutil.RetryEINTR(func() error { return unix.Fstat(fd, &before) }); err != nil {
		return b.fail(op.Chunk, req.Path, fmt.Errorf("fstat: %w", err))
	}
	if errno := readable(&before, before.Size); errno != 0 {
		return op.Fail(errno)
	}
	if !op.VersionOf(attrOf(&before)).SameBytes(req.Version) {
		return op.Fail(syscall.ESTALE)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, 0); err != nil {
		return b.fail(op.Chunk, req.Path, fmt.Errorf("fcntl: %w", err))
	}
	// Not zeroed: answered only if preadFull filled every byte.
	data := dirtmake.Bytes(int(req.Len()), int(req.Len()))
	n, err := preadFull(fd, data, req.Off())
	if err != nil {
		return b.fail(op.Chunk, req.Path, fmt.Errorf("read chunk %d at %d: %w", req.Index, req.Off()+int64(n), err))
	}
	var after unix.Stat_t
	if err := osutil.RetryEINTR(func() error { return unix.Fstat(fd, &after) }); err != nil {
		return b.fail(op.Chunk, req.Path, fmt.Errorf("fstat: %w", err))
	}
	// The torn-read guard: a write during the read moves mtime or ctime
	// (or the size); those bytes are never served.
	if n != len(data) || !op.VersionOf(attrOf(&after)).SameBytes(req.Version) {
		return op.Fail(syscall.ESTALE)
	}
	return op.Result{Attr: attrOf(&after), Data: data}
}

// preadFull reads until buf is full or end of file.
func preadFull(fd int, buf []byte, off int64) (int, error) {
	n := 0
	for n < len(buf) {
		var m int
		err := osutil.RetryEINTR(func() (err error) { m, err = unix.Pread(fd, buf[n:], off+int64(n)); return err })
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}
