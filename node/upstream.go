package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hpc-copper/copper/op"
)

// Conn is one connection to an ancestor.
type Conn interface {
	Parent
	Close() error
}

// Dialer opens a connection to an ancestor's endpoint.
type Dialer func(ctx context.Context, addr string) (Conn, error)

// Upstream is a node's way up the tree: its parent, and when the parent is
// dead, the next ancestor that answers. Every ancestor serves the same
// read-only view, so skipping a dead one only costs load on the others;
// after RetryPrimary the parent is tried again.
type Upstream struct {
	addrs        []string // parent first, then grandparent ... root
	dial         Dialer
	log          *slog.Logger
	retryPrimary time.Duration

	mu        sync.Mutex
	cur       int // index into addrs of the connection in use
	conn      Conn
	failedAt  time.Time
	failovers int64
}

// NewUpstream returns an Upstream over the ancestors' endpoints (parent first).
func NewUpstream(addrs []string, dial Dialer, retryPrimary time.Duration, log *slog.Logger) (*Upstream, error) {
	if len(addrs) == 0 {
		return nil, errors.New("upstream: no ancestors (a root has no parent)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if retryPrimary <= 0 {
		retryPrimary = 30 * time.Second
	}
	return &Upstream{addrs: addrs, dial: dial, log: log, retryPrimary: retryPrimary}, nil
}

// Probe asks the direct parent only. Readiness must come from the parent
// itself: a child that skipped a parent still starting up would pile its
// whole subtree onto the grandparent.
func (u *Upstream) Probe(ctx context.Context) (op.Result, error) {
	c, idx, err := u.connAt(ctx, 0)
	if err != nil {
		return op.Result{}, err
	}
	r, err := c.Call(ctx, op.IsReady, "/")
	if err != nil {
		u.drop(c, idx)
	}
	return r, err
}

// Call sends one request, failing over along the ancestors on transport
// errors. Each ancestor is tried at most once per call.
func (u *Upstream) Call(ctx context.Context, o op.Op, path string) (op.Result, error) {
	start := u.start()
	var errs []error
	for i := 0; i < len(u.addrs); i++ {
		idx := (start + i) % len(u.addrs)
		c, got, err := u.connAt(ctx, idx)
		if err == nil {
			var r op.Result
			r, err = c.Call(ctx, o, path)
			if err == nil {
				return r, nil
			}
			u.drop(c, got)
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
		if i+1 < len(u.addrs) {
			next := u.addrs[(start+i+1)%len(u.addrs)]
			u.log.Warn("ancestor failed, failing over", "ancestor", u.addrs[idx], "next", next, "err", err)
			u.mu.Lock()
			u.failovers++
			u.mu.Unlock()
		}
	}
	return op.Result{}, fmt.Errorf("no ancestor answered %s %s: %w", o, path, errors.Join(errs...))
}

// Failovers counts switches to a further ancestor.
func (u *Upstream) Failovers() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.failovers
}

// Current is the endpoint in use.
func (u *Upstream) Current() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.addrs[u.cur]
}

// Close closes the connection in use.
func (u *Upstream) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil {
		return nil
	}
	err := u.conn.Close()
	u.conn = nil
	return err
}

// start picks where a call begins: the ancestor in use, or the parent again
// once RetryPrimary has passed since the last failure.
func (u *Upstream) start() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cur != 0 && time.Since(u.failedAt) > u.retryPrimary {
		return 0
	}
	return u.cur
}

// connAt returns a connection to addrs[idx], dialing if needed. Dialing is
// done under the lock so that a broken connection is replaced once, not
// once per waiting request.
func (u *Upstream) connAt(ctx context.Context, idx int) (Conn, int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn != nil && u.cur == idx {
		return u.conn, idx, nil
	}
	c, err := u.dial(ctx, u.addrs[idx])
	if err != nil {
		u.failedAt = time.Now()
		return nil, idx, fmt.Errorf("dial %s: %w", u.addrs[idx], err)
	}
	if u.conn != nil {
		_ = u.conn.Close()
	}
	u.conn, u.cur = c, idx
	return c, idx, nil
}

// drop forgets a connection that failed, unless it was already replaced.
func (u *Upstream) drop(c Conn, idx int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.failedAt = time.Now()
	if u.conn == c {
		_ = c.Close()
		u.conn = nil
		// Next call starts at the next ancestor.
		u.cur = (idx + 1) % len(u.addrs)
	}
}
