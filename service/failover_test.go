package service_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// TestClusterRootGone stops the root of a 7-node tree (0 → 1,2; 1 → 3,4;
// 2 → 5,6) before anything was read, then every other node reads the
// whole tree. Every answer must be right, and the filesystem must be
// reached only where root_failover says: with "successor", by rank 1
// alone, each path once (the once-per-tree guarantee survives the root);
// with "direct", by each of the root's children, each path once.
func TestClusterRootGone(t *testing.T) {
	tests := []struct {
		policy  string
		readers []int // ranks that must reach the filesystem
		dirplus bool  // whether they fetch directories whole
	}{
		{"successor", []int{1}, true},
		// Rate-limited direct reads go name by name: a token per operation.
		{"direct", []int{1, 2}, false},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			src := makeSourceTree(t, 40, 11, func(_ int, rng *rand.Rand) int { return rng.IntN(32 << 10) })
			want := src.expected(t)
			s := clusterSettings(t, src.root)
			s.Fanout = 2
			s.RootFailover = tc.policy
			s.DirectOpsPerS = 100000 // the limit is not under test here
			c := startReadyCluster(t, s, 7)
			require.Equal(t, []int{2, 0}, c.nodes[5].Position.Ancestors)

			require.NoError(t, c.nodes[0].Stop(t.Context()))
			rest := &cluster{nodes: c.nodes[1:], logs: c.logs}

			stats, more := src.requests()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			// Getattr on its own first: a Read also fills the metadata
			// table, so mixed in it would make the counts timing-dependent.
			require.NoError(t, rest.readEverywhere(ctx, stats, want, 1), "getattr with the root gone")
			require.NoError(t, rest.readEverywhere(ctx, append(more, stats...), want, 2), "the rest with the root gone")

			// Each directory once as a dirplus (its entries' stats and
			// readlinks included; "/" is the one getattr of its own).
			unique := map[op.Op]int{op.DirPlus: len(src.dirs), op.Getattr: len(src.paths), op.Readdir: 0,
				op.Readlink: len(src.links), op.Read: len(src.files), op.DirPlusNext: 0}
			if !tc.dirplus {
				unique[op.DirPlus], unique[op.Readdir] = 0, len(src.dirs)
			}
			for r := 1; r < 7; r++ {
				st := c.nodes[r].Node().Stats()
				assert.Zero(t, st.ForwardErrors, "rank %d: the failover must hide the dead root", r)
				reads := r == tc.readers[0] || (len(tc.readers) > 1 && r == tc.readers[1])
				for o, n := range unique {
					if reads {
						assert.EqualValues(t, n, st.Op(o).BackendOps, "rank %d backend %v: each path once", r, o)
					} else {
						assert.Zero(t, st.Op(o).BackendOps, "rank %d backend %v", r, o)
					}
				}
				switch r {
				case 1, 2: // the root's children leave it: counted
					assert.EqualValues(t, 1, st.Failovers, "rank %d failovers", r)
				default: // their parents are alive
					assert.Zero(t, st.Failovers, "rank %d failovers", r)
				}
			}
		})
	}
}
