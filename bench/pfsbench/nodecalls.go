package pfsbench

// What each copper node was asked during one phase, from its own
// counters: the scale model's copper structure (FUSE requests by
// operation as the kernel sends them, the pushes that replace READs,
// the requests each hop sends up, the root's backend operations) is
// checked against these.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"
)

// NodeCalls is one copper node's requests during one phase (the
// difference of its stats before and after the phase).
type NodeCalls struct {
	Rank int `json:"rank"`
	// Fuse: FUSE requests its view handled, by operation (stats fuse_calls).
	Fuse map[string]int64 `json:"fuse"`
	// Pushed: listed small files stored in the kernel's page cache (no
	// LOOKUP or READ reaches the node for them); Late and Failed: stores
	// that did not happen (stats kernel_pushes).
	Pushed      int64 `json:"pushed"`
	PushedBytes int64 `json:"pushed_bytes"`
	PushLate    int64 `json:"push_late,omitempty"`
	PushFailed  int64 `json:"push_failed,omitempty"`
	// Forwarded: requests sent to its parent, by operation; Backend: the
	// backend operations it made (the root's), by operation.
	Forwarded map[string]int64 `json:"forwarded,omitempty"`
	Backend   map[string]int64 `json:"backend,omitempty"`
}

// nodeCounters is the part of `copper-node stats --json` NodeCalls reads.
type nodeCounters struct {
	Fuse   map[string]int64 `json:"fuse_calls"`
	Pushes struct {
		Pushed int64 `json:"pushed"`
		Bytes  int64 `json:"pushed_bytes"`
		Late   int64 `json:"late"`
		Failed int64 `json:"failed"`
	} `json:"kernel_pushes"`
	Node struct {
		Ops []struct {
			Op         string `json:"op"`
			Forwarded  int64  `json:"forwarded"`
			BackendOps int64  `json:"backend_ops"`
		} `json:"ops"`
	} `json:"node"`
}

// counters reads every node's counters (nil for a node whose stats could
// not be read: its row then has no calls).
func (t *copperTree) counters(ctx context.Context) []*nodeCounters {
	out := make([]*nodeCounters, len(t.mounts))
	for rank, m := range t.mounts {
		res, err := runBounded(ctx, 30*time.Second, t.r.copperEnv(), filepath.Join(t.r.cfg.Bin, "copper-node"), "stats", "--mount", m, "--json")
		if err != nil {
			continue
		}
		var c nodeCounters
		if json.Unmarshal([]byte(res.stdout), &c) == nil {
			out[rank] = &c
		}
	}
	return out
}

// nodeCalls is what each node did between before and after; an error
// names the first node whose counters are missing.
func nodeCalls(before, after []*nodeCounters) ([]NodeCalls, error) {
	out := make([]NodeCalls, 0, len(after))
	for rank, a := range after {
		if a == nil || rank >= len(before) || before[rank] == nil {
			return nil, fmt.Errorf("rank %d: copper-node stats --json not read", rank)
		}
		b := before[rank]
		nc := NodeCalls{Rank: rank, Fuse: diffCounts(b.Fuse, a.Fuse),
			Pushed: a.Pushes.Pushed - b.Pushes.Pushed, PushedBytes: a.Pushes.Bytes - b.Pushes.Bytes,
			PushLate: a.Pushes.Late - b.Pushes.Late, PushFailed: a.Pushes.Failed - b.Pushes.Failed}
		fwdB, beB := opCounts(b)
		fwdA, beA := opCounts(a)
		nc.Forwarded, nc.Backend = diffCounts(fwdB, fwdA), diffCounts(beB, beA)
		out = append(out, nc)
	}
	return out, nil
}

// opCounts is a node's forwarded requests and backend operations by op.
func opCounts(c *nodeCounters) (fwd, backend map[string]int64) {
	fwd, backend = map[string]int64{}, map[string]int64{}
	for _, o := range c.Node.Ops {
		fwd[o.Op], backend[o.Op] = o.Forwarded, o.BackendOps
	}
	return fwd, backend
}

// diffCounts is after − before per key, keeping only keys that grew.
func diffCounts(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// recordCalls puts what each copper node did since before into row and
// returns the counters now (the next phase's before). Read after the
// phase's CPU: the stats commands are not the phase's.
func (r *runner) recordCalls(ctx context.Context, e *env, row *Row, before []*nodeCounters) []*nodeCounters {
	if e.tree == nil {
		return nil
	}
	after := e.tree.counters(ctx)
	calls, err := nodeCalls(before, after)
	if err != nil {
		r.res.Errors = append(r.res.Errors, fmt.Sprintf("%s %s N=%d %s: node calls: %v", row.Workload, row.Mode, row.Nodes, row.Phase, err))
	}
	row.NodeCalls = calls
	return after
}
