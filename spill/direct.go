package spill

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Chunk files are written with O_DIRECT where the file system takes it:
// a buffered write copies every byte into fresh page-cache pages, which
// was half of a node's CPU in the large-file benchmark (8 nodes × 256
// MiB) and grows the page cache by every byte spilled, while a direct
// write hands the device the bytes from one small reused buffer. The
// chunks read right after they arrive are answered from memory (hot);
// a later read of a spilled one reads its file. A file system without
// O_DIRECT (tmpfs before Linux 6.6, some network file systems) gets
// buffered writes from the first refusal on.

// directAlign is the alignment O_DIRECT asks of offsets, lengths and
// buffers: a page covers the logical block sizes in use.
const directAlign = 4096

// directPiece is the reused buffer's size: chunk bytes not aligned in
// memory are copied into it and written a piece at a time.
const directPiece = 1 << 20

// directWriter writes chunk files with O_DIRECT, through one aligned
// buffer for bytes that are not aligned in memory; writes take turns on
// it (the device takes them one by one anyway).
type directWriter struct {
	mu  sync.Mutex
	buf []byte // directPiece bytes at a directAlign boundary; made on first use

	off atomic.Bool // O_DIRECT refused here: buffered writes from then on
}

// errNoDirect says the file system refused O_DIRECT: write buffered.
var errNoDirect = errors.New("O_DIRECT not supported")

// writeFile writes data at off of f's file (made by fileForLocked), and
// cuts a file of its own to the chunk's length (the last piece went out
// padded to the alignment); errNoDirect when the file system refuses
// O_DIRECT. No rename: a chunk is found only through the store's
// entries, added once the write is whole.
func (w *directWriter) writeFile(f *chunkFile, off int64, data []byte) error {
	fd, err := unix.Open(f.name, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_DIRECT, 0)
	if errors.Is(err, syscall.EINVAL) {
		return errNoDirect
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: f.name, Err: err}
	}
	err = w.write(fd, off, data)
	if err == nil && f.own && len(data)%directAlign != 0 {
		err = unix.Ftruncate(fd, off+int64(len(data)))
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) {
		return errNoDirect // open took O_DIRECT, the write did not
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.name, err)
	}
	return nil
}

// write writes data at off (page-aligned). Bytes that start at a page boundary
// (a chunk received from the parent: net aligns them; one read from the
// backend: a fresh allocation) go to the device straight from data, all
// but a tail shorter than a page; the rest is copied into the aligned
// buffer a piece at a time, the last piece padded with zeros.
func (w *directWriter) write(fd int, at int64, data []byte) error {
	start := 0
	if uintptrOf(data)%directAlign == 0 {
		start = len(data) / directAlign * directAlign
		if err := pwriteAll(fd, data[:start], at); err != nil {
			return err
		}
	}
	if start == len(data) {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf == nil {
		raw := make([]byte, directPiece+directAlign)
		skip := (directAlign - int(uintptrOf(raw)%directAlign)) % directAlign
		w.buf = raw[skip : skip+directPiece : skip+directPiece]
	}
	for off := start; off < len(data); off += directPiece {
		n := copy(w.buf, data[off:])
		padded := (n + directAlign - 1) / directAlign * directAlign
		clear(w.buf[n:padded])
		if err := pwriteAll(fd, w.buf[:padded], at+int64(off)); err != nil {
			return err
		}
	}
	return nil
}

// pwriteAll writes all of b at off, resuming after a short write.
func pwriteAll(fd int, b []byte, off int64) error {
	for done := 0; done < len(b); {
		m, err := unix.Pwrite(fd, b[done:], off+int64(done))
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if m == 0 {
			return syscall.EIO // a device that takes nothing: never loop on it
		}
		done += m
	}
	return nil
}

// uintptrOf is the address of b's first byte, for aligning a buffer.
func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// writeChunk writes a chunk at off of f's file, with O_DIRECT until the
// file system refuses it.
func (s *Store) writeChunk(dir string, f *chunkFile, off int64, data []byte) error {
	if !s.direct.off.Load() {
		err := s.direct.writeFile(f, off, data)
		if !errors.Is(err, errNoDirect) {
			return err
		}
		if !s.direct.off.Swap(true) {
			s.log.Info("chunk spill directory takes no O_DIRECT: buffered writes", "dir", dir)
		}
	}
	return writeAt(f.name, off, data)
}
