package net

import (
	"sync"
	"unsafe"

	"github.com/bytedance/gopkg/lang/dirtmake"
	"github.com/cloudwego/netpoll"

	"github.com/hpc-copper/copper/op"
)

// maxPooledFrame is the largest frame buffer kept for reuse: small
// answers (attributes, listings, small files) are the common case, and a
// pool of MaxFrame-sized buffers would pin memory the cache budget does
// not count.
const maxPooledFrame = 64 << 10

// framePool holds frame buffers for encoding. Connection.Write copies a
// frame into netpoll's output buffer, so the buffer it was built in is
// free again when Write returns; reusing it saves an allocation (and its
// zeroing) per frame. The zero value is ready to use.
type framePool struct{ p sync.Pool }

func (fp *framePool) get() *[]byte {
	if b, ok := fp.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 512)
	return &b
}

// put returns b for reuse unless it grew too large to keep.
func (fp *framePool) put(b *[]byte) {
	if cap(*b) > maxPooledFrame {
		return
	}
	*b = (*b)[:0]
	fp.p.Put(b)
}

// ownedPayload reports whether readFrame gives h's payload a slice of its
// own (readOwned) rather than lending netpoll's buffer: file data, which
// the receiver keeps.
func ownedPayload(h Header) bool {
	return h.Kind == KindResponse && (h.Op == op.Read || h.Op == op.Chunk)
}

// readPiece is the most of a large payload held in netpoll's input
// buffer at once while it is copied out (1 MiB, as maxWritePiece).
const readPiece = 1 << 20

// readOwned reads the next n bytes of r into a slice of their own.
// Beyond readPiece it copies them piece by piece, releasing each read
// piece: netpoll sizes a connection's next input buffer by the most it
// has held between two Releases (rounded up to a power of two, up to 8
// MiB) and never shrinks that size, so one whole 4.5 MiB file frame made
// every later buffer of the parent connection 8 MiB, and its pool kept
// several (docs/BENCHMARKS.md, per-node memory). It releases r: the
// caller holds nothing borrowed from it.
func readOwned(r netpoll.Reader, n int) ([]byte, error) {
	if n <= readPiece {
		return r.ReadBinary(n)
	}
	buf := alignedPayload(n)
	for off := 0; off < n; {
		p, err := r.Next(min(n-off, readPiece))
		if err != nil {
			return nil, err
		}
		off += copy(buf[off:], p)
		if err := r.Release(); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// dataAlign is the alignment readOwned gives the file data of a large
// answer: a page, what O_DIRECT asks of a buffer, so the chunk store
// writes a chunk to its spill file straight from these bytes instead of
// copying them through an aligned buffer first (spill/direct.go).
const dataAlign = 4096

// responseDataOffset is where a Read or Chunk answer's data starts in
// its payload: errno, attributes, data length.
const responseDataOffset = 4 + AttrSize + 4

// alignedPayload returns n bytes, not zeroed, placed so that the byte at
// responseDataOffset starts a page. It costs one page more than n.
func alignedPayload(n int) []byte {
	// Not zeroed: readOwned writes every byte before it returns them.
	raw := dirtmake.Bytes(n+dataAlign, n+dataAlign)
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(raw))) + responseDataOffset
	skip := int((dataAlign - addr%dataAlign) % dataAlign)
	return raw[skip : skip+n : skip+n]
}
