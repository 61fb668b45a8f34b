package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/service"
	"github.com/hpc-copper/copper/tree"
)

// BenchmarkTreeReady1024 measures tree-ready propagation: 1,024 in-process
// nodes (no FUSE) of one job, each on its own loopback address, all started at once as a
// launcher starts them, each probing its parent with the local site's
// settings (a parent holds the probe until it is tree-ready, up to
// ready_probe_max_ms; one not yet listening is probed again with the
// backoff, ready_probe_initial_ms doubling to ready_probe_max_ms). ms/ready
// runs from the first Start until every node is tree-ready; a node is
// tree-ready only once its parent is, so the figure is the start-up of
// 1,024 servers plus the readiness wave down a depth-4 tree. All nodes
// share this host's cores.
func BenchmarkTreeReady1024(b *testing.B) {
	const nodes = 1024
	def, err := config.Load("local")
	if err != nil {
		b.Fatal(err)
	}
	s := clusterSettings(b, b.TempDir())
	s.ReadyProbeInitialMs, s.ReadyProbeMaxMs = def.ReadyProbeInitialMs, def.ReadyProbeMaxMs
	s.ReadyTimeoutS = 120
	token := []byte("bench-job-secret")
	logs := &syncDiscard{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError}))

	var total, started time.Duration
	var depth, fanout int
	for b.Loop() {
		book := spreadLoopbackBook(b, nodes)
		c := &cluster{nodes: make([]*service.Service, nodes)}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		start := time.Now()
		var lastStart atomic.Int64
		var g errgroup.Group
		for r := range nodes {
			g.Go(func() error {
				svc, err := service.Start(ctx, s, service.Identity{Rank: r, Book: book, Token: token}, service.Options{Logger: logger})
				if err != nil {
					return fmt.Errorf("start rank %d: %w", r, err)
				}
				c.nodes[r] = svc
				lastStart.Store(max(lastStart.Load(), int64(time.Since(start))))
				if err := svc.AwaitTreeReady(ctx); err != nil {
					return fmt.Errorf("rank %d: %w", r, err)
				}
				return nil
			})
		}
		err := g.Wait()
		total += time.Since(start)
		started += time.Duration(lastStart.Load())
		cancel()
		for _, svc := range c.nodes {
			if svc != nil {
				depth = max(depth, svc.Position.Depth)
				fanout = svc.Position.Fanout
			}
		}
		if stopErr := c.stop(); err == nil {
			err = stopErr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/ready")
	b.ReportMetric(float64(started.Milliseconds())/float64(b.N), "ms/all-started")
	b.ReportMetric(float64(depth), "depth")
	b.ReportMetric(float64(fanout), "fanout")
	b.ReportMetric(nodes, "nodes")
}

// syncDiscard drops log lines (errors included: a failure is returned).
type syncDiscard struct{}

func (syncDiscard) Write(p []byte) (int, error) { return len(p), nil }

// spreadLoopbackBook gives rank r its own loopback address,
// 127.1.(r/250).(r%250+1), all on one port the kernel found free, and
// its own host name, as in a job. Not 127.0.0.1 with a free port each:
// 1,024 nodes dialing their parents at once take ephemeral ports of
// 127.0.0.1 (the source address of every loopback connection), and one of
// those can be a port a later node was about to listen on. With every
// rank on "localhost", each node would also expand the settings of all
// the others to guard their mounts (service.guardedMounts), N² work that
// only ranks sharing a host pay.
func spreadLoopbackBook(tb testing.TB, n int) []tree.Entry {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.1.0.1:0")
	if err != nil {
		tb.Fatalf("a free port on 127.1.0.1: %v", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	book := make([]tree.Entry, n)
	for r := range book {
		book[r] = tree.Entry{
			Host:     fmt.Sprintf("node%04d", r),
			Endpoint: net.JoinHostPort(fmt.Sprintf("127.1.%d.%d", r/250, r%250+1), port),
		}
	}
	return book
}
