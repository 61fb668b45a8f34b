package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/hpc-copper/copper/op"
)

// BenchmarkRootGone compares the two root_failover policies: a 40-node
// tree (fan-out 3: the root has three children) loses its root before
// anything is read, then every survivor Getattrs and Reads 1,000 small
// files at once. Setup, the root's stop and teardown are not timed.
//
// Metrics: ms/pass is the wall time of the pass; fs-ops/path the
// survivors' filesystem operations per (op, path) asked (1 = once per
// tree, as with a live root); readers the number of nodes that touched
// the filesystem.
func BenchmarkRootGone(b *testing.B) {
	const nodes, files = 40, 1000
	for _, policy := range []string{"successor", "direct"} {
		b.Run(policy, func(b *testing.B) {
			b.StopTimer()
			src := smallFileTree(b, files)
			want := src.expected(b)
			var reqs []request
			for _, p := range src.files {
				reqs = append(reqs, request{op.Getattr, p}, request{op.Read, p})
			}
			s := clusterSettings(b, src.root)
			s.Fanout = 3
			s.RootFailover = policy
			s.DirectOpsPerS = 1 << 20 // the cap is not what is compared

			var wall time.Duration
			var fsOps, readers int64
			for i := range b.N {
				c := startCluster(context.Background(), b, s, nodes, func(int) []byte { return []byte("bench-job-secret") })
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				if err := c.awaitReady(ctx); err != nil {
					cancel()
					_ = c.stop()
					b.Fatal(err)
				}
				if err := c.nodes[0].Stop(ctx); err != nil {
					b.Fatal(err)
				}
				rest := &cluster{nodes: c.nodes[1:], logs: c.logs}
				b.StartTimer()
				start := time.Now()
				err := rest.readEverywhere(ctx, reqs, want, uint64(i))
				wall += time.Since(start)
				b.StopTimer()
				cancel()
				if err != nil {
					_ = c.stop()
					b.Fatal(err)
				}
				for r, st := range nodeStats(rest) {
					if st.ForwardErrors != 0 {
						b.Errorf("rank %d: %d forward errors", r+1, st.ForwardErrors)
					}
					n := st.Op(op.Getattr).BackendOps + st.Op(op.Read).BackendOps
					fsOps += n
					if n > 0 {
						readers++
					}
				}
				if err := c.stop(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "ms/pass")
			b.ReportMetric(float64(fsOps)/float64(b.N)/float64(2*files), "fs-ops/path")
			b.ReportMetric(float64(readers)/float64(b.N), "readers")
		})
	}
}
