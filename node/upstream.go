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

// Hop is one place a node's requests can go, in failover order: an
// endpoint that is dialed (an ancestor, the segment's successor root), or
// a Local Parent in this process (the node's own backend).
type Hop struct {
	Addr  string // endpoint to dial; empty for a Local hop
	Local Parent // answers in-process; its errors are never the hop's fault
	Name  string // for logs and Current; defaults to Addr
}

func (h Hop) name() string {
	if h.Name != "" {
		return h.Name
	}
	return h.Addr
}

// UpstreamConfig configures NewUpstreamHops.
type UpstreamConfig struct {
	Hops         []Hop         // parent first
	Dial         Dialer        // for the hops with an Addr
	RetryPrimary time.Duration // after a switch, try the parent again this often; 0 → 30 s
	DialTimeout  time.Duration // bound on one dial (connect and handshake); 0 = the caller's ctx only
	// Heartbeats: the connections detect a hung hop themselves
	// (ErrHeartbeat), so a call that uses up its deadline on a hop that
	// still answers pings met a slow hop (a slow filesystem above), not a
	// dead one, and is not a reason to switch.
	Heartbeats bool
	Logger     *slog.Logger
	Now        func() time.Time // the clock of RetryPrimary; nil → time.Now (tests move it)
}

// Upstream is a node's way up the tree: its parent, and when the parent is
// dead or hung, the next hop that answers. Every hop serves the same
// read-only view, so skipping a dead one only costs load on the others.
// After RetryPrimary the parent is dialed and probed again in the
// background, never on a request's path.
type Upstream struct {
	cfg  UpstreamConfig
	log  *slog.Logger
	base context.Context // ends at Close: background retries
	stop context.CancelFunc

	mu        sync.Mutex
	cur       int // index into Hops of the hop in use
	slots     []slot
	failovers int64
	retrying  bool
	lastRetry time.Time
	closed    bool
}

// slot is the connection state of one hop. Dials happen outside the
// lock, one per hop at a time; dialing is closed when the dial ends.
type slot struct {
	conn     Conn
	dialing  chan struct{}
	dialErr  error
	failedAt time.Time // last failure; such a hop is not switched to for RetryPrimary
}

var errUpstreamClosed = errors.New("upstream closed")

// NewUpstream returns an Upstream over the ancestors' endpoints (parent first).
func NewUpstream(addrs []string, dial Dialer, retryPrimary time.Duration, log *slog.Logger) (*Upstream, error) {
	hops := make([]Hop, len(addrs))
	for i, a := range addrs {
		hops[i] = Hop{Addr: a}
	}
	return NewUpstreamHops(UpstreamConfig{Hops: hops, Dial: dial, RetryPrimary: retryPrimary, Logger: log})
}

// NewUpstreamHops returns an Upstream over cfg.Hops; the first must be the
// parent's endpoint.
func NewUpstreamHops(cfg UpstreamConfig) (*Upstream, error) {
	if len(cfg.Hops) == 0 || cfg.Hops[0].Addr == "" {
		return nil, errors.New("upstream: no parent endpoint (a root has no parent)")
	}
	for i, h := range cfg.Hops {
		if (h.Addr == "") == (h.Local == nil) {
			return nil, fmt.Errorf("upstream: hop %d needs exactly one of an endpoint or a local parent", i)
		}
	}
	if cfg.Dial == nil {
		return nil, errors.New("upstream: no dialer")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryPrimary <= 0 {
		cfg.RetryPrimary = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base, stop := context.WithCancel(context.Background())
	return &Upstream{cfg: cfg, log: cfg.Logger, base: base, stop: stop, slots: make([]slot, len(cfg.Hops))}, nil
}

// Probe asks the direct parent only. Readiness must come from the parent
// itself: a child that skipped a parent still starting up would pile its
// whole subtree onto the grandparent.
func (u *Upstream) Probe(ctx context.Context) (op.Result, error) {
	c, err := u.connAt(ctx, 0)
	if err != nil {
		return op.Result{}, err
	}
	r, err := c.Call(ctx, op.IsReady, "/")
	if err != nil {
		u.discard(0, c)
	}
	return r, err
}

// Call sends one request, failing over along the hops on transport errors
// (a dead, refusing or — by heartbeat — hung hop). Each hop is tried at
// most once per call.
func (u *Upstream) Call(ctx context.Context, o op.Op, path string) (op.Result, error) {
	var errs []error
	var hops [8]int // order's result stays on the stack for up to 8 hops
	for _, idx := range u.order(u.start(), hops[:0]) {
		hop := u.cfg.Hops[idx]
		if hop.Local != nil {
			r, err := hop.Local.Call(ctx, o, path)
			if err == nil {
				return r, nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", hop.name(), err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		c, err := u.connAt(ctx, idx)
		if err == nil {
			var r op.Result
			if r, err = c.Call(ctx, o, path); err == nil {
				if len(errs) > 0 {
					u.settle(idx)
				}
				return r, nil
			}
		}
		errs = append(errs, err)
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			break // the asker gave up: says nothing about the hop
		}
		// A transport error, or a call that used up its whole deadline
		// (rpc_timeout_s) on this hop: either way it is not answering —
		// unless heartbeats prove it alive: then it is slow, and moving
		// its subtree elsewhere (perhaps onto the filesystem that makes
		// it slow) would only add load.
		if u.cfg.Heartbeats && c != nil && errors.Is(err, context.DeadlineExceeded) {
			break
		}
		u.failed(idx, c, err)
		if ctx.Err() != nil {
			break
		}
	}
	return op.Result{}, fmt.Errorf("no ancestor answered %s %s: %w", o, path, errors.Join(errs...))
}

// order is the sequence of hops a call starting at start tries: the
// endpoints from start on, then those before it (a parent left on a
// false alarm beats reading the filesystem), then the local hops. A call
// already on a local hop stays there: the parent comes back through the
// background retry, not by dialing hung hops on a request's path. It
// appends to out (the caller's buffer; nil allocates).
func (u *Upstream) order(start int, out []int) []int {
	n := len(u.cfg.Hops)
	if u.cfg.Hops[start].Local != nil {
		for i := start; i < n; i++ {
			if u.cfg.Hops[i].Local != nil {
				out = append(out, i)
			}
		}
		return out
	}
	for i := range n {
		if idx := (start + i) % n; u.cfg.Hops[idx].Local == nil {
			out = append(out, idx)
		}
	}
	for i, h := range u.cfg.Hops {
		if h.Local != nil {
			out = append(out, i)
		}
	}
	return out
}

// Failovers counts switches away from a hop that failed or hung.
func (u *Upstream) Failovers() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.failovers
}

// Current names the hop in use.
func (u *Upstream) Current() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.cfg.Hops[u.cur].name()
}

// BackendOps counts the filesystem operations of type o that this node's
// local hops (successor takeover, direct reads) performed.
func (u *Upstream) BackendOps(o op.Op) int64 {
	var n int64
	for _, h := range u.cfg.Hops {
		if b, ok := h.Local.(interface{ Ops(op.Op) int64 }); ok {
			n += b.Ops(o)
		}
	}
	return n
}

// Close closes every connection and stops background retries.
func (u *Upstream) Close() error {
	u.stop()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	var errs []error
	for i := range u.slots {
		if c := u.slots[i].conn; c != nil {
			errs = append(errs, c.Close())
			u.slots[i].conn = nil
		}
	}
	for _, h := range u.cfg.Hops {
		if c, ok := h.Local.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// start is where a call begins: the hop in use. Away from the parent, it
// starts a background retry of the parent every RetryPrimary.
func (u *Upstream) start() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cur != 0 && !u.retrying && !u.closed && u.cfg.Now().Sub(u.lastRetry) > u.cfg.RetryPrimary {
		u.retrying = true
		go u.retryParent()
	}
	return u.cur
}

// retryParent dials and probes the parent; when it answers, calls go back
// to it. A parent that is still hung costs this goroutine a dial timeout,
// never a request.
func (u *Upstream) retryParent() {
	ok := false
	defer func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.retrying = false
		u.lastRetry = u.cfg.Now()
		if ok && u.cur != 0 {
			u.log.Info("parent answers again, going back to it", "parent", u.cfg.Hops[0].name(), "from", u.cfg.Hops[u.cur].name())
			u.cur = 0
		}
	}()
	bound := u.cfg.DialTimeout
	if bound <= 0 {
		bound = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(u.base, 2*bound)
	defer cancel()
	r, err := u.Probe(ctx)
	ok = err == nil && r.Ready
}

// connAt returns a connection to hop idx, dialing if needed. The dial
// runs outside the lock: callers of other hops never wait on it, and
// callers of the same hop wait for that one dial (or their ctx).
func (u *Upstream) connAt(ctx context.Context, idx int) (Conn, error) {
	addr := u.cfg.Hops[idx].Addr
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil, fmt.Errorf("dial %s: %w", addr, errUpstreamClosed)
	}
	s := &u.slots[idx]
	if s.conn != nil {
		c := s.conn
		u.mu.Unlock()
		return c, nil
	}
	if ch := s.dialing; ch != nil {
		u.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the dial of %s: %w", addr, ctx.Err())
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		if s.conn != nil {
			return s.conn, nil
		}
		if s.dialErr != nil {
			return nil, s.dialErr
		}
		return nil, fmt.Errorf("dial %s: %w", addr, errUpstreamClosed)
	}
	ch := make(chan struct{})
	s.dialing = ch
	u.mu.Unlock()

	dctx, cancel := ctx, context.CancelFunc(func() {})
	if u.cfg.DialTimeout > 0 {
		dctx, cancel = context.WithTimeout(ctx, u.cfg.DialTimeout)
	}
	c, err := u.cfg.Dial(dctx, addr)
	cancel()

	u.mu.Lock()
	defer u.mu.Unlock()
	s.dialing = nil
	close(ch)
	if err != nil {
		s.dialErr = fmt.Errorf("dial %s: %w", addr, err)
		return nil, s.dialErr
	}
	if u.closed {
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, errUpstreamClosed)
	}
	s.conn, s.dialErr = c, nil
	return c, nil
}

// failed records that hop idx did not answer: its connection (if it is
// still the hop's) is closed, and if the hop was in use, calls move to
// the next one. Many calls failing on one connection switch once.
func (u *Upstream) failed(idx int, c Conn, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c != nil && u.slots[idx].conn == c {
		_ = c.Close()
		u.slots[idx].conn = nil
	}
	u.slots[idx].failedAt = u.cfg.Now()
	if u.cur != idx || u.closed {
		return
	}
	next := u.nextAfter(idx)
	u.cur = next
	u.failovers++
	u.lastRetry = u.cfg.Now()
	u.log.Warn("upstream failed, failing over", "from", u.cfg.Hops[idx].name(), "to", u.cfg.Hops[next].name(),
		"failovers", u.failovers, "err", err)
}

// settle makes idx the hop in use: it answered a call after the hops
// before it failed, so later calls start there.
func (u *Upstream) settle(idx int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.cur = idx
}

// nextAfter picks the hop to switch to when hop idx failed: the next in
// order that has not failed within RetryPrimary, else the first local
// hop, else simply the next. Called with u.mu held.
func (u *Upstream) nextAfter(idx int) int {
	ord := u.order(idx, nil)[1:]
	for _, i := range ord {
		if f := u.slots[i].failedAt; f.IsZero() || u.cfg.Now().Sub(f) > u.cfg.RetryPrimary {
			return i
		}
	}
	for _, i := range ord {
		if u.cfg.Hops[i].Local != nil {
			return i
		}
	}
	if len(ord) > 0 {
		return ord[0]
	}
	return idx
}

// discard closes hop idx's connection without switching (a failed probe).
func (u *Upstream) discard(idx int, c Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.slots[idx].conn == c {
		_ = c.Close()
		u.slots[idx].conn = nil
	}
}
