package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/internal/osutil"
)

// fsTimeout bounds one in-process access to a live mount.
const fsTimeout = 20 * time.Second

func TestFourNodesServeTheTree(t *testing.T) {
	src, want := makeFixture(t)
	c := newCluster(t, clusterConfig{nodes: 4, fanout: 2, target: src})
	c.startAll()

	// fanout 2: ranks 1 and 2 hang off the root, rank 3 off rank 1.
	for rank, parent := range []int{-1, 0, 0, 1} {
		st := c.stats(rank)
		assert.Equal(t, parent, st.Parent, "rank %d's parent", rank)
		assert.Equal(t, rank == 0, st.Node.Root, "rank %d root", rank)
		assert.True(t, st.Node.TreeReady, "rank %d tree-ready", rank)
	}

	for rank, got := range c.walkAll() {
		requireSameTree(t, fmt.Sprintf("rank %d's mount %s", rank, c.mount(rank)), want, got)
	}
}

func TestMutationsFailEROFS(t *testing.T) {
	src, _ := makeFixture(t)
	before, err := buildManifest(src)
	require.NoError(t, err)
	c := newCluster(t, clusterConfig{nodes: 2, fanout: 2, target: src})
	c.startAll()
	mnt := c.mount(1) // a child: its answers come through the tree
	file := filepath.Join(mnt, "dir1/a.txt")

	openWith := func(name string, flags int) func() error {
		return func() error {
			f, err := os.OpenFile(name, flags, 0o644)
			if err == nil {
				f.Close()
			}
			return err
		}
	}
	now := time.Now()
	cases := []struct {
		name string
		do   func() error
	}{
		{"open O_WRONLY", openWith(file, os.O_WRONLY)},
		{"open O_RDWR", openWith(file, os.O_RDWR)},
		{"open O_APPEND", openWith(file, os.O_WRONLY|os.O_APPEND)},
		{"open O_TRUNC", openWith(file, os.O_RDONLY|os.O_TRUNC)},
		{"create", openWith(filepath.Join(mnt, "dir1/new.txt"), os.O_CREATE|os.O_WRONLY|os.O_EXCL)},
		{"mkdir", func() error { return os.Mkdir(filepath.Join(mnt, "newdir"), 0o755) }},
		{"unlink", func() error { return syscall.Unlink(file) }},
		{"rmdir", func() error { return syscall.Rmdir(filepath.Join(mnt, "emptydir")) }},
		{"rename", func() error { return os.Rename(file, filepath.Join(mnt, "dir1/renamed.txt")) }},
		{"symlink", func() error { return os.Symlink("a.txt", filepath.Join(mnt, "dir1/newlink")) }},
		{"link", func() error { return os.Link(file, filepath.Join(mnt, "dir1/hardlink")) }},
		{"chmod", func() error { return os.Chmod(file, 0o777) }},
		{"chown", func() error { return os.Chown(file, 12345, 12345) }},
		{"truncate", func() error { return os.Truncate(file, 0) }},
		{"utimes", func() error { return os.Chtimes(file, now, now) }},
		{"setxattr", func() error { return unix.Setxattr(file, "user.copper", []byte("x"), 0) }},
		{"removexattr", func() error { return unix.Removexattr(file, "user.copper") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := within(t, fsTimeout, tc.name+" in "+mnt, tc.do)
			require.Error(t, err)
			assert.True(t, errors.Is(err, syscall.EROFS), "%s: got %v, want EROFS", tc.name, err)
		})
	}

	// The view still reads, and the source saw none of it.
	var data []byte
	require.NoError(t, within(t, fsTimeout, "read "+file, func() (err error) {
		data, err = os.ReadFile(file)
		return err
	}))
	assert.Len(t, data, 17)
	after, err := buildManifest(src)
	require.NoError(t, err)
	requireSameTree(t, "the source after the mutations", before, after)
	assert.Equal(t, before.digest(t), after.digest(t))
}

func TestNumpyImportThroughNonRootMount(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import numpy (%v: %s): install the test dependencies with `make test` or scripts/setup-test-deps.sh",
			python, err, out)
	}
	c := newCluster(t, clusterConfig{nodes: 3, fanout: 2}) // target "/"
	c.startAll()
	mnt := c.mount(2)

	cmd := exec.Command(python, "-c", "import numpy, sys; print(numpy.__file__); print(numpy.arange(10).sum())")
	cmd.Env = append(os.Environ(),
		"PYTHONPATH="+filepath.Join(mnt, "usr/lib/python3/dist-packages"),
		"PYTHONNOUSERSITE=1", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Dir = c.dir
	r, err := runBounded(cmd, walkTimeout)
	require.NoError(t, err)
	require.Zero(t, r.code, "python through %s: %s", mnt, r)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, "python output: %s", r)
	// Otherwise the system's copy was imported and the mount proved nothing.
	assert.True(t, strings.HasPrefix(lines[0], mnt+"/"), "numpy.__file__ = %s, want it under %s", lines[0], mnt)
	assert.Equal(t, "45", lines[1])

	st := c.stats(2)
	assert.False(t, st.Node.Root, "rank 2 must not be a root")
	assert.Equal(t, 0, st.Parent)
	assert.Equal(t, 1, st.Depth)
	forwarded, _, ok := st.op("read")
	require.True(t, ok, "stats has no read counters: %+v", st.Node.Ops)
	// Module bytes came from the parent: asked for (read), or with their
	// directory (dir_files_max_bytes; here every cacheable file is small).
	assert.Positive(t, forwarded+int64(st.Node.Cache.DirFiles.Read), "rank 2 got no file bytes from its parent")
}

func TestStopLeavesNothing(t *testing.T) {
	src, _ := makeFixture(t)
	c := newCluster(t, clusterConfig{nodes: 3, fanout: 2, target: src})
	nodes := c.startAll()
	require.Len(t, c.sockets(), 3, "control sockets while running")
	for r := range 3 {
		require.Equal(t, 1, mountsAt(t, c.mount(r)), "rank %d mounted", r)
	}

	// SIGTERM: the daemon unmounts and exits by itself.
	require.NoError(t, syscall.Kill(nodes[2].pid, syscall.SIGTERM))
	assert.True(t, c.waitGone(nodes[2].pid, stopTimeout), "rank 2 (pid %d) still running after SIGTERM", nodes[2].pid)
	assert.Zero(t, mountsAt(t, c.mount(2)), "rank 2's mount after SIGTERM")
	assert.Len(t, c.sockets(), 2, "control sockets after SIGTERM of rank 2")
	log := readLog(t, nodes[2].log)
	assert.Contains(t, log, "signal received")
	assert.NotContains(t, log, "level=ERROR")

	// copper-node stop, the root and its remaining child at once.
	errs := make([]error, 2)
	results := make([]result, 2)
	done := make(chan int, 2)
	for r := range 2 {
		go func() {
			results[r], errs[r] = c.stop(r)
			done <- r
		}()
	}
	<-done
	<-done
	for r := range 2 {
		require.NoError(t, errs[r])
		assert.Zero(t, results[r].code, "copper-node stop --mount %s: %s", c.mount(r), results[r])
		// stop returns once the process is gone.
		assert.False(t, osutil.ProcessMentions(nodes[r].pid, c.dir), "rank %d (pid %d) alive after stop returned", r, nodes[r].pid)
	}
	assert.Empty(t, mountsUnder(t, c.dir), "mounts left under %s", c.dir)
	assert.Empty(t, c.sockets(), "control sockets left")
	assert.Empty(t, processesMentioning(c.dir), "copper processes left")
	for _, n := range nodes {
		assert.NotContains(t, readLog(t, n.log), "level=ERROR", "rank %d's log", n.rank)
	}
}

func TestStaleMountIsCleaned(t *testing.T) {
	src, want := makeFixture(t)
	c := newCluster(t, clusterConfig{nodes: 2, fanout: 2, target: src})
	nodes := c.startAll()
	leaf := nodes[1]

	require.NoError(t, syscall.Kill(leaf.pid, syscall.SIGKILL))
	require.True(t, c.waitGone(leaf.pid, stopTimeout), "pid %d survived SIGKILL", leaf.pid)
	require.Equal(t, 1, mountsAt(t, c.mount(1)), "a killed node leaves its mount behind (stale)")

	again := c.start(1)
	assert.NotEqual(t, leaf.pid, again.pid)
	assert.Equal(t, 1, mountsAt(t, c.mount(1)), "mounts at %s after the restart (the stale one must be gone)", c.mount(1))
	assert.Regexp(t, `level=WARN msg="stale FUSE mount found`, readLog(t, again.log),
		"the restarted node should warn that it cleaned a stale mount")
	assert.Equal(t, again.pid, c.stats(1).PID)

	got, err := c.walk(1)
	require.NoError(t, err)
	requireSameTree(t, "the restarted rank 1's mount", want, got)
}

func TestBadInputsFailClearly(t *testing.T) {
	requireFuse(t)
	cases := []struct {
		name  string
		setup func(t *testing.T, c *cluster) ([]string, []string)
	}{
		{"rank outside the book", func(t *testing.T, c *cluster) ([]string, []string) {
			return c.serveArgs(5), []string{"rank 5", c.book, "2 ranks"}
		}},
		{"missing book", func(t *testing.T, c *cluster) ([]string, []string) {
			missing := filepath.Join(c.dir, "no-such.book")
			return replaceFlag(c.serveArgs(0), "--book", missing), []string{missing, "no such file"}
		}},
		{"malformed book line", func(t *testing.T, c *cluster) ([]string, []string) {
			bad := filepath.Join(c.dir, "bad.book")
			require.NoError(t, os.WriteFile(bad, []byte("# two ranks\nlocalhost "+c.endpoints[0]+"\nlocalhost\n"), 0o644))
			return replaceFlag(c.serveArgs(0), "--book", bad), []string{bad + ":3", `"localhost"`}
		}},
		{"unknown flag", func(t *testing.T, c *cluster) ([]string, []string) {
			return append(c.serveArgs(0), "--no-such-flag"), []string{"--no-such-flag"}
		}},
		{"log level 9", func(t *testing.T, c *cluster) ([]string, []string) {
			return replaceFlag(c.serveArgs(0), "--log-level", "9"), []string{"log_level", "9", "0..5"}
		}},
		{"target is a file", func(t *testing.T, c *cluster) ([]string, []string) {
			file := filepath.Join(c.dir, "target-file")
			require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
			return replaceFlag(c.serveArgs(0), "--target", file), []string{"target " + file + ": not a directory"}
		}},
		{"port in use", func(t *testing.T, c *cluster) ([]string, []string) {
			ln, err := net.Listen("tcp", c.endpoints[0])
			require.NoError(t, err, "hold rank 0's port")
			t.Cleanup(func() { ln.Close() })
			return c.serveArgs(0), []string{c.endpoints[0], "address already in use"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, clusterConfig{nodes: 2, fanout: 2, target: t.TempDir()})
			args, want := tc.setup(t, c)
			r, err := c.run(serveTimeout, args...)
			require.NoError(t, err)
			assert.NotZero(t, r.code, "copper-node %q succeeded: %s", args, r)
			for _, w := range want {
				assert.Contains(t, r.stderr, w, "stderr should name %q", w)
			}
			assert.NotContains(t, r.stdout, "ready")
			assert.Empty(t, mountsUnder(t, c.dir), "something got mounted")
			assert.Empty(t, processesMentioning(c.dir), "a copper-node process is left")
			assert.Empty(t, c.sockets(), "a control socket is left")
		})
	}
}

// replaceFlag sets the value following flag in args.
func replaceFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := range out[:len(out)-1] {
		if out[i] == flag {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}

func TestStartupTimingLines(t *testing.T) {
	src, _ := makeFixture(t)
	c := newCluster(t, clusterConfig{nodes: 3, fanout: 2, target: src})
	nodes := c.startAll()
	for _, n := range nodes {
		require.Equal(t, filepath.Join(c.logDir, c.jobID, "logs"), filepath.Dir(n.log), "rank %d's log file", n.rank)
		assert.Regexp(t, `provider registration completed after \d+ us`, readLog(t, n.log), "rank %d's log", n.rank)
	}

	// A read through a child; cat runs in a child process, bounded.
	r, err := runBounded(exec.Command("cat", filepath.Join(c.mount(2), "dir1/sub/b.txt")), walkTimeout)
	require.NoError(t, err)
	require.Zero(t, r.code, "cat through rank 2: %s", r)
	require.Len(t, r.stdout, 5000)

	firstRPC := regexp.MustCompile(`first successful parent rpc_[a-z_]+ completed after \d+ us since provider startup`)
	for _, n := range nodes[1:] {
		ok := eventually(5*time.Second, func() bool { return firstRPC.MatchString(readLog(t, n.log)) })
		assert.True(t, ok, "rank %d's log %s has no %q line:\n%s", n.rank, n.log, firstRPC, readLog(t, n.log))
	}
	assert.NotRegexp(t, firstRPC, readLog(t, nodes[0].log), "the root has no parent")
}

func TestCoalescedAcrossMountsColdCount(t *testing.T) {
	src, want := makeFixture(t)
	c := newCluster(t, clusterConfig{nodes: 4, fanout: 2, target: src})
	c.startAll()
	for rank, got := range c.walkAll() {
		requireSameTree(t, fmt.Sprintf("rank %d's mount", rank), want, got)
	}

	// Each path was asked of the backing filesystem once for the whole
	// tree, whatever the four kernels asked of their nodes: each
	// directory as one dirplus (getdents, then a stat of each entry and a
	// readlink of each link), never a readdir; "/" is the one getattr of
	// its own.
	expect := want.counts(testMaxCacheable)
	t.Logf("cold walk: %d paths, %d directories, %d symlinks, %d files up to max_cacheable_bytes",
		expect.paths, expect.dirs, expect.symlinks, expect.cacheableReads)
	st := c.stats(0)
	require.True(t, st.Node.Root)
	for _, tc := range []struct {
		op   string
		want int64
	}{
		{"getattr", expect.paths},
		{"dirplus", expect.dirs},
		{"readdir", 0},
		{"readlink", expect.symlinks},
		{"read", expect.cacheableReads},
	} {
		_, backend, ok := st.op(tc.op)
		require.True(t, ok, "stats has no %s counters", tc.op)
		assert.Equal(t, tc.want, backend, "root's backend %s count after a cold walk of 4 mounts", tc.op)
	}
	for rank := 1; rank < 4; rank++ {
		_, backend, _ := c.stats(rank).op("getattr")
		assert.Zero(t, backend, "rank %d is not a root and must not touch the backend", rank)
	}
}
