package service_test

// In-process clusters: many copper nodes (without FUSE) in this one test
// process on loopback, each with its own server, cache and upstream, so
// that the whole request path (cache, singleflight, wire, failover,
// authentication, backend) runs as it does across a job's nodes.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/internal/testkit"
	cnet "github.com/hpc-copper/copper/net"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/service"
	"github.com/hpc-copper/copper/tree"
)

// workersPerNode bounds each node's concurrent local requests. With 64
// nodes this keeps the goroutine count (workers, flights, server
// handlers) well under the race detector's limit of 8128.
const workersPerNode = 8

// clusterSettings returns the local site's settings for nodes serving
// target: mounts in a temporary directory (never created: no FUSE), a
// fixed cache budget large enough that nothing is evicted, and fast
// readiness probing.
func clusterSettings(tb testing.TB, target string) config.Settings {
	tb.Helper()
	s, err := config.Load("local")
	require.NoError(tb, err)
	s.Target = target
	s.Mount = filepath.Join(tb.TempDir(), "{rank}", "mnt")
	s.LogDir = tb.TempDir()
	s.SpillDir = filepath.Join(tb.TempDir(), "spill") // not /tmp/copper-spill-$USER: nothing outlives the test
	s.CacheMemoryBytes = 512 << 20
	s.ReadyProbeInitialMs = 5
	s.ReadyProbeMaxMs = 100
	s.ReadyTimeoutS = 30
	s.RPCTimeoutS = 30
	// Up to 64 nodes share this one process (and the race detector) on a
	// loaded host: a parent's reader can be unscheduled for a second. The
	// heartbeat's own tests (net, e2e) use the default.
	s.HeartbeatTimeoutMs = 5000
	// The tests count each name's own requests (a read per file); the
	// files that ride with their directory are tested on their own
	// (dirfiles_test.go, the Python import). Benchmarks measure the default.
	if _, bench := tb.(*testing.B); !bench {
		s.DirFilesMaxBytes = 0
	}
	return s
}

// loopbackBook returns n address-book entries on distinct free loopback
// ports.
func loopbackBook(tb testing.TB, n int) []tree.Entry {
	tb.Helper()
	book := make([]tree.Entry, n)
	for i, addr := range testkit.FreeAddrs(tb, n) {
		book[i] = tree.Entry{Host: "localhost", Endpoint: addr}
	}
	return book
}

// cluster is a set of running nodes; rank r is nodes[r].
type cluster struct {
	nodes []*service.Service
	// logs collects every node's warnings and errors, shown only when a
	// test fails: writing to t.Log directly could outlive the test.
	logs *testkit.SyncBuffer
}

// startCluster starts n nodes of one job, rank r with token(r), and
// returns once every server accepts requests (not yet tree-ready). The
// caller stops the cluster (tests: t.Cleanup(c.stop)).
func startCluster(ctx context.Context, tb testing.TB, s config.Settings, n int, token func(rank int) []byte) *cluster {
	tb.Helper()
	return startClusterWith(ctx, tb, s, n, token, service.Options{})
}

// startClusterWith is startCluster with every node started with opts
// (its Logger replaced by the cluster's).
func startClusterWith(ctx context.Context, tb testing.TB, s config.Settings, n int, token func(rank int) []byte, opts service.Options) *cluster {
	tb.Helper()
	book := loopbackBook(tb, n)
	c := &cluster{nodes: make([]*service.Service, n), logs: &testkit.SyncBuffer{}}
	opts.Logger = slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for r := range n {
		svc, err := service.Start(ctx, s, service.Identity{Rank: r, Book: book, Token: token(r)}, opts)
		if err != nil {
			c.stop()
			require.NoError(tb, err, "start rank %d", r)
		}
		c.nodes[r] = svc
	}
	return c
}

// awaitReady waits until every node is tree-ready.
func (c *cluster) awaitReady(ctx context.Context) error {
	var g errgroup.Group
	for _, svc := range c.nodes {
		g.Go(func() error { return svc.AwaitTreeReady(ctx) })
	}
	return g.Wait()
}

// stop stops every node that was started, all at once.
func (c *cluster) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var g errgroup.Group
	for r, svc := range c.nodes {
		if svc == nil {
			continue
		}
		g.Go(func() error {
			if err := svc.Stop(ctx); err != nil {
				return fmt.Errorf("stop rank %d: %w", r, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// startReadyCluster starts n nodes sharing one token, waits until all are
// tree-ready and stops them at cleanup.
func startReadyCluster(t *testing.T, s config.Settings, n int) *cluster {
	t.Helper()
	return startReadyClusterWith(t, s, n, service.Options{})
}

// startReadyClusterWith is startReadyCluster with opts (see startClusterWith).
func startReadyClusterWith(t *testing.T, s config.Settings, n int, opts service.Options) *cluster {
	t.Helper()
	token := []byte("cluster-test-job-secret")
	c := startClusterWith(t.Context(), t, s, n, func(int) []byte { return token }, opts)
	t.Cleanup(func() {
		assert.NoError(t, c.stop())
		if t.Failed() {
			t.Logf("node logs (warn and above):\n%s", c.logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.awaitReady(ctx))
	return c
}

// sourceTree is a generated backing tree. Paths are view paths.
type sourceTree struct {
	root  string
	paths []string // every path, "/" first
	dirs  []string // "/" included
	links []string
	files []string
	bytes int64 // total file content
}

// makeSourceTree builds n paths under a new temporary directory: about 80%
// files (sizes from fileSize), 10% directories, 10% symbolic links, placed
// under random existing directories, plus an empty directory. Every inode
// gets an access time in the future, so that relatime never moves it while
// the cluster reads: Getattr answers can then be compared byte for byte.
func makeSourceTree(tb testing.TB, n int, seed uint64, fileSize func(i int, rng *rand.Rand) int) sourceTree {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	st := sourceTree{root: filepath.Join(tb.TempDir(), "src"), paths: []string{"/"}, dirs: []string{"/"}}
	require.NoError(tb, os.Mkdir(st.root, 0o755))
	host := func(view string) string { return backend.HostPath(st.root, view) }
	linkTargets := []string{"f0001", "../d0000/f0002", "/nonexistent/dangling", strings.Repeat("long/", 60) + "end"}

	add := func(kind byte, parent string, i int) {
		switch kind {
		case 'd':
			p := op.Join(parent, fmt.Sprintf("d%04d", i))
			require.NoError(tb, os.Mkdir(host(p), 0o755))
			st.dirs = append(st.dirs, p)
			st.paths = append(st.paths, p)
		case 'l':
			p := op.Join(parent, fmt.Sprintf("l%04d", i))
			require.NoError(tb, os.Symlink(linkTargets[i%len(linkTargets)], host(p)))
			st.links = append(st.links, p)
			st.paths = append(st.paths, p)
		default:
			p := op.Join(parent, fmt.Sprintf("f%04d", i))
			data := make([]byte, fileSize(len(st.files), rng))
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			require.NoError(tb, os.WriteFile(host(p), data, 0o644))
			st.files = append(st.files, p)
			st.paths = append(st.paths, p)
			st.bytes += int64(len(data))
		}
	}
	add('d', "/", 0) // /d0000 stays empty: nothing is placed in it
	for i := 1; len(st.paths) < n; i++ {
		parent := st.dirs[rng.IntN(len(st.dirs))]
		if parent == "/d0000" {
			parent = "/"
		}
		switch k := rng.IntN(10); {
		case k == 0:
			add('d', parent, i)
		case k == 1:
			add('l', parent, i)
		default:
			add('f', parent, i)
		}
	}

	future := time.Now().Add(1000 * time.Hour)
	for i, p := range st.paths {
		mtime := time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC)
		ts := []unix.Timespec{unix.NsecToTimespec(future.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		require.NoError(tb, unix.UtimesNanoAt(unix.AT_FDCWD, host(p), ts, unix.AT_SYMLINK_NOFOLLOW), "set times of %s", p)
	}
	return st
}

// request is one operation on one path.
// requests is every path of the tree as requests: a getattr of each, and
// the rest (readdir, readlink, read) by kind. Tests send the getattrs on
// their own first: a Read also fills the metadata table, so mixed in it
// would make the count of backend lstats depend on timing.
func (s sourceTree) requests() (stats, rest []request) {
	for _, p := range s.paths {
		stats = append(stats, request{op.Getattr, p})
	}
	for _, p := range s.dirs {
		rest = append(rest, request{op.Readdir, p})
	}
	for _, p := range s.links {
		rest = append(rest, request{op.Readlink, p})
	}
	for _, p := range s.files {
		rest = append(rest, request{op.Read, p})
	}
	return stats, rest
}

type request struct {
	op   op.Op
	path string
}

// expected answers every request of the tree straight from the source,
// without copper: Getattr, Readdir and Readlink from a private backend,
// Read from os.ReadFile with the file's Getattr.
func (st sourceTree) expected(tb testing.TB) map[request]op.Result {
	tb.Helper()
	b, err := backend.New(backend.Config{Target: st.root, Parallel: 1, MaxCacheable: 10 << 20})
	require.NoError(tb, err)
	defer b.Close()
	want := make(map[request]op.Result)
	do := func(o op.Op, p string) op.Result {
		r := b.Do(context.Background(), o, p)
		require.Zero(tb, r.Errno, "source %v %s", o, p)
		want[request{o, p}] = r
		return r
	}
	for _, p := range st.paths {
		do(op.Getattr, p)
	}
	for _, p := range st.dirs {
		do(op.Readdir, p)
	}
	for _, p := range st.links {
		do(op.Readlink, p)
	}
	for _, p := range st.files {
		data, err := os.ReadFile(backend.HostPath(st.root, p))
		require.NoError(tb, err)
		want[request{op.Read, p}] = op.Result{Attr: want[request{op.Getattr, p}].Attr, Data: data}
	}
	return want
}

// resultDiff describes how got differs from want, or returns "" when they
// carry the same bytes. Empty and nil slices are the same answer.
func resultDiff(want, got op.Result) string {
	var d []string
	if got.Errno != want.Errno {
		d = append(d, fmt.Sprintf("errno %v, want %v", got.Errno, want.Errno))
	}
	if got.Attr != want.Attr {
		d = append(d, fmt.Sprintf("attr %+v, want %+v", got.Attr, want.Attr))
	}
	if !slices.Equal(got.Entries, want.Entries) {
		d = append(d, fmt.Sprintf("%d entries %v, want %d %v", len(got.Entries), got.Entries, len(want.Entries), want.Entries))
	}
	if got.Target != want.Target {
		d = append(d, fmt.Sprintf("target %q, want %q", got.Target, want.Target))
	}
	if !bytes.Equal(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("%d data bytes, want %d (contents differ)", len(got.Data), len(want.Data)))
	}
	if got.Ready != want.Ready {
		d = append(d, fmt.Sprintf("ready %t, want %t", got.Ready, want.Ready))
	}
	return strings.Join(d, "; ")
}

// problems collects failures from many goroutines, keeping the first few
// messages so that a broken cluster does not flood the test log.
type problems struct {
	mu    sync.Mutex
	count int
	first []string
}

func (p *problems) addf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count++
	if len(p.first) < 20 {
		p.first = append(p.first, fmt.Sprintf(format, args...))
	}
}

func (p *problems) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count == 0 {
		return nil
	}
	return fmt.Errorf("%d wrong answers, first:\n%s", p.count, strings.Join(p.first, "\n"))
}

// readEverywhere makes every node ask its own shuffled copy of reqs, all
// nodes at once, workersPerNode requests at a time per node, and checks
// every answer against want.
func (c *cluster) readEverywhere(ctx context.Context, reqs []request, want map[request]op.Result, seed uint64) error {
	var bad problems
	var all sync.WaitGroup
	for r, svc := range c.nodes {
		mine := slices.Clone(reqs)
		rand.New(rand.NewPCG(seed, uint64(r))).Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
		all.Go(func() {
			var g errgroup.Group
			g.SetLimit(workersPerNode)
			for _, q := range mine {
				g.Go(func() error {
					got := svc.Node().Get(ctx, q.op, q.path)
					if d := resultDiff(want[q], got); d != "" {
						bad.addf("rank %d %v %s: %s", r, q.op, q.path, d)
					}
					return nil
				})
			}
			_ = g.Wait()
		})
	}
	all.Wait()
	return bad.err()
}

// TestCluster64 runs a 64-node job (automatic fan-out: 3, depth 4) where
// every node reads the whole 500-path tree at once: first a Getattr storm
// on every path, then Readdir, Readlink and Read of everything mixed with
// warm Getattrs. Every answer must be the source's bytes, and every node
// (root: its backend) must have fetched each directory (as a dirplus) and
// each file exactly once, and never a name of a listed directory again.
func TestCluster64(t *testing.T) {
	const nodes, paths = 64, 500
	require.Equal(t, 3, tree.AutoFanout(nodes), "the test is sized for fan-out 3")

	// Mostly small files, some up to 200 KiB; the first two are the
	// extremes (empty, exactly 200 KiB).
	size := func(i int, rng *rand.Rand) int {
		switch {
		case i == 0:
			return 0
		case i == 1:
			return 200 << 10
		case rng.IntN(100) < 70:
			return rng.IntN(4 << 10)
		case rng.IntN(100) < 85:
			return 4<<10 + rng.IntN(60<<10)
		default:
			return 64<<10 + rng.IntN(136<<10+1)
		}
	}
	src := makeSourceTree(t, paths, 64, size)
	require.Len(t, src.paths, paths)
	want := src.expected(t)

	c := startReadyCluster(t, clusterSettings(t, src.root), nodes)
	for r, svc := range c.nodes {
		require.Equal(t, 3, svc.Position.Fanout, "rank %d", r)
	}

	stats, rest := src.requests()

	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	// Getattr first on its own: a Read also fills the metadata table, so
	// mixed in it would make the count of backend lstats depend on timing.
	require.NoError(t, c.readEverywhere(ctx, stats, want, 1), "cold getattr storm")
	require.NoError(t, c.readEverywhere(ctx, append(rest, stats...), want, 2), "cold readdir/readlink/read with warm getattr")

	// Every directory is fetched once, as a dirplus: its getdents at the
	// root, then a stat of each entry (every path but "/") and a readlink
	// of each link; only "/" itself is a getattr of its own. Readdirs,
	// readlinks and every other getattr are answered from the listings.
	backendOps := map[op.Op]int{op.DirPlus: len(src.dirs), op.Getattr: len(src.paths), op.Readdir: 0,
		op.Readlink: len(src.links), op.Read: len(src.files)}
	forwarded := map[op.Op]int{op.DirPlus: len(src.dirs), op.Getattr: 1, op.Readdir: 0, op.Readlink: 0, op.Read: len(src.files)}
	for r, svc := range c.nodes {
		st := svc.Node().Stats()
		assert.True(t, st.TreeReady, "rank %d", r)
		assert.Zero(t, st.ForwardErrors, "rank %d forward errors", r)
		assert.Zero(t, st.Failovers, "rank %d failovers", r)
		assert.Zero(t, st.InFlight, "rank %d in flight", r)
		assert.Zero(t, st.Cache.Data.Evictions+st.Cache.Metadata.Evictions+st.Cache.Tree.Evictions+st.Cache.Links.Evictions,
			"rank %d evictions: the budget is meant to hold everything", r)
		for _, o := range op.All[1:] {
			if r == 0 {
				assert.EqualValues(t, backendOps[o], st.Op(o).BackendOps, "root backend %v: each path exactly once", o)
				assert.Zero(t, st.Op(o).Forwarded, "root forwarded %v", o)
			} else {
				assert.EqualValues(t, forwarded[o], st.Op(o).Forwarded, "rank %d forwarded %v: each path exactly once", r, o)
				assert.Zero(t, st.Op(o).BackendOps, "rank %d backend %v", r, o)
			}
		}
	}
}

// TestClusterFailover stops an intermediate node; its child must fail over
// to its grandparent (the root) and still answer cold requests correctly.
func TestClusterFailover(t *testing.T) {
	src := makeSourceTree(t, 20, 7, func(_ int, rng *rand.Rand) int { return rng.IntN(64 << 10) })
	want := src.expected(t)
	s := clusterSettings(t, src.root)
	s.Fanout = 2
	c := startReadyCluster(t, s, 7) // 0 → 1,2; 1 → 3,4; 2 → 5,6
	require.Equal(t, []int{1, 0}, c.nodes[3].Position.Ancestors)

	require.NoError(t, c.nodes[1].Stop(t.Context()))

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	file := src.files[0]
	for _, q := range []request{{op.Getattr, "/"}, {op.Getattr, file}, {op.Read, file}, {op.Readdir, "/"}} {
		got := c.nodes[3].Node().Get(ctx, q.op, q.path)
		assert.Empty(t, resultDiff(want[q], got), "rank 3 %v %s after its parent stopped", q.op, q.path)
	}
	st := c.nodes[3].Node().Stats()
	assert.GreaterOrEqual(t, st.Failovers, int64(1), "rank 3 failovers")
	assert.Zero(t, st.ForwardErrors, "rank 3: the failover must hide the dead parent")
	assert.EqualValues(t, 1, st.Op(op.Read).Forwarded)

	// The other subtree never noticed.
	got := c.nodes[5].Node().Get(ctx, op.Read, file)
	assert.Empty(t, resultDiff(want[request{op.Read, file}], got), "rank 5")
	assert.Zero(t, c.nodes[5].Node().Stats().Failovers, "rank 5 failovers")
}

// TestClusterRejectsWrongToken: a node whose token differs from its
// parent's never becomes tree-ready, and says why.
func TestClusterRejectsWrongToken(t *testing.T) {
	jobToken := []byte("the job's secret")
	tests := []struct {
		name       string
		childToken []byte
		wantAuth   bool // want an authentication failure
	}{
		{name: "same token", childToken: jobToken},
		{name: "different token", childToken: []byte("another job's secret"), wantAuth: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clusterSettings(t, t.TempDir())
			s.ReadyTimeoutS = 1
			c := startCluster(t.Context(), t, s, 2, func(rank int) []byte {
				if rank == 0 {
					return jobToken
				}
				return tt.childToken
			})
			t.Cleanup(func() { assert.NoError(t, c.stop()) })

			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err := c.nodes[1].AwaitTreeReady(ctx)
			if !tt.wantAuth {
				require.NoError(t, err)
				assert.True(t, c.nodes[1].Node().TreeReady())
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, cnet.ErrAuthFailed)
			assert.ErrorContains(t, err, "authentication failed")
			assert.ErrorContains(t, err, "rank 1")
			assert.NotErrorIs(t, ctx.Err(), context.DeadlineExceeded, "ready_timeout_s, not the test's deadline, must end the wait")
			assert.False(t, c.nodes[1].Node().TreeReady())
		})
	}
}

// TestStartRequiresToken: a node refuses to start without a job token of
// cnet.MinTokenLen bytes, naming its rank; nothing listens.
func TestStartRequiresToken(t *testing.T) {
	for _, token := range [][]byte{nil, []byte("fifteen bytes..")} {
		s := clusterSettings(t, t.TempDir())
		book := loopbackBook(t, 2)
		svc, err := service.Start(t.Context(), s, service.Identity{Rank: 1, Book: book, Token: token}, service.Options{})
		if svc != nil {
			_ = svc.Stop(t.Context())
		}
		require.ErrorContains(t, err, fmt.Sprintf("rank 1: job token of %d bytes: want at least %d", len(token), cnet.MinTokenLen))
	}
}

// forgedContent is what impostor parents serve.
var forgedContent = []byte("forged content\n")

// impostorServer holds addr and serves forged answers. With a token it is
// a real copper server of another job; without one it is hand-written and
// skips checking the client's proof, answering auth-ok with a guess, as
// an attacker's server would. It returns the count of requests it received.
func impostorServer(t *testing.T, addr string, token []byte) *atomic.Int64 {
	t.Helper()
	if token == nil {
		return testkit.AcceptAnyone(t, addr, forgedContent)
	}
	var calls atomic.Int64
	srv, err := cnet.Listen(t.Context(), addr, func(_ context.Context, o op.Op, _ string) op.Result {
		calls.Add(1)
		if o == op.IsReady {
			return op.Result{Ready: true}
		}
		return op.Result{Attr: op.Attr{Mode: syscall.S_IFREG | 0o644, Size: int64(len(forgedContent))}, Data: forgedContent}
	}, cnet.Config{Token: token})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return &calls
}

// TestClusterRefusesImpostorParent: rank 1's endpoint is held by an
// impostor that answers every request with forged content. Its child,
// rank 3, must never take an answer from it: it never becomes tree-ready,
// says why naming the impostor's address, and never serves the forged
// bytes, while the root serves the real file.
func TestClusterRefusesImpostorParent(t *testing.T) {
	tests := []struct {
		name  string
		token []byte // the impostor's; nil: hand-written, accepts any client
		want  string
	}{
		{name: "copper server of another job", token: []byte("not the job's secret, a guess"), want: "server closed the connection after the auth frame"},
		{name: "server that accepts anyone", want: "does not know the job token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(src, "lib.py"), []byte("real content\n"), 0o644))
			s := clusterSettings(t, src)
			s.Fanout = 2 // 0 → 1,2; 1 → 3
			s.ReadyTimeoutS = 1
			jobToken := []byte("the job's real secret")
			book := loopbackBook(t, 4)
			calls := impostorServer(t, book[1].Endpoint, tt.token)

			logs := &testkit.SyncBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			var nodes []*service.Service
			t.Cleanup(func() {
				for _, svc := range nodes {
					assert.NoError(t, svc.Stop(context.Background()))
				}
				if t.Failed() {
					t.Logf("node logs:\n%s", logs.String())
				}
			})
			start := func(r int) *service.Service {
				svc, err := service.Start(t.Context(), s, service.Identity{Rank: r, Book: book, Token: jobToken}, service.Options{Logger: logger})
				require.NoError(t, err, "rank %d", r)
				nodes = append(nodes, svc)
				return svc
			}
			root, child := start(0), start(3)
			require.Equal(t, []int{1, 0}, child.Position.Ancestors)

			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			require.NoError(t, root.AwaitTreeReady(ctx))
			err := child.AwaitTreeReady(ctx)
			require.ErrorIs(t, err, cnet.ErrAuthFailed)
			assert.ErrorContains(t, err, book[1].Endpoint)
			assert.ErrorContains(t, err, tt.want)

			// A node that is not tree-ready forwards nothing: its requests
			// wait (here until a short deadline) and fail.
			for _, o := range []op.Op{op.Read, op.Getattr} {
				short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				got := child.Node().Get(short, o, "/lib.py")
				cancel()
				assert.NotEqual(t, forgedContent, got.Data, "rank 3 served the impostor's bytes")
				assert.NotZero(t, got.Errno, "rank 3 %v: no trusted parent, no answer", o)
			}
			got := root.Node().Get(ctx, op.Read, "/lib.py")
			assert.Equal(t, "real content\n", string(got.Data))
			assert.Zero(t, calls.Load(), "requests that reached the impostor")
		})
	}
}

// TestClusterNegativeTTL: ENOENT for a name whose directory's listing is
// not held — here because the directory itself is missing — is forwarded
// once (as the dirplus of that directory), then answered from the leaf's
// negative cache (for every operation on the directory) until
// md_enoent_ttl_ms has passed, then forwarded again.
func TestClusterNegativeTTL(t *testing.T) {
	const ttl = 50 * time.Millisecond
	s := clusterSettings(t, t.TempDir())
	s.Fanout = 2
	s.MdEnoentTTLMs = ttl.Milliseconds()
	clock := testkit.NewClock()
	c := startReadyClusterWith(t, s, 7, service.Options{Now: clock.Now})
	leaf, root := c.nodes[6].Node(), c.nodes[0].Node() // 0 → 2 → 6

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	enoent := op.Fail(syscall.ENOENT)
	forwarded := func(st node.Stats) int64 {
		var n int64
		for _, o := range st.Ops {
			n += o.Forwarded
		}
		return n
	}
	const dir = "/missing"
	const path = dir + "/x.py"
	before, rootBefore := leaf.Stats(), root.Stats()
	first := leaf.Get(ctx, op.Getattr, path)
	clock.Advance(ttl - time.Millisecond) // still within the TTL
	second := leaf.Get(ctx, op.Getattr, path)
	read := leaf.Get(ctx, op.Read, dir)
	mid := leaf.Stats()
	require.Empty(t, resultDiff(enoent, first), "first ask")
	require.Empty(t, resultDiff(enoent, second), "second ask")
	require.Empty(t, resultDiff(enoent, read), "read of the missing directory")
	assert.EqualValues(t, 1, mid.Op(op.DirPlus).Forwarded-before.Op(op.DirPlus).Forwarded, "only the first ask is forwarded")
	assert.EqualValues(t, 1, forwarded(mid)-forwarded(before), "and nothing else")
	assert.EqualValues(t, 1, mid.Cache.NegativeStores-before.Cache.NegativeStores)
	assert.EqualValues(t, 2, mid.Cache.NegativeServes-before.Cache.NegativeServes)

	// Every node shares the clock: past the TTL, every hop's entry has
	// expired, and the ask reaches the root's backend again.
	clock.Advance(2 * time.Millisecond)
	third := leaf.Get(ctx, op.Getattr, path)
	after, rootAfter := leaf.Stats(), root.Stats()
	require.Empty(t, resultDiff(enoent, third), "ask after the TTL")
	assert.EqualValues(t, 2, forwarded(after)-forwarded(before), "forwarded again after the TTL")
	assert.GreaterOrEqual(t, after.Cache.NegativeExpires-before.Cache.NegativeExpires, uint64(1))
	assert.EqualValues(t, 2, rootAfter.Op(op.DirPlus).BackendOps-rootBefore.Op(op.DirPlus).BackendOps,
		"the root's backend was asked once per TTL")
	assert.Zero(t, after.ForwardErrors)
}

// nodeStats is a shorthand for benchmarks and tests that sum over nodes.
func nodeStats(c *cluster) []node.Stats {
	out := make([]node.Stats, len(c.nodes))
	for r, svc := range c.nodes {
		out[r] = svc.Node().Stats()
	}
	return out
}
