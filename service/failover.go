package service

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/tree"
)

// failoverHops is a non-root node's failover order: its ancestors (parent
// ... root); then, with root_failover = "successor", the segment's
// successor root (index 1) — which itself, whose only ancestor is the
// root, takes over from its own backend — and last, with
// direct_ops_per_s > 0, its own rate-limited reads of the backing
// filesystem, which every host sees.
func failoverHops(s config.Settings, pos tree.Position, book []tree.Entry, bcfg backend.Config, log *slog.Logger) []node.Hop {
	hops := make([]node.Hop, 0, len(pos.Ancestors)+2)
	for _, r := range pos.Ancestors {
		hops = append(hops, node.Hop{Addr: book[r].Endpoint, Name: fmt.Sprintf("rank %d %s", r, book[r].Endpoint)})
	}
	if s.RootFailover == "successor" {
		succ := pos.First + 1
		switch {
		case pos.Index == 1:
			// The successor: the new root of its segment, unlimited.
			return append(hops, node.Hop{Name: "own backend (successor root)",
				Local: node.NewLocalBackend(bcfg, 0, "successor root", log)})
		case !slices.Contains(pos.Ancestors, succ):
			hops = append(hops, node.Hop{Addr: book[succ].Endpoint, Name: fmt.Sprintf("rank %d %s (successor root)", succ, book[succ].Endpoint)})
		}
	}
	if s.DirectOpsPerS > 0 {
		hops = append(hops, node.Hop{Name: "direct (own backend, rate-limited)",
			Local: node.NewLocalBackend(bcfg, float64(s.DirectOpsPerS), "direct reads", log)})
	}
	return hops
}

// parentRetry is how often a node away from its parent re-dials and
// probes it in the background: cheap (never on a request's path), and a
// parent left on a false alarm (a heartbeat missed on an overloaded host)
// gets its subtree back soon.
const parentRetry = 10 * time.Second

// dialTimeout bounds one dial of an ancestor: with heartbeats on, a
// stopped process (whose kernel still accepts the connection but never
// says hello) is given up within two heartbeat timeouts.
func dialTimeout(s config.Settings) time.Duration {
	if hb := s.HeartbeatTimeout(); hb > 0 {
		return 2 * hb
	}
	return 0
}
