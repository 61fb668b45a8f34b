package net

import (
	"sync"
	"time"

	"github.com/cloudwego/netpoll"
)

const (
	// maxSpareBatch is the largest batch buffer a frameWriter keeps
	// between bursts.
	maxSpareBatch = 256 << 10
	// maxQueuedFrame is the largest frame copied into the queue: a
	// larger one (a file's data) waits for the writer instead, as it
	// did before frames were combined, so the queue never holds a copy
	// of megabytes of file data beside the netpoll buffer it goes into.
	maxQueuedFrame = 64 << 10
	// maxWritePiece is the most handed to netpoll's Write at once.
	// Write copies into a buffer from netpoll's pools, which round up
	// to a power of two and keep what they are given: one 4.5 MiB answer
	// took an 8 MiB buffer that stayed in the pool, one per child served
	// at once (docs/BENCHMARKS.md, per-node memory). Pieces keep those
	// buffers small; a large write is several sendmsg calls either way.
	// Smaller pieces cost more: a 4.5 MiB round trip took about 6% more
	// CPU with 1 MiB pieces and 14% with 256 KiB (BenchmarkRoundTrip4_5MiB).
	maxWritePiece = 1 << 20
)

// frameWriter is the one way frames go out on a connection. Netpoll's
// writer is not concurrent, so one caller writes at a time; frames that
// other callers hand over meanwhile are queued and go out together in the
// writing caller's next Write: one sendmsg for a burst of answers (or
// requests) instead of one per frame, with no wait added, since the queued
// callers would have waited for the lock anyway. Connection.Write, not
// Malloc/Flush, does the writing: it holds netpoll's flush lock, which
// netpoll's close waits for, while Malloc from outside netpoll's callbacks
// could write into a buffer a concurrent close recycled.
//
// Only frames up to maxQueuedFrame are queued; a caller with a larger one
// waits until no one writes (idle) and writes it itself.
//
// A queued frame's write error is not returned to its caller: the first
// error is kept and returned by every later write, and a connection whose
// write failed is failed as a whole (its frames may be half written).
type frameWriter struct {
	conn netpoll.Connection

	mu     sync.Mutex
	idle   sync.Cond // signalled when busy turns false; L is &mu, set on first wait
	busy   bool      // a caller is writing
	queued []byte    // whole frames waiting for the writing caller
	spare  []byte    // a drained batch buffer, for the next queue
	err    error     // the first write error
}

// write sends the frame made of parts, or queues it when another caller
// is writing. A non-zero deadline bounds this caller's writes.
func (w *frameWriter) write(deadline time.Time, parts ...[]byte) error {
	w.mu.Lock()
	for w.busy && w.err == nil && frameSize(parts) > maxQueuedFrame {
		if w.idle.L == nil {
			w.idle.L = &w.mu
		}
		w.idle.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if w.busy {
		for _, p := range parts {
			w.queued = append(w.queued, p...)
		}
		w.mu.Unlock()
		return nil
	}
	w.busy = true
	w.mu.Unlock()

	if !deadline.IsZero() { // reset below, before the next writer may set its own
		_ = w.conn.SetWriteDeadline(deadline)
	}
	var err error
	for _, p := range parts { // uncontended: straight from the caller's buffers
		if err = w.send(p); err != nil {
			break
		}
	}
	w.mu.Lock()
	for err == nil && len(w.queued) > 0 {
		batch := w.queued
		w.queued, w.spare = w.spare[:0], nil
		w.mu.Unlock()
		err = w.send(batch)
		w.mu.Lock()
		if cap(batch) <= maxSpareBatch {
			w.spare = batch[:0]
		}
	}
	if !deadline.IsZero() {
		_ = w.conn.SetWriteDeadline(time.Time{})
	}
	if err != nil && w.err == nil {
		w.err = err
		w.queued = nil
	}
	w.busy = false
	if w.idle.L != nil {
		w.idle.Broadcast()
	}
	w.mu.Unlock()
	return err
}

// send writes p in pieces of at most maxWritePiece (see there).
func (w *frameWriter) send(p []byte) error {
	for len(p) > 0 {
		n := min(len(p), maxWritePiece)
		if _, err := w.conn.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func frameSize(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}
