package replay

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Result is one replay of a trace.
type Result struct {
	Duration    time.Duration `json:"duration_ns"`
	Ops         int           `json:"ops"`         // operations issued
	Skipped     int           `json:"skipped"`     // fd operations whose open had failed in the replay
	Divergences int           `json:"divergences"` // outcomes (success or errno) unlike the trace's
	First       string        `json:"first_divergence,omitempty"`
	Bytes       int64         `json:"bytes"` // bytes read, listed and touched
	// Sched is the replay's thread's CPU and wait for a CPU (schedstat);
	// zero where the kernel has none.
	Sched Sched `json:"sched"`
}

// pageSize is the granularity at which a mapping is touched.
const pageSize = 4096

// writeFlags never reach a replayed open: the replay only reads.
const writeFlags = unix.O_WRONLY | unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC | unix.O_APPEND | unix.O_EXCL

// Run replays tr against root (the trace's prefix becomes root) and
// returns what it did. Mappings are made and touched as the dynamic
// loader's page faults would touch them: a shared object is first mapped
// whole (a reservation the loader reads only the headers of), then its
// segments are mapped over it with MAP_FIXED and run. So every page of a
// MAP_FIXED mapping is touched, and only the first page of any other.
// Outcomes that differ from the trace are counted, not fatal: a replay
// through a different filesystem view may legitimately differ.
func Run(ctx context.Context, tr *Trace, root string) (Result, error) {
	r := runner{root: root, fds: map[int]int{}}
	defer r.closeAll()
	// One thread for the whole replay, so its schedstat is the replay's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s0, sched := threadSched()
	start := time.Now()
	for i := range tr.Ops {
		if i%64 == 0 && ctx.Err() != nil {
			return r.res, fmt.Errorf("replay of %s: %w", root, ctx.Err())
		}
		r.do(&tr.Ops[i])
	}
	r.res.Duration = time.Since(start)
	if s1, ok := threadSched(); ok && sched {
		r.res.Sched = s1.Sub(s0)
	}
	return r.res, nil
}

type runner struct {
	root string
	fds  map[int]int // traced fd -> real fd
	buf  []byte
	res  Result
	sink byte // keeps the page touches from being optimised away
}

func (r *runner) host(view string) string {
	if view == "/" {
		return r.root
	}
	return r.root + view
}

func (r *runner) buffer(n int64) []byte {
	n = max(min(n, 64<<20), 1)
	if int64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	return r.buf[:n]
}

func (r *runner) closeAll() {
	for _, fd := range r.fds {
		_ = unix.Close(fd)
	}
}

// check records a divergence between the traced errno and err.
func (r *runner) check(o *Op, err error) {
	var got syscall.Errno
	if err != nil && !errors.As(err, &got) {
		got = syscall.EIO
	}
	if got == o.Errno {
		return
	}
	r.res.Divergences++
	if r.res.First == "" {
		want := "success"
		if o.Errno != 0 {
			want = o.Errno.Error()
		}
		r.res.First = fmt.Sprintf("trace line %d: %s %s: traced %s, replay %v", o.Line, o.Kind, o.Path, want, errOrSuccess(err))
	}
}

func errOrSuccess(err error) string {
	if err == nil {
		return "success"
	}
	return err.Error()
}

func (r *runner) fd(o *Op) (int, bool) {
	fd, ok := r.fds[o.FD]
	if !ok {
		r.res.Skipped++
	}
	return fd, ok
}

// retry repeats a system call interrupted by a signal, as the os
// package does: the Go runtime's own preemption signals interrupt FUSE
// requests, which a C program would not see.
func retry(call func() error) error {
	for {
		if err := call(); err != unix.EINTR {
			return err
		}
	}
}

func retryN(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err != unix.EINTR {
			return n, err
		}
	}
}

func (r *runner) do(o *Op) {
	if o.Kind == Close || o.Kind == Read || o.Kind == Pread || o.Kind == Getdents || o.Kind == Fstat || o.Kind == Mmap {
		if _, ok := r.fd(o); !ok {
			return
		}
	}
	r.res.Ops++
	switch o.Kind {
	case Stat:
		var st unix.Stat_t
		r.check(o, retry(func() error {
			return unix.Fstatat(unix.AT_FDCWD, r.host(o.Path), &st, o.Flags&unix.AT_SYMLINK_NOFOLLOW)
		}))
	case Access:
		r.check(o, retry(func() error { return unix.Faccessat(unix.AT_FDCWD, r.host(o.Path), uint32(o.Flags), 0) }))
	case Readlink:
		_, err := retryN(func() (int, error) { return unix.Readlink(r.host(o.Path), r.buffer(max(o.Size, 1))) })
		r.check(o, err)
	case Open:
		fd, err := retryN(func() (int, error) {
			return unix.Open(r.host(o.Path), (o.Flags&^writeFlags)|unix.O_CLOEXEC, 0)
		})
		r.check(o, err)
		if err == nil {
			if old, ok := r.fds[o.FD]; ok {
				_ = unix.Close(old) // the trace reused the number without a close we saw
			}
			r.fds[o.FD] = fd
		}
	case Close:
		fd := r.fds[o.FD]
		delete(r.fds, o.FD)
		r.check(o, unix.Close(fd))
	case Read:
		n, err := retryN(func() (int, error) { return unix.Read(r.fds[o.FD], r.buffer(o.Size)) })
		r.count(n)
		r.check(o, err)
	case Pread:
		n, err := retryN(func() (int, error) { return unix.Pread(r.fds[o.FD], r.buffer(o.Size), o.Offset) })
		r.count(n)
		r.check(o, err)
	case Getdents:
		n, err := retryN(func() (int, error) { return unix.Getdents(r.fds[o.FD], r.buffer(o.Size)) })
		r.count(n)
		r.check(o, err)
	case Fstat:
		var st unix.Stat_t
		r.check(o, retry(func() error { return unix.Fstat(r.fds[o.FD], &st) }))
	case Mmap:
		length := o.Size
		if o.Flags&unix.MAP_FIXED == 0 {
			length = min(length, pageSize)
		}
		n, sum, err := touch(r.fds[o.FD], o.Offset, length)
		r.res.Bytes += n
		r.sink += sum
		r.check(o, err)
	}
}

func (r *runner) count(n int) {
	if n > 0 {
		r.res.Bytes += int64(n)
	}
}

// touch maps length bytes of fd at off and reads one byte of every page
// that lies inside the file, returning the bytes of those pages and a
// sum of the bytes read.
func touch(fd int, off, length int64) (int64, byte, error) {
	var st unix.Stat_t
	if err := retry(func() error { return unix.Fstat(fd, &st) }); err != nil {
		return 0, 0, err
	}
	// Pages past the end of the file would fault with SIGBUS.
	length = min(length, st.Size-off)
	if length <= 0 || off%pageSize != 0 {
		return 0, 0, nil
	}
	m, err := unix.Mmap(fd, off, int(length), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return 0, 0, err
	}
	var sum byte
	for i := 0; i < len(m); i += pageSize {
		sum += m[i]
	}
	return length, sum, unix.Munmap(m)
}
