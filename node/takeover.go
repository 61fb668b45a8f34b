package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/op"
)

// LocalBackend is a non-root node's own access to the backing filesystem,
// which every host sees: the successor root's takeover when the root is
// gone, or a node's last-resort direct reads. The backend is created on
// first use only, so a healthy tree never opens it below the root.
type LocalBackend struct {
	cfg   backend.Config
	what  string // for the log line when it is first used
	log   *slog.Logger
	limit *Limiter // nil: unlimited (takeover)

	b atomic.Pointer[backend.Backend] // set once it opened

	mu       sync.Mutex // serializes opening
	failedAt time.Time  // last failed open: retried after openRetry
	err      error      // its error, answered until then
}

// openRetry is how long a failed open of the target is answered from
// memory before it is tried again: a filesystem hiccup at takeover must
// not leave the successor's segment failing for the rest of the job.
const openRetry = time.Second

// NewLocalBackend returns a lazily created backend for cfg; opsPerSec > 0
// limits its operations (a burst of one second's worth).
func NewLocalBackend(cfg backend.Config, opsPerSec float64, what string, log *slog.Logger) *LocalBackend {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &LocalBackend{cfg: cfg, what: what, log: log}
	if opsPerSec > 0 {
		l.limit = NewLimiter(opsPerSec, max(1, opsPerSec))
	}
	return l
}

// Call answers from the filesystem. Its only error is a rate-limit wait
// cut short by ctx. A rate-limited one answers DirPlus ENOSYS, so the
// node asks name by name: one token per filesystem operation, where a
// dirplus would stat a whole directory for one.
func (l *LocalBackend) Call(ctx context.Context, o op.Op, path string) (op.Result, error) {
	if l.limit != nil && (o == op.DirPlus || o == op.DirPlusNext) {
		return op.Fail(syscall.ENOSYS), nil
	}
	if l.limit != nil {
		if err := l.limit.Wait(ctx); err != nil {
			return op.Result{}, fmt.Errorf("%s: rate limit: %w", l.what, err)
		}
	}
	b, err := l.open()
	if err != nil {
		return op.Result{}, err
	}
	return b.Do(ctx, o, path), nil
}

// open returns the backend, opening it on first use; a failure is kept
// for openRetry, then tried again.
func (l *LocalBackend) open() (*backend.Backend, error) {
	if b := l.b.Load(); b != nil {
		return b, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.b.Load(); b != nil {
		return b, nil
	}
	if l.err != nil && time.Since(l.failedAt) < openRetry {
		return nil, l.err
	}
	b, err := backend.New(l.cfg)
	if err != nil {
		l.err, l.failedAt = fmt.Errorf("%s: %w", l.what, err), time.Now()
		l.log.Error("cannot read the backing filesystem from this node", "as", l.what, "err", err)
		return nil, l.err
	}
	l.b.Store(b)
	l.log.Warn("reading the backing filesystem from this node", "as", l.what, "target", l.cfg.Target)
	return b, nil
}

// Close releases the backend's target descriptor, if it was ever opened.
// Operations still running keep it until they end (backend.Close).
func (l *LocalBackend) Close() error {
	if b := l.b.Load(); b != nil {
		return b.Close()
	}
	return nil
}

// Ops counts the backend operations of type o done here.
func (l *LocalBackend) Ops(o op.Op) int64 {
	if b := l.b.Load(); b != nil {
		return b.Ops(o)
	}
	return 0
}

// Used reports whether the backend was ever created.
func (l *LocalBackend) Used() bool { return l.b.Load() != nil }

// Limiter is a token bucket: rate tokens per second, at most burst saved.
type Limiter struct {
	rate, burst float64
	now         func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewLimiter returns a full bucket.
func NewLimiter(rate, burst float64) *Limiter {
	return &Limiter{rate: rate, burst: burst, tokens: burst, now: time.Now}
}

// reserve takes one token and returns how long the caller must wait for
// it (0 when one was saved). Tokens go negative: later callers queue
// behind earlier ones.
func (l *Limiter) reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// cancel returns a reserved token that was not used.
func (l *Limiter) cancel() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = min(l.burst, l.tokens+1)
}

// Wait blocks until a token is available or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	d := l.reserve()
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.cancel()
		return ctx.Err()
	}
}
