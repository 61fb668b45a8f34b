package net

import (
	"sync"
	"time"

	"github.com/cloudwego/netpoll"
)

// maxSpareBatch is the largest batch buffer a frameWriter keeps between
// bursts.
const maxSpareBatch = 256 << 10

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
// A queued frame's write error is not returned to its caller: the first
// error is kept and returned by every later write, and a connection whose
// write failed is failed as a whole (its frames may be half written).
//
// A frame larger than maxSpareBatch (a chunk answer: 4 MiB) is not
// queued: its caller waits for the writer and sends it from its own
// buffers, since queuing it would copy it (and grow the queue) only for
// Connection.Write to copy it again.
type frameWriter struct {
	conn netpoll.Connection

	mu     sync.Mutex
	idle   sync.Cond // signalled when busy turns false; L is &mu
	busy   bool      // a caller is writing
	queued []byte    // whole frames waiting for the writing caller
	spare  []byte    // a drained batch buffer, for the next queue
	err    error     // the first write error
}

// write sends the frame made of parts, or queues it when another caller
// is writing. A non-zero deadline bounds this caller's writes.
func (w *frameWriter) write(deadline time.Time, parts ...[]byte) error {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if w.busy && framesLen(parts) <= maxSpareBatch {
		for _, p := range parts {
			w.queued = append(w.queued, p...)
		}
		w.mu.Unlock()
		return nil
	}
	for w.busy { // a large frame: wait for the writer rather than copy it
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

func framesLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

func (w *frameWriter) send(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	_, err := w.conn.Write(p)
	return err
}
