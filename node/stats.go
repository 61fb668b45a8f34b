package node

import (
	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/op"
)

// OpStats counts one operation type on one node.
type OpStats struct {
	Op         string `json:"op"`
	Hits       int64  `json:"hits"`
	Misses     int64  `json:"misses"`
	Coalesced  int64  `json:"coalesced_waits"`
	Forwarded  int64  `json:"forwarded"`
	BackendOps int64  `json:"backend_ops"`
}

// Stats is a snapshot of a node's counters.
type Stats struct {
	Rank          int         `json:"rank"`
	Root          bool        `json:"root"`
	TreeReady     bool        `json:"tree_ready"`
	Ops           []OpStats   `json:"ops"`
	ForwardErrors int64       `json:"forward_errors"`
	InFlight      int64       `json:"in_flight"`
	Failovers     int64       `json:"failovers"`
	ReadyProbes   int64       `json:"ready_probes"` // readiness probes sent to the parent
	ReadyHeld     int64       `json:"ready_held"`   // children's readiness probes held now
	Cache         cache.Stats `json:"cache"`
	Chunks        *ChunkStats `json:"chunks,omitempty"` // nil: no chunk store
}

// Stats returns the node's counters and its cache's.
func (n *Node) Stats() Stats {
	s := Stats{
		Rank:          n.cfg.Rank,
		Root:          n.IsRoot(),
		TreeReady:     n.TreeReady(),
		ForwardErrors: n.fwdErrors.Load(),
		InFlight:      n.inFlight.Load(),
		ReadyProbes:   n.probes.Load(),
		ReadyHeld:     n.held.Load(),
		Cache:         n.cfg.Cache.Stats(),
		Chunks:        n.chunkStats(),
	}
	if u, ok := n.cfg.Parent.(interface{ Failovers() int64 }); ok {
		s.Failovers = u.Failovers()
	}
	// A non-root's filesystem operations: successor takeover, direct reads.
	local, _ := n.cfg.Parent.(interface{ BackendOps(op.Op) int64 })
	for _, o := range op.All {
		if o == op.IsReady {
			continue
		}
		st := OpStats{
			Op:        o.String(),
			Hits:      n.hits[o].Load(),
			Misses:    n.misses[o].Load(),
			Coalesced: n.coalesced[o].Load(),
			Forwarded: n.forwarded[o].Load(),
		}
		if n.cfg.Backend != nil {
			st.BackendOps = n.cfg.Backend.Ops(o)
		} else if local != nil {
			st.BackendOps = local.BackendOps(o)
		}
		s.Ops = append(s.Ops, st)
	}
	return s
}

// Op returns the counters of one operation type.
func (s Stats) Op(o op.Op) OpStats {
	for _, st := range s.Ops {
		if st.Op == o.String() {
			return st
		}
	}
	return OpStats{Op: o.String()}
}
