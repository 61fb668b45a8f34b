package node

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/op"
)

// Readiness. A node is tree-ready when its parent is (a root: once its
// server accepts requests). A child learns it by probing its parent
// (op.IsReady), and the parent answers:
//   - at once "ready" when it is tree-ready;
//   - otherwise it holds the probe until it becomes tree-ready ("ready"),
//     ReadyHold elapses ("not ready"), it is stopping (ESHUTDOWN) or the
//     asker's context ends (the connection closed: nobody reads the answer).
//
// So a child learns readiness within one round trip of its parent, and a
// tree of depth d is ready about (slowest start + d round trips) after
// launch, where a backoff between probes lost up to its doubled interval
// at every level. The child keeps the backoff as a floor between the starts
// of its probes: a failed authentication or any other error waits as
// before (a refused connect — the parent not up yet — retries at the first
// interval, see ErrNotListening), and a not-ready
// answer given at once (a copper without holds) too, while a probe held
// for its whole bound is followed by the next at once.
//
// A held probe costs the parent one server goroutine and one timer: each
// child probes one at a time, so at most its fan-out (plus, for at most
// ReadyHold each, probes whose askers gave up). Heartbeats are pings
// answered by the connection's reader, never held; a failover's probe of
// a parent that is ready is answered at once.

// ErrNotListening is wrapped by a Dialer's error when the connect itself
// failed: nothing listens at the address yet (or it cannot be reached).
// AwaitParent retries such a parent at the backoff's first interval
// instead of doubling it: a refused connect costs the parent's host one
// SYN and one RST, and a daemon that starts a few hundred milliseconds
// after its children (as launchers spread starts) would otherwise be
// probed only after a doubled interval it had long outlived.
var ErrNotListening = errors.New("parent not listening")

// HoldBound is the hold derived from the settings: ready_probe_max (the
// longest a child waits between probes anyway), at most a quarter of
// rpc_timeout, so that a held probe always ends well before the child's
// deadline for it and is never taken for a hung parent.
func HoldBound(probeMax, rpcTimeout time.Duration) time.Duration {
	h := probeMax
	if rpcTimeout > 0 {
		h = min(h, rpcTimeout/4)
	}
	return max(h, time.Millisecond)
}

func (n *Node) setTreeReady() {
	n.readyOnce.Do(func() {
		close(n.treeReady)
		n.log.Info("tree ready", "after_us", time.Since(n.cfg.Started).Microseconds())
	})
}

// TreeReady reports whether this node and every ancestor can serve.
func (n *Node) TreeReady() bool {
	select {
	case <-n.treeReady:
		return true
	default:
		return false
	}
}

// WaitTreeReady blocks until the node is tree-ready or ctx ends.
func (n *Node) WaitTreeReady(ctx context.Context) error {
	select {
	case <-n.treeReady:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rank %d not tree-ready: %w", n.cfg.Rank, ctx.Err())
	}
}

// Stopping releases the readiness probes this node holds (they answer
// ESHUTDOWN) and makes it hold no more: its server is about to drain its
// handlers, and a held probe would keep it waiting for ReadyHold.
func (n *Node) Stopping() {
	n.stopOnce.Do(func() { close(n.stopping) })
}

// answerReady answers a child's readiness probe, holding it while this
// node is not tree-ready (see Readiness above).
func (n *Node) answerReady(ctx context.Context) op.Result {
	if n.TreeReady() {
		return op.Result{Ready: true}
	}
	select {
	case <-n.stopping:
		return op.Fail(syscall.ESHUTDOWN)
	default:
	}
	n.held.Add(1)
	defer n.held.Add(-1)
	t := time.NewTimer(n.cfg.ReadyHold)
	defer t.Stop()
	select {
	case <-n.treeReady:
		return op.Result{Ready: true}
	case <-n.stopping:
		return op.Fail(syscall.ESHUTDOWN)
	case <-ctx.Done():
		return op.Result{}
	case <-t.C:
		return op.Result{}
	}
}

// AwaitParent probes the parent's readiness until the parent reports
// tree-ready (then this node is tree-ready) or the readiness budget runs
// out. A root returns at once. Probing first, rather than sending real
// requests into a parent that is not serving yet, is the lesson of Copper
// 1.0's registration races at 128-256 nodes. Probes start at least the
// backoff's interval apart (ReadyProbeInitial doubling to ReadyProbeMax;
// after a not-ready answer, at most ReadyHold apart): one the parent held
// for its bound is followed by the next at once.
func (n *Node) AwaitParent(ctx context.Context) error {
	if n.IsRoot() {
		return nil
	}
	ctx, cancel := withTimeout(ctx, n.cfg.ReadyTimeout)
	defer cancel()
	wait := n.cfg.ReadyProbeInitial
	var lastErr error
	for attempt := 1; ; attempt++ {
		sent := time.Now()
		r, cutShort, err := n.probeOnce(ctx)
		switch {
		case err == nil && r.Ready:
			n.setTreeReady()
			n.log.Debug("parent ready", "probes", attempt)
			return nil
		case err != nil:
			// A probe cut short by a deadline says less than the refusal
			// before it (say, "authentication failed"): keep the latter.
			if lastErr == nil || !cutShort {
				lastErr = err
			}
		case r.Errno == syscall.ESHUTDOWN:
			lastErr = errors.New("parent is stopping")
		case r.Errno != 0:
			lastErr = fmt.Errorf("parent answered the readiness probe with %w", r.Errno)
		default:
			lastErr = errors.New("parent is up but not yet tree-ready")
		}
		n.log.Debug("parent not ready", "probe", attempt, "err", lastErr)
		pause := wait
		if err == nil && r.Errno == 0 {
			// Not ready: the parent held the probe for its bound, which
			// may be under the interval (a short rpc_timeout).
			pause = min(pause, n.cfg.ReadyHold)
		}
		// Not up yet: keep probing at the first interval (see
		// ErrNotListening); the doubling is for parents that answer.
		notUp := errors.Is(err, ErrNotListening)
		if notUp {
			pause = n.cfg.ReadyProbeInitial
		}
		if err := sleepCtx(ctx, pause-time.Since(sent)); err != nil {
			return fmt.Errorf("rank %d: parent not tree-ready after %v (%d probes): %w",
				n.cfg.Rank, n.cfg.ReadyTimeout, attempt, lastErr)
		}
		if !notUp {
			wait = min(wait*2, n.cfg.ReadyProbeMax)
		}
	}
}

// probeOnce sends one probe under RPCTimeout; cutShort says whether its
// own deadline cut it short, asked of its context: netpoll's dial reports
// that as a bare "i/o timeout" that neither errors.Is nor net.Error
// recognise.
func (n *Node) probeOnce(ctx context.Context) (r op.Result, cutShort bool, err error) {
	n.probes.Add(1)
	pctx, cancel := withTimeout(ctx, n.cfg.RPCTimeout)
	defer cancel()
	r, err = n.probe(pctx)
	return r, pctx.Err() != nil || isTimeout(err), err
}

// sleepCtx waits d (nothing when d ≤ 0) unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Prober is a Parent that can ask its direct parent alone (see Upstream.Probe).
type Prober interface {
	Probe(ctx context.Context) (op.Result, error)
}

func (n *Node) probe(ctx context.Context) (op.Result, error) {
	if p, ok := n.cfg.Parent.(Prober); ok {
		return p.Probe(ctx)
	}
	return n.cfg.Parent.Call(ctx, op.IsReady, "/")
}

// waitReadyBy waits for tree readiness at most ReadyTimeout and, when
// readyBy is set, until then.
func (n *Node) waitReadyBy(ctx context.Context, readyBy time.Time) error {
	if n.TreeReady() {
		return nil
	}
	ctx, cancel := withTimeout(ctx, n.cfg.ReadyTimeout)
	defer cancel()
	if !readyBy.IsZero() {
		var cancelBy context.CancelFunc
		ctx, cancelBy = context.WithDeadline(ctx, readyBy)
		defer cancelBy()
	}
	return n.WaitTreeReady(ctx)
}
