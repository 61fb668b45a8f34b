package logging

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the rate limit New puts on warnings and errors.
const (
	DefaultLimitBurst    = 10
	DefaultLimitInterval = 10 * time.Second
)

// LimitConfig configures RateLimit.
type LimitConfig struct {
	Burst    int           // records per key per interval let through; ≤ 0 → DefaultLimitBurst
	Interval time.Duration // ≤ 0 → DefaultLimitInterval
	MinLevel slog.Level    // records below pass unlimited (debug traffic is asked for)
	Now      func() time.Time
}

// RateLimit wraps h so that records at or above cfg.MinLevel with the same
// level and message pass at most cfg.Burst times per cfg.Interval. When a
// key's interval ends with records held back, one record says how many:
// "suppressed K similar messages" with the message as msg. A node whose
// parent is gone must not write megabytes of the same line per second.
// Call the returned flush at exit to report what is still held back.
func RateLimit(h slog.Handler, cfg LimitConfig) (slog.Handler, func()) {
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultLimitBurst
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultLimitInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	st := &limitState{cfg: cfg, keys: map[limitKey]*window{}}
	lh := &limitHandler{next: h, st: st}
	return lh, func() { lh.emit(context.Background(), st.drain(true)) }
}

type limitKey struct {
	level slog.Level
	msg   string
}

type window struct {
	start      time.Time
	passed     int
	suppressed int
}

// limitState is shared by a handler and every handler derived from it
// (WithAttrs, WithGroup): the limit is per message, not per logger.
type limitState struct {
	cfg  LimitConfig
	mu   sync.Mutex
	keys map[limitKey]*window
}

type report struct {
	key limitKey
	n   int
}

// drain removes the windows that ended (all, with everything) and returns
// what they held back.
func (st *limitState) drain(everything bool) []report {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.drainLocked(st.cfg.Now(), everything)
}

func (st *limitState) drainLocked(now time.Time, everything bool) []report {
	var out []report
	for k, w := range st.keys {
		if everything || now.Sub(w.start) >= st.cfg.Interval {
			if w.suppressed > 0 {
				out = append(out, report{k, w.suppressed})
			}
			delete(st.keys, k)
		}
	}
	return out
}

type limitHandler struct {
	next slog.Handler
	st   *limitState
}

func (h *limitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *limitHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.st.cfg.MinLevel {
		return h.next.Handle(ctx, r)
	}
	key := limitKey{r.Level, r.Message}
	h.st.mu.Lock()
	now := h.st.cfg.Now()
	reports := h.st.drainLocked(now, false) // ended windows, this key's included
	w := h.st.keys[key]
	if w == nil {
		w = &window{start: now}
		h.st.keys[key] = w
	}
	pass := w.passed < h.st.cfg.Burst
	if pass {
		w.passed++
	} else {
		w.suppressed++
	}
	h.st.mu.Unlock()
	h.emit(ctx, reports)
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *limitHandler) emit(ctx context.Context, reports []report) {
	for _, rep := range reports {
		r := slog.NewRecord(h.st.cfg.Now(), rep.key.level, fmt.Sprintf("suppressed %d similar messages", rep.n), 0)
		r.AddAttrs(slog.String("msg_suppressed", rep.key.msg), slog.Duration("interval", h.st.cfg.Interval))
		_ = h.next.Handle(ctx, r)
	}
}

func (h *limitHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &limitHandler{next: h.next.WithAttrs(attrs), st: h.st}
}

func (h *limitHandler) WithGroup(name string) slog.Handler {
	return &limitHandler{next: h.next.WithGroup(name), st: h.st}
}
