package slowpfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Config configures an Emulator.
type Config struct {
	Backing string // directory every client sees at its root
	Params  Params
	Now     func() time.Time // nil: time.Now
	Sleeper Sleeper          // nil: a Timer the Emulator owns and closes
}

// Emulator is one emulated filesystem server: the backing directory, the
// server model and the counters, shared by every client mount.
type Emulator struct {
	backing  string
	model    *Model
	counters *Counters
	now      func() time.Time
	sleeper  Sleeper
	timer    *Timer // owned; nil when the caller gave a Sleeper
	started  time.Time

	// life ends at Close. Operations wait on it, not on their request's
	// context: the kernel interrupts a FUSE request whenever the caller
	// takes a signal (Go programs take SIGURG preemption signals all the
	// time) and then still waits for the answer; answering early with an
	// error would hand the caller a failure a real PFS client never
	// gives (a Lustre RPC yields only to fatal signals).
	life context.Context
	end  context.CancelFunc

	mu      sync.Mutex
	clients []*Client
	closed  bool
}

// New validates cfg and returns an emulator with no clients yet.
func New(cfg Config) (*Emulator, error) {
	if err := cfg.Params.Validate(); err != nil {
		return nil, fmt.Errorf("slowpfs: %w", err)
	}
	backing, err := filepath.Abs(cfg.Backing)
	if err != nil {
		return nil, fmt.Errorf("slowpfs: backing directory %q: %w", cfg.Backing, err)
	}
	fi, err := os.Stat(backing)
	if err != nil {
		return nil, fmt.Errorf("slowpfs: backing directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("slowpfs: backing %s: %w", backing, syscall.ENOTDIR)
	}
	e := &Emulator{
		backing:  backing,
		model:    NewModel(cfg.Params),
		counters: NewCounters(),
		now:      cfg.Now,
		sleeper:  cfg.Sleeper,
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.sleeper == nil {
		if e.timer, err = NewTimer(); err != nil {
			return nil, err
		}
		e.sleeper = e.timer
	}
	e.started = e.now()
	e.life, e.end = context.WithCancel(context.Background())
	return e, nil
}

// Backing returns the absolute backing directory.
func (e *Emulator) Backing() string { return e.backing }

// host maps a view path ("/" = backing root) to the backing file.
func (e *Emulator) host(view string) string {
	if view == "/" {
		return e.backing
	}
	return e.backing + view
}

// Metadata charges ops metadata operations of type op on view path p,
// runs do (the real system call) meanwhile, and returns do's error once
// the model says the server has answered. It is the whole cost of one
// metadata request; the FUSE layer and tests call it alike. Only Close
// cuts the wait short.
func (e *Emulator) Metadata(op, p string, ops int, do func() error) error {
	done := e.model.Metadata(e.now(), ops)
	err := do()
	e.counters.Add(op, p, int64(ops), err != nil)
	_ = e.sleeper.SleepUntil(e.life, done) // an error means Close: answer now
	return err
}

// Data charges a read of view path p at offset off: do reads and returns
// the byte count, which is what the bandwidth is charged for.
func (e *Emulator) Data(p string, off int64, do func() (int, error)) (int, error) {
	arrived := e.now()
	n, err := do()
	if err != nil {
		e.counters.Add(OpRead, p, 1, true)
		return n, err
	}
	done := e.model.Data(arrived, int64(n))
	e.counters.AddRead(p, off, int64(n))
	_ = e.sleeper.SleepUntil(e.life, done)
	return n, nil
}

// Free counts an operation that costs the server nothing.
func (e *Emulator) Free(op, p string, failed bool) { e.counters.Add(op, p, 1, failed) }

// Snapshot is everything the emulator measured.
type Snapshot struct {
	Backing  string          `json:"backing"`
	Params   Params          `json:"params"`
	Clients  []string        `json:"clients"`
	UptimeS  float64         `json:"uptime_s"`
	Model    ModelStats      `json:"model"`
	Timer    TimerStats      `json:"timer"`
	Counters CounterSnapshot `json:"counters"`
}

// Snapshot returns the counters and model sums since start or the last
// Reset.
func (e *Emulator) Snapshot() Snapshot {
	s := e.header()
	s.Model = e.model.Stats()
	if e.timer != nil {
		s.Timer = e.timer.Stats()
	}
	s.Counters = e.counters.Snapshot()
	return s
}

// Reset zeroes counters and sums and returns them as they were.
func (e *Emulator) Reset() Snapshot {
	s := e.header()
	s.Model = e.model.ResetStats()
	if e.timer != nil {
		s.Timer = e.timer.ResetStats()
	}
	s.Counters = e.counters.Reset()
	return s
}

func (e *Emulator) header() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Snapshot{Backing: e.backing, Params: e.model.Params(), UptimeS: e.now().Sub(e.started).Seconds()}
	for _, c := range e.clients {
		s.Clients = append(s.Clients, c.Mountpoint())
	}
	return s
}

// Close unmounts every client (lazily when busy) and stops the timer.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	clients := e.clients
	e.mu.Unlock()
	e.end() // release waiting operations so that unmounting can finish
	var errs []error
	for _, c := range clients {
		errs = append(errs, c.Unmount())
	}
	if e.timer != nil {
		errs = append(errs, e.timer.Close())
	}
	return errors.Join(errs...)
}
