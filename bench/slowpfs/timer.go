package slowpfs

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Sleeper waits until a point in time. The emulator's operations wait
// for the completion time the Model gave them.
type Sleeper interface {
	SleepUntil(ctx context.Context, t time.Time) error
}

// TimerStats measures how late the Timer woke its sleepers: the error
// the host adds on top of the model's service times.
type TimerStats struct {
	Wakeups  int64         `json:"wakeups"`
	Lateness time.Duration `json:"lateness_ns"` // sum over wakeups
	MaxLate  time.Duration `json:"max_lateness_ns"`
}

// Timer is a Sleeper with microsecond precision. Go's time.Sleep rounds
// sub-millisecond sleeps up to about a millisecond on Linux, three times
// the default metadata service time; a thread blocked in nanosleep per
// operation is precise alone but late by a millisecond when dozens wake
// at once on two cores. So one locked OS thread, with a 1 ns timer
// slack, waits in ppoll(2) for the earliest deadline and wakes the
// goroutines due; an eventfd interrupts it when an earlier deadline
// arrives.
type Timer struct {
	efd  int
	base time.Time // deadlines are kept as nanoseconds since base

	mu      sync.Mutex
	queue   deadlines
	target  int64 // deadline the loop sleeps towards; maxDeadline when idle
	closed  bool
	stats   TimerStats
	stopped chan struct{}
}

const maxDeadline = int64(1<<63 - 1)

type deadline struct {
	at   int64
	wake chan struct{}
}

type deadlines []deadline

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].at < d[j].at }
func (d deadlines) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *deadlines) Push(x any)        { *d = append(*d, x.(deadline)) }
func (d *deadlines) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}

// NewTimer starts the timer thread. Close stops it.
func NewTimer() (*Timer, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("slowpfs timer: eventfd: %w", err)
	}
	t := &Timer{efd: efd, base: time.Now(), target: maxDeadline, stopped: make(chan struct{})}
	go t.loop()
	return t, nil
}

func (t *Timer) now() int64 { return int64(time.Since(t.base)) }

// SleepUntil blocks until at (or ctx ends).
func (t *Timer) SleepUntil(ctx context.Context, at time.Time) error {
	due := int64(at.Sub(t.base))
	wake := make(chan struct{})
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return errors.New("slowpfs timer: closed")
	}
	if due <= t.now() {
		t.mu.Unlock()
		return nil
	}
	heap.Push(&t.queue, deadline{at: due, wake: wake})
	interrupt := due < t.target
	t.mu.Unlock()
	if interrupt {
		t.kick()
	}
	select {
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err() // the loop closes wake later; nobody listens
	}
}

func (t *Timer) kick() {
	var one = [8]byte{1}
	_, _ = unix.Write(t.efd, one[:]) // EAGAIN: a kick is already pending
}

func (t *Timer) loop() {
	runtime.LockOSThread() // the timer slack below is per thread
	defer close(t.stopped)
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	var buf [8]byte
	fds := []unix.PollFd{{Fd: int32(t.efd), Events: unix.POLLIN}}
	for {
		t.mu.Lock()
		if t.closed {
			for t.queue.Len() > 0 {
				close(heap.Pop(&t.queue).(deadline).wake)
			}
			t.mu.Unlock()
			return
		}
		now := t.now()
		for t.queue.Len() > 0 && t.queue[0].at <= now {
			d := heap.Pop(&t.queue).(deadline)
			late := time.Duration(now - d.at)
			t.stats.Wakeups++
			t.stats.Lateness += late
			t.stats.MaxLate = max(t.stats.MaxLate, late)
			close(d.wake)
		}
		var timeout *unix.Timespec
		t.target = maxDeadline
		if t.queue.Len() > 0 {
			t.target = t.queue[0].at
			ts := unix.NsecToTimespec(t.target - now)
			timeout = &ts
		}
		t.mu.Unlock()
		fds[0].Revents = 0
		n, err := unix.Ppoll(fds, timeout, nil)
		if err == nil && n > 0 {
			_, _ = unix.Read(t.efd, buf[:])
		}
	}
}

// Stats returns the lateness measured so far.
func (t *Timer) Stats() TimerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// ResetStats zeroes the lateness sums and returns them.
func (t *Timer) ResetStats() TimerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	t.stats = TimerStats{}
	return s
}

// Close wakes every sleeper and stops the timer thread.
func (t *Timer) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.kick()
	<-t.stopped
	return unix.Close(t.efd)
}
