package prefetch_test

// Prefetch in a real job: four mounted nodes of one tree in this process
// on loopback, started with the prefetch setting, walked afterwards
// through their FUSE mounts by a child process.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/prefetch"
	"github.com/hpc-copper/copper/service"
	"github.com/hpc-copper/copper/tree"
)

// clusterMaxCacheable is max_cacheable_bytes for the cluster fixtures.
const clusterMaxCacheable = 64 << 10

// requireMountable fails (never skips) when this machine cannot mount.
func requireMountable(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("/dev/fuse: %v: these tests mount FUSE; run scripts/setup-test-deps.sh", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("these tests mount FUSE directly: run them as root (euid %d)", os.Geteuid())
	}
}

// loopbackBook returns n address-book entries on free loopback ports,
// held open together so that they differ.
func loopbackBook(t *testing.T, n int) []tree.Entry {
	t.Helper()
	book := make([]tree.Entry, n)
	listeners := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err, "rank %d: pick a free port", i)
		listeners[i] = ln
		book[i] = tree.Entry{Host: "localhost", Endpoint: ln.Addr().String()}
	}
	for _, ln := range listeners {
		require.NoError(t, ln.Close())
	}
	return book
}

// syncBuffer collects log output written from server goroutines.
type syncBuffer = testkit.SyncBuffer

// mountedCluster is n mounted nodes of one tree, rank r in nodes[r].
type mountedCluster struct {
	nodes  []*service.Service
	mounts []string
	logs   *syncBuffer
}

// startMountedCluster starts n mounted nodes serving target with the
// given prefetch manifest, one after the other (each Start returns once
// that node is tree-ready and mounted), and stops and unmounts them at
// cleanup.
func startMountedCluster(t *testing.T, target, manifest string, n int) *mountedCluster {
	t.Helper()
	requireMountable(t)
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir()) // control sockets
	dir := t.TempDir()
	s, err := config.Load("local")
	require.NoError(t, err)
	s.Target = target
	s.Mount = filepath.Join(dir, "m{rank}")
	s.LogDir = filepath.Join(dir, "logs")
	s.CacheMemoryBytes = 256 << 20
	s.SpillDir = filepath.Join(dir, "spill")
	s.MaxCacheableBytes = clusterMaxCacheable
	s.MdEnoentTTLMs = 600_000 // no ENOENT entry lapses during a test
	// Counted backend ops must not include a successor's own reads after
	// a heartbeat false alarm (in-process nodes share one scheduler).
	s.HeartbeatTimeoutMs = 5000
	s.ReadyProbeInitialMs = 5
	s.ReadyProbeMaxMs = 100
	s.ReadyTimeoutS = 30
	s.RPCTimeoutS = 30
	s.Prefetch = manifest

	c := &mountedCluster{logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	book := loopbackBook(t, n)
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			t.Logf("node logs:\n%s", c.logs.String())
		}
	})
	for r := range n {
		svc, err := service.Start(t.Context(), s, service.Identity{Rank: r, Book: book, Token: []byte("prefetch-test-secret")},
			service.Options{Mount: true, Control: true, Logger: logger})
		require.NoError(t, err, "start rank %d", r)
		c.nodes = append(c.nodes, svc)
		c.mounts = append(c.mounts, svc.Settings.Mount)
	}
	return c
}

// stop stops every node; a mount left behind is detached.
func (c *mountedCluster) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for r, svc := range c.nodes {
		wg.Go(func() { assert.NoError(t, svc.Stop(ctx), "stop rank %d", r) })
	}
	wg.Wait()
	for _, m := range c.mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			t.Logf("lazy unmount of %s: %v", m, err)
		}
	}
}

// waitPrefetched waits for every node's prefetch and returns the final
// counters, rank by rank.
func (c *mountedCluster) waitPrefetched(t *testing.T) []prefetch.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out := make([]prefetch.Stats, len(c.nodes))
	for r := range c.nodes {
		// What `copper-node wait --prefetched` asks.
		var res service.PrefetchResult
		require.NoError(t, control.Call(ctx, c.mounts[r], control.Request{Cmd: "prefetch", Args: map[string]string{"wait": "true"}}, &res), "rank %d", r)
		if res.Stats != nil {
			out[r] = *res.Stats
		}
	}
	return out
}

// treeCounters are the counters that must not move once everything is
// prefetched: the root's backend operations and every node's requests
// to its parent.
type treeCounters struct {
	backend   map[string]int64 // root, by operation
	forwarded []int64          // by rank
}

func (c *mountedCluster) counters() treeCounters {
	tc := treeCounters{backend: map[string]int64{}}
	for _, svc := range c.nodes {
		st := svc.Node().Stats()
		var fwd int64
		for _, o := range st.Ops {
			fwd += o.Forwarded
			if st.Root {
				tc.backend[o.Op] = o.BackendOps
			}
		}
		tc.forwarded = append(tc.forwarded, fwd)
	}
	return tc
}

// fixture is a generated backing tree and its manifest.
type fixture struct {
	target   string
	manifest string
	paths    []string        // view paths the manifest lists
	read     map[string]bool // small regular files among them
	dirs     int
	links    int
	large    int
	bytes    int64 // content of the small files
}

// makeFixture builds n paths under a new directory: directories (some
// nested), symbolic links (to files, to directories, dangling) and
// files, three of them larger than max_cacheable_bytes, one empty and one
// with a newline in its name; and writes their sorted host paths the way
// report writes used_paths_existing.txt.
func makeFixture(t *testing.T, n int) fixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	f := fixture{target: filepath.Join(t.TempDir(), "env"), read: map[string]bool{}}
	require.NoError(t, os.Mkdir(f.target, 0o755))
	host := func(view string) string { return f.target + view }
	var dirs []string
	for i := range n / 10 {
		view := fmt.Sprintf("/d%02d", i)
		if i >= n/20 { // the second half nests under the first
			view = fmt.Sprintf("%s/s%02d", dirs[i-n/20], i)
		}
		require.NoError(t, os.Mkdir(host(view), 0o755))
		dirs = append(dirs, view)
		f.paths = append(f.paths, view)
	}
	f.dirs = len(dirs)
	var files []string
	for i := range n - n/10 - n/10 {
		name := fmt.Sprintf("f%03d.py", i)
		if i == 1 {
			name = "odd\nname.py"
		}
		view := op.Join(dirs[i%len(dirs)], name)
		size := 1 + rng.IntN(3000)
		switch {
		case i == 0:
			size = 0
		case i%80 == 5:
			size = clusterMaxCacheable + 1 + rng.IntN(1000)
			f.large++
		default:
			f.read[view] = true
			f.bytes += int64(size)
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.IntN(256))
		}
		require.NoError(t, os.WriteFile(host(view), data, 0o644))
		if size == 0 {
			f.read[view] = true
		}
		files = append(files, view)
		f.paths = append(f.paths, view)
	}
	for i := range n / 10 {
		view := op.Join(dirs[(i*7)%len(dirs)], fmt.Sprintf("l%02d", i))
		var to string
		switch i % 3 {
		case 0:
			to = host(files[i])
		case 1:
			to = "../" + strings.TrimPrefix(dirs[i], "/")
		default:
			to = "/nonexistent/dangling/" + strconv.Itoa(i)
		}
		require.NoError(t, os.Symlink(to, host(view)))
		f.paths = append(f.paths, view)
		f.links++
	}
	require.Len(t, f.paths, n)

	hostPaths := make([]string, len(f.paths))
	for i, p := range f.paths {
		hostPaths[i] = host(p)
	}
	slices.Sort(hostPaths)
	var b strings.Builder
	for _, p := range hostPaths {
		if strings.ContainsAny(p, "\n\r") {
			p = strconv.Quote(p)
		}
		b.WriteString(p + "\n")
	}
	f.manifest = filepath.Join(t.TempDir(), "used_paths_existing.txt")
	require.NoError(t, os.WriteFile(f.manifest, []byte(b.String()), 0o644))
	return f
}

// walkMounts walks the paths on the mounts in a child process, bounded
// by a timeout, and returns what it saw.
func walkMounts(t *testing.T, mounts []string, f fixture) walkResult {
	t.Helper()
	return runHelper[walkResult](t, walkEnv, walkJob{Mounts: mounts, Paths: f.paths, Read: f.read})
}

// After every node has prefetched a manifest, a first use of every path
// on every node costs the tree nothing: no backend operation at the root,
// no request to a parent.
func TestClusterPrefetchMakesColdWalkFree(t *testing.T) {
	f := makeFixture(t, 300)
	c := startMountedCluster(t, f.target, f.manifest, 4)

	want := prefetch.Stats{
		Manifest: f.manifest,
		Total:    300, Done: 300,
		Files: int64(len(f.read)), Dirs: int64(f.dirs), Links: int64(f.links), Bytes: f.bytes,
		SkippedLarge: int64(f.large),
		Started:      true, Finished: true,
	}
	for r, st := range c.waitPrefetched(t) {
		st.ElapsedSec, st.Ancestors = 0, 0
		assert.Equal(t, want, st, "rank %d", r)
	}
	assert.Equal(t, 4, strings.Count(c.logs.String(), "prefetch finished"), "each node logs its summary")

	// The control socket tells scripts the same.
	var res service.PrefetchResult
	require.NoError(t, control.Call(t.Context(), c.mounts[3], control.Request{Cmd: "prefetch", Args: map[string]string{"wait": "true", "timeout": "30s"}}, &res))
	require.True(t, res.Enabled)
	assert.Equal(t, int64(300), res.Stats.Done)
	assert.True(t, res.Stats.Finished)

	// Each path was read from the file system once for the whole tree:
	// every directory (the target too) once as a dirplus, which stats
	// each of the 300 paths and reads each link; the getattr of the
	// target itself; each small file once.
	before := c.counters()
	assert.Equal(t, map[string]int64{
		"getattr": 301, "readdir": 0, "readlink": int64(f.links), "read": int64(len(f.read)),
		"dirplus": int64(f.dirs) + 1, "dirplus_next": 0, "chunk": 0,
	}, before.backend)

	walked := walkMounts(t, c.mounts, f)
	assert.Equal(t, walkResult{
		Visited: 4 * 300, Dirs: 4 * f.dirs, Links: 4 * f.links, FilesRead: 4 * len(f.read), Bytes: 4 * f.bytes,
	}, walked)
	assert.Equal(t, before, c.counters(), "a cold walk through the mounts reached a parent or the file system")

	// The same asked of the nodes directly.
	for r, svc := range c.nodes {
		for _, p := range f.paths {
			a := svc.Node().Get(t.Context(), op.Getattr, p)
			require.True(t, a.OK(), "rank %d %q", r, p)
			switch {
			case a.Attr.IsDir():
				assert.True(t, svc.Node().Get(t.Context(), op.Readdir, p).OK())
			case a.Attr.IsSymlink():
				assert.True(t, svc.Node().Get(t.Context(), op.Readlink, p).OK())
			case f.read[p]:
				assert.Len(t, svc.Node().Get(t.Context(), op.Read, p).Data, int(a.Attr.Size))
			}
		}
	}
	assert.Equal(t, before, c.counters(), "requests through node.Get reached a parent or the file system")
}

// A manifest from an earlier run whose paths are partly gone or never
// were readable still completes, on every node, and reports each such
// entry in the counters with its real errno, as it travelled the tree.
func TestClusterPrefetchReportsBadEntries(t *testing.T) {
	target := filepath.Join(t.TempDir(), "env")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "lib"), 0o755))
	for i := range 5 {
		writeFile(t, filepath.Join(target, "lib", fmt.Sprintf("m%d.py", i)), 100)
	}
	writeFile(t, filepath.Join(target, "lib", "locked.py"), 100)
	require.NoError(t, os.Chmod(filepath.Join(target, "lib", "locked.py"), 0)) // root reads it anyway
	writeFile(t, filepath.Join(target, "lib", "huge.so"), clusterMaxCacheable+1)
	writeFile(t, filepath.Join(target, "lib", "removed.py"), 100)
	require.NoError(t, os.Symlink("/nonexistent/libfoo.so", filepath.Join(target, "lib", "dangling.so")))
	require.NoError(t, os.Symlink("cycle", filepath.Join(target, "cycle")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(target, "lib", "pipe"), 0o644))
	h := func(rel string) string { return filepath.Join(target, rel) }
	manifest := writeManifest(t, []string{
		"# an earlier run's used_paths_existing.txt, since edited",
		h("lib"),
		h("lib/m0.py"), h("lib/m1.py"), h("lib/m2.py"), h("lib/m3.py"), h("lib/m4.py"),
		h("lib/locked.py"),
		h("lib/huge.so"),                             // too large: attributes only
		h("lib/removed.py"),                          // removed below: missing
		h("lib/dangling.so"),                         // the link itself is fine
		"/nonexistent/libfoo.so",                     // its target: outside the target
		h("nonexistent/libfoo.so"),                   // under a directory that does not exist: missing
		h("lib/pipe"),                                // a FIFO: attributes only
		h("lib/m0.py/__init__.py"),                   // under a regular file: ENOTDIR
		h("cycle/x"),                                 // through a symlink loop: ELOOP
		h("lib/" + strings.Repeat("y", 300) + ".py"), // over NAME_MAX: ENAMETOOLONG
		"lib/relative.py",                            // not absolute: invalid
	})
	require.NoError(t, os.Remove(h("lib/removed.py")))

	c := startMountedCluster(t, target, manifest, 4)
	want := prefetch.Stats{
		Manifest: manifest,
		Total:    17, Done: 17,
		Files: 6, Dirs: 1, Links: 1, Other: 1, Bytes: 600,
		Missing:              2,
		Errors:               map[string]int64{"ENOTDIR": 1, "ELOOP": 1, "ENAMETOOLONG": 1},
		Invalid:              1,
		SkippedOutsideTarget: 1,
		SkippedLarge:         1,
		Started:              true,
		Finished:             true,
	}
	for r, st := range c.waitPrefetched(t) {
		st.ElapsedSec, st.Ancestors = 0, 0
		assert.Equal(t, want, st, "rank %d", r)
	}
	// The counters are in the node's status, as `copper-node stats` shows it.
	var status service.Status
	require.NoError(t, control.Call(t.Context(), c.mounts[2], control.Request{Cmd: "stats"}, &status))
	require.NotNil(t, status.Prefetch)
	assert.Equal(t, map[string]int64{"ENOTDIR": 1, "ELOOP": 1, "ENAMETOOLONG": 1}, status.Prefetch.Errors)
	assert.Equal(t, int64(2), status.Prefetch.Missing)
	assert.Contains(t, status.Prefetch.Summary(), "done, 17/17 paths")
	assert.Contains(t, c.logs.String(), "lib/relative.py", "the unusable line is named in a warning")

	// The good entries are warm everywhere, and so are the missing ones
	// (negative entries, within md_enoent_ttl_ms).
	before := c.counters()
	for r, svc := range c.nodes {
		assert.Len(t, svc.Node().Get(t.Context(), op.Read, "/lib/locked.py").Data, 100, "rank %d", r)
		assert.Equal(t, "/nonexistent/libfoo.so", svc.Node().Get(t.Context(), op.Readlink, "/lib/dangling.so").Target, "rank %d", r)
		assert.Equal(t, syscall.ENOENT, svc.Node().Get(t.Context(), op.Getattr, "/lib/removed.py").Errno, "rank %d", r)
		assert.Equal(t, syscall.ENOENT, svc.Node().Get(t.Context(), op.Getattr, "/nonexistent/libfoo.so").Errno, "rank %d", r)
	}
	assert.Equal(t, before, c.counters())
}
