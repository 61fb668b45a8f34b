package service_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-copper/copper/op"
)

// importWalk is a Python-import-like cold walk: four sys.path directories;
// each import probes, directory by directory until found, the names
// CPython's FileFinder tries (M as a package directory, the extension
// suffixes, M.py); a found package then imports its modules the same way
// inside its directory. Each found module is read.
type importWalk struct {
	root string
	reqs []request // in import order
}

func newImportWalk(tb testing.TB) importWalk {
	tb.Helper()
	w := importWalk{root: filepath.Join(tb.TempDir(), "py")}
	sysPath := []string{"/lib/python3.12", "/lib/python3.12/lib-dynload", "/site-packages", "/user-site"}
	for _, d := range sysPath {
		if err := os.MkdirAll(filepath.Join(w.root, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(filepath.Join(w.root, p), []byte("x = 1\n"), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	suffixes := []string{".cpython-312-x86_64-linux-gnu.so", ".abi3.so", ".so", ".py"}
	// probe appends the lookups of module m in dir; found says whether
	// it is there (as m.py, or as a package directory when pkg).
	probe := func(dir, m string, found, pkg bool) {
		w.reqs = append(w.reqs, request{op.Getattr, op.Join(dir, m)})
		if pkg && found {
			w.reqs = append(w.reqs, request{op.Getattr, op.Join(op.Join(dir, m), "__init__.py")},
				request{op.Read, op.Join(op.Join(dir, m), "__init__.py")})
			return
		}
		for _, s := range suffixes {
			w.reqs = append(w.reqs, request{op.Getattr, op.Join(dir, m+s)})
		}
		if found {
			w.reqs = append(w.reqs, request{op.Read, op.Join(dir, m+".py")})
		}
	}
	// 40 standard-library modules, found in the first directory.
	for i := range 40 {
		m := fmt.Sprintf("std%02d", i)
		write(filepath.Join(sysPath[0], m+".py"))
		probe(sysPath[0], m, true, false)
	}
	// 10 site packages of 8 modules each, found in the third directory.
	for i := range 10 {
		p := fmt.Sprintf("pkg%02d", i)
		if err := os.MkdirAll(filepath.Join(w.root, sysPath[2], p), 0o755); err != nil {
			tb.Fatal(err)
		}
		write(filepath.Join(sysPath[2], p, "__init__.py"))
		for _, d := range sysPath[:2] {
			probe(d, p, false, true)
		}
		probe(sysPath[2], p, true, true)
		for j := range 8 {
			m := fmt.Sprintf("mod%d", j)
			write(filepath.Join(sysPath[2], p, m+".py"))
			probe(op.Join(sysPath[2], p), m, true, false)
		}
	}
	return w
}

// BenchmarkClusterColdImportWalk runs the import walk cold on every node
// of a 16-node tree at once, each node's imports in order. Metrics:
// fwd/node, the requests a non-root node sent its parent (its cold round
// trips); backend-ops/pass, the root's file system operations;
// ms/pass, the wall time of the pass; cpu-us/fwd, the pass's process CPU
// over the requests nodes forwarded.
func BenchmarkClusterColdImportWalk(b *testing.B) {
	const nodes = 16
	w := newImportWalk(b)
	b.StopTimer()
	s := clusterSettings(b, w.root)
	var wall, cpu time.Duration
	var fwd, backendOps int64
	for range b.N {
		c := startCluster(context.Background(), b, s, nodes, func(int) []byte { return []byte("bench-job-secret") })
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := c.awaitReady(ctx); err != nil {
			cancel()
			_ = c.stop()
			b.Fatal(err)
		}
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		var wg sync.WaitGroup
		var bad sync.Map
		for r, svc := range c.nodes {
			wg.Go(func() {
				for _, q := range w.reqs {
					got := svc.Node().Get(ctx, q.op, q.path)
					if got.Errno != 0 && got.Errno != syscall.ENOENT {
						bad.Store(r, fmt.Sprintf("rank %d %v %s: %v", r, q.op, q.path, got.Errno))
					}
				}
			})
		}
		wg.Wait()
		wall += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		cancel()
		bad.Range(func(_, v any) bool { b.Error(v); return false })
		for r, st := range nodeStats(c) {
			for _, o := range st.Ops {
				if r == 0 {
					backendOps += o.BackendOps
				} else {
					fwd += o.Forwarded
				}
			}
		}
		if err := c.stop(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "ms/pass")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/pass")
	b.ReportMetric(float64(fwd)/float64(b.N)/(nodes-1), "fwd/node")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(fwd, 1)), "cpu-us/fwd")
	b.ReportMetric(float64(backendOps)/float64(b.N), "backend-ops/pass")
	b.ReportMetric(float64(len(w.reqs)), "requests/node")
}
