package net

import "sync"

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
