package service_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-copper/copper/op"
)

// smallFileTree builds a source of n small files (0..4 KiB) spread over
// 20 directories.
func smallFileTree(b *testing.B, n int) sourceTree {
	b.Helper()
	// makeSourceTree mixes in directories and links; ask for enough paths
	// that at least n are files, then keep n.
	src := makeSourceTree(b, n*5/4+50, 2000, func(_ int, rng *rand.Rand) int { return rng.IntN(4 << 10) })
	if len(src.files) < n {
		b.Fatalf("source has %d files, want %d", len(src.files), n)
	}
	src.files = src.files[:n]
	return src
}

// cpuTime is the process's user and system CPU time: every in-process
// node's, the pass's cost on a shared host whose wall time is noisy.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClusterColdRead64 measures one cold pass of a job's startup
// read pattern: 64 fresh nodes each Getattr and Read 2,000 small files at
// once. Setup and teardown of the cluster are not timed.
//
// Metrics: ms/pass is the wall time of the pass; backend-ops/pass the
// root's file system operations (ideally 2 per file, fewer when a Read's
// metadata answers a later Getattr; with dirplus, every operation of the
// root's file system: getdents, lstats, reads); fwd/node the requests a
// non-root node sent its parent; heap-B/cached-B the live heap the pass
// added over the cache's own estimate of what it holds; cpu-us/fwd the
// pass's process CPU over the requests nodes forwarded.
func BenchmarkClusterColdRead64(b *testing.B) {
	const nodes, files = 64, 2000
	b.StopTimer() // only the pass is timed
	src := smallFileTree(b, files)
	want := src.expected(b)
	var reqs []request
	for _, p := range src.files {
		reqs = append(reqs, request{op.Getattr, p}, request{op.Read, p})
	}
	s := clusterSettings(b, src.root)

	var wall, cpu time.Duration
	var backendOps, forwarded, heapGrowth, cached int64
	for i := range b.N {
		c := startCluster(context.Background(), b, s, nodes, func(int) []byte { return []byte("bench-job-secret") })
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := c.awaitReady(ctx); err != nil {
			cancel()
			_ = c.stop()
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)

		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		err := c.readEverywhere(ctx, reqs, want, uint64(i))
		wall += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		cancel()
		if err != nil {
			_ = c.stop()
			b.Fatal(err)
		}

		runtime.GC()
		runtime.ReadMemStats(&after)
		heapGrowth += int64(after.HeapInuse) - int64(before.HeapInuse)
		for r, st := range nodeStats(c) {
			if st.ForwardErrors != 0 {
				b.Errorf("rank %d: %d forward errors", r, st.ForwardErrors)
			}
			cached += st.Cache.Bytes
			for _, o := range st.Ops {
				backendOps += o.BackendOps // dirplus and the stats in it too
				if r > 0 {
					forwarded += o.Forwarded
				}
			}
		}
		if err := c.stop(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "ms/pass")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/pass")
	b.ReportMetric(float64(backendOps)/float64(b.N), "backend-ops/pass")
	b.ReportMetric(float64(forwarded)/float64(b.N)/(nodes-1), "fwd/node")
	// All of the pass's CPU (readers, caches, backend) over the requests
	// nodes forwarded: what a forwarded request costs, everything included.
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(forwarded, 1)), "cpu-us/fwd")
	b.ReportMetric(float64(heapGrowth)/float64(max(cached, 1)), "heap-B/cached-B")
	b.ReportMetric(float64(cached)/float64(b.N)/nodes, "cached-B/node")
}

// BenchmarkLeafGetHit measures warm requests on a leaf: every answer comes
// from the leaf's cache, from many goroutines at once (FUSE's threads).
func BenchmarkLeafGetHit(b *testing.B) {
	src := smallFileTree(b, 256)
	s := clusterSettings(b, src.root)
	s.Fanout = 2
	c := startCluster(context.Background(), b, s, 3, func(int) []byte { return []byte("bench-job-secret") })
	b.Cleanup(func() {
		if err := c.stop(); err != nil {
			b.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.awaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	leaf := c.nodes[2].Node()

	for _, o := range []op.Op{op.Getattr, op.Read} {
		b.Run(o.String(), func(b *testing.B) {
			for _, p := range src.files {
				if r := leaf.Get(ctx, o, p); !r.OK() {
					b.Fatalf("warming %v %s: %v", o, p, r.Errno)
				}
			}
			forwarded := leaf.Stats().Op(o).Forwarded
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if r := leaf.Get(ctx, o, src.files[i%len(src.files)]); !r.OK() {
						b.Errorf("%v %s: %v", o, src.files[i%len(src.files)], r.Errno)
						return
					}
					i++
				}
			})
			b.StopTimer()
			if n := leaf.Stats().Op(o).Forwarded - forwarded; n != 0 {
				b.Fatalf("leaf forwarded %d warm %v requests", n, o)
			}
		})
	}
}
