package fuse

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/op"
)

func TestViewMatchesSource(t *testing.T) {
	root := makeTree(t)
	m, _ := mountView(t, root, treeMaxCacheable, nil)
	mnt := m.Mountpoint()

	want := snapshot(t, root)
	got := snapshot(t, mnt)
	require.Len(t, got, len(want))
	for rel, w := range want {
		assert.Equal(t, w, got[rel], "view of %s", rel)
	}

	// Inode numbers come from the source's (dev, ino), the root's is fixed.
	for rel := range want {
		var src, view syscall.Stat_t
		require.NoError(t, syscall.Lstat(filepath.Join(root, rel), &src))
		require.NoError(t, syscall.Lstat(filepath.Join(mnt, rel), &view))
		if rel == "." {
			assert.Equal(t, uint64(rootIno), view.Ino)
			continue
		}
		assert.Equal(t, inodeNumber(src.Dev, src.Ino), view.Ino, "inode of %s", rel)
	}

	// Listings carry "." and "..", and d_ino agrees with st_ino.
	for _, dir := range []string{".", "a", "many", "emptydir", "dïr with space"} {
		entries := rawDirents(t, filepath.Join(mnt, dir))
		assert.Len(t, entries, len(want[dir].Names)+2, "entries of %s", dir)
		assert.Contains(t, entries, ".")
		assert.Contains(t, entries, "..")
		for _, name := range want[dir].Names {
			var st syscall.Stat_t
			require.NoError(t, syscall.Lstat(filepath.Join(mnt, dir, name), &st))
			assert.Equal(t, st.Ino, entries[name], "d_ino of %s/%s", dir, name)
		}
	}

	// Following links is the kernel's job and must behave as natively.
	data, err := os.ReadFile(filepath.Join(mnt, "links/rel"))
	require.NoError(t, err)
	assert.Equal(t, "hello copper\n", string(data))
	_, err = os.ReadDir(filepath.Join(mnt, "links/dirlink/b"))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(mnt, "links/loop1"))
	assert.ErrorIs(t, err, syscall.ELOOP)
	_, err = os.Stat(filepath.Join(mnt, "links/dangling"))
	assert.ErrorIs(t, err, syscall.ENOENT)
	var a, b syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(mnt, "a/small.txt"), &a))
	require.NoError(t, syscall.Stat(filepath.Join(mnt, "a/hardlink.txt"), &b))
	assert.Equal(t, a.Ino, b.Ino, "hard links share an inode")
}

func TestMutationsAreRefused(t *testing.T) {
	root := makeTree(t)
	m, _ := mountView(t, root, treeMaxCacheable, nil)
	before := snapshot(t, root)
	at := func(rel string) string { return filepath.Join(m.Mountpoint(), rel) }
	openWith := func(rel string, flags int) error {
		f, err := os.OpenFile(at(rel), flags, 0o644)
		if err == nil {
			f.Close()
		}
		return err
	}

	tests := []struct {
		name   string
		mutate func() error
	}{
		{"open for write", func() error { return openWith("a/small.txt", os.O_WRONLY) }},
		{"open read-write", func() error { return openWith("a/small.txt", os.O_RDWR) }},
		{"open append", func() error { return openWith("a/small.txt", os.O_WRONLY|os.O_APPEND) }},
		{"open truncate", func() error { return openWith("a/small.txt", os.O_RDONLY|os.O_TRUNC) }},
		{"create", func() error { return openWith("a/new.txt", os.O_CREATE|os.O_WRONLY) }},
		{"write file", func() error { return os.WriteFile(at("a/small.txt"), []byte("x"), 0o644) }},
		{"mkdir", func() error { return os.Mkdir(at("a/newdir"), 0o755) }},
		{"rmdir", func() error { return syscall.Rmdir(at("emptydir")) }},
		{"unlink", func() error { return syscall.Unlink(at("a/small.txt")) }},
		{"rename", func() error { return os.Rename(at("a/small.txt"), at("a/moved.txt")) }},
		{"chmod", func() error { return os.Chmod(at("a/small.txt"), 0o777) }},
		{"chown", func() error { return os.Lchown(at("a/small.txt"), 1, 1) }},
		{"truncate", func() error { return os.Truncate(at("a/small.txt"), 0) }},
		{"utimes", func() error { return os.Chtimes(at("a/small.txt"), time.Unix(1, 0), time.Unix(1, 0)) }},
		{"symlink", func() error { return os.Symlink("a/small.txt", at("newlink")) }},
		{"link", func() error { return os.Link(at("a/small.txt"), at("a/newhard")) }},
		{"mknod", func() error { return syscall.Mknod(at("fifo"), syscall.S_IFIFO|0o644, 0) }},
		{"setxattr", func() error { return syscall.Setxattr(at("a/small.txt"), "user.x", []byte("1"), 0) }},
		{"removexattr", func() error { return syscall.Removexattr(at("a/small.txt"), "user.x") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, tt.mutate(), syscall.EROFS)
		})
	}
	assert.Equal(t, before, snapshot(t, root), "the source changed")
}

// The kernel refuses mutations on the "ro" mount before they reach us;
// the node's own answers are checked here, without a mount.
func TestNodeRefusesMutations(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]syscall.Errno{}
	fsys, err := newFilesystem(newDirSource(t.TempDir(), 0), Options{
		Mount: "/nonexistent/mnt", Target: "/nonexistent/target",
		OnOp: func(name string, errno syscall.Errno, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			seen[name] = errno
		},
	})
	require.NoError(t, err)
	n := &node{fs: fsys, path: "/x"}
	ctx := context.Background()
	errnoOnly := func(_ any, errno syscall.Errno) syscall.Errno { return errno }

	tests := []struct {
		op   string
		call func() syscall.Errno
	}{
		{opSetattr, func() syscall.Errno { return n.Setattr(ctx, nil, nil, nil) }},
		{opWrite, func() syscall.Errno { return errnoOnly(n.Write(ctx, nil, []byte("x"), 0)) }},
		{opCreate, func() syscall.Errno { _, _, _, errno := n.Create(ctx, "y", 0, 0o644, nil); return errno }},
		{opTmpfile, func() syscall.Errno { _, _, _, errno := n.Tmpfile(ctx, 0, 0o644, nil); return errno }},
		{opMknod, func() syscall.Errno { return errnoOnly(n.Mknod(ctx, "y", 0, 0, nil)) }},
		{opMkdir, func() syscall.Errno { return errnoOnly(n.Mkdir(ctx, "y", 0o755, nil)) }},
		{opUnlink, func() syscall.Errno { return n.Unlink(ctx, "y") }},
		{opRmdir, func() syscall.Errno { return n.Rmdir(ctx, "y") }},
		{opRename, func() syscall.Errno { return n.Rename(ctx, "y", n, "z", 0) }},
		{opSymlink, func() syscall.Errno { return errnoOnly(n.Symlink(ctx, "t", "y", nil)) }},
		{opLink, func() syscall.Errno { return errnoOnly(n.Link(ctx, n, "y", nil)) }},
		{opSetxattr, func() syscall.Errno { return n.Setxattr(ctx, "user.x", nil, 0) }},
		{opRemovexattr, func() syscall.Errno { return n.Removexattr(ctx, "user.x") }},
		{opFallocate, func() syscall.Errno { return n.Allocate(ctx, nil, 0, 1, 0) }},
		{opCopyRange, func() syscall.Errno { return errnoOnly(n.CopyFileRange(ctx, nil, 0, nil, nil, 0, 1, 0)) }},
		{opOpen, func() syscall.Errno { _, _, errno := n.Open(ctx, syscall.O_WRONLY); return errno }},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			assert.Equal(t, syscall.EROFS, tt.call())
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, syscall.EROFS, seen[tt.op], "OnOp report")
		})
	}
	for _, flags := range []uint32{syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC, syscall.O_WRONLY | syscall.O_APPEND, syscall.O_CREAT} {
		_, _, errno := n.Open(ctx, flags)
		assert.Equal(t, syscall.EROFS, errno, "open flags %#x", flags)
	}
}

func TestGuardAnswersENOENT(t *testing.T) {
	testkit.RequireFuse(t)
	other := t.TempDir() // stands for another copper mount
	m, src := mountView(t, "/", 0, func(o *Options) { o.Guard = []string{other} })
	mnt := m.Mountpoint()

	for _, guardedView := range []string{mnt, other} {
		_, err := os.Lstat(filepath.Join(mnt, guardedView))
		assert.ErrorIs(t, err, syscall.ENOENT, "view of %s", guardedView)
		_, err = os.Lstat(filepath.Join(mnt, guardedView, "below"))
		assert.ErrorIs(t, err, syscall.ENOENT)
		assert.Zero(t, src.count(op.Getattr, guardedView), "the Source was asked for guarded %s", guardedView)

		// Listings agree with lookups: the guarded name is not shown.
		names, err := os.ReadDir(filepath.Join(mnt, filepath.Dir(guardedView)))
		require.NoError(t, err)
		for _, de := range names {
			assert.NotEqual(t, filepath.Base(guardedView), de.Name())
		}
	}
	_, err := os.Lstat(other)
	require.NoError(t, err, "the guarded directory exists natively")
	// Its parent is not guarded.
	_, err = os.Lstat(filepath.Join(mnt, filepath.Dir(mnt)))
	require.NoError(t, err)
}

// Shared libraries and Python extensions load through mmap. The mapping
// is read in a child process, as a real user of the view would.
func TestMmapThroughMount(t *testing.T) {
	root := makeTree(t)
	m, _ := mountView(t, root, treeMaxCacheable, nil)
	for _, rel := range []string{"a/b/c/deep.txt", "exactly.bin", "big.bin"} {
		t.Run(rel, func(t *testing.T) {
			want := snapshot(t, filepath.Join(root, rel))["."].SHA256
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := runHelper(ctx, "mmap", filepath.Join(m.Mountpoint(), rel), "").Output()
			require.NoError(t, err)
			assert.Equal(t, want, strings.TrimSpace(string(out)))
		})
	}
}

func TestKernelCachesAnswers(t *testing.T) {
	root := makeTree(t)
	m, src := mountView(t, root, treeMaxCacheable, nil)
	at := func(rel string) string { return filepath.Join(m.Mountpoint(), rel) }

	for range 3 {
		_, err := os.Lstat(at("a/small.txt"))
		require.NoError(t, err)
		_, err = os.Lstat(at("a/missing"))
		require.ErrorIs(t, err, syscall.ENOENT)
		data, err := os.ReadFile(at("a/b/c/deep.txt"))
		require.NoError(t, err)
		require.Len(t, data, 5000)
		_, err = os.ReadDir(at("many"))
		require.NoError(t, err)
	}
	assert.Equal(t, 1, src.count(op.Getattr, "/a/missing"), "negative entry cached")
	assert.Equal(t, 1, src.count(op.Read, "/a/b/c/deep.txt"), "page cache kept across opens")
	assert.Equal(t, 1, src.count(op.Readdir, "/many"), "listing cached")
	assert.Zero(t, src.count(op.Read, "/big.bin"), "large files never go through the Source")
}

func TestCloseSendsNoFlush(t *testing.T) {
	for _, mode := range openModes {
		t.Run(mode.name, func(t *testing.T) {
			root := makeTree(t)
			var mu sync.Mutex
			ops := map[string]int{}
			m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) {
				o.HandleOpens = mode.handleOpens
				o.OnOp = func(name string, _ syscall.Errno, _ time.Duration) {
					mu.Lock()
					defer mu.Unlock()
					ops[name]++
				}
			})
			for range 5 {
				_, err := os.ReadFile(filepath.Join(m.Mountpoint(), "a/small.txt"))
				require.NoError(t, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if mode.handleOpens {
				assert.Equal(t, 5, ops[opOpen])
			} else {
				assert.Equal(t, 1, ops[opOpen], "the first OPEN's ENOSYS ends OPEN for the mount")
				assert.Zero(t, ops[opRelease])
			}
			assert.LessOrEqual(t, ops[opFlush], 1, "close() must not cost a FLUSH each time")
		})
	}
}

// recordingProvider stands in for a future block cache.
type recordingProvider struct {
	mu     sync.Mutex
	opened []string
	next   ContentProvider
}

func (p *recordingProvider) Open(ctx context.Context, viewPath string, attr op.Attr) (Content, syscall.Errno) {
	p.mu.Lock()
	p.opened = append(p.opened, viewPath)
	p.mu.Unlock()
	return p.next.Open(ctx, viewPath, attr)
}

func (p *recordingProvider) paths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.opened...)
}

// tooBigSource answers every Read with EFBIG, as a node does for a file
// that grew past max_cacheable after it was stat'ed.
type tooBigSource struct{ *dirSource }

func (s tooBigSource) Get(ctx context.Context, o op.Op, p string) op.Result {
	if o == op.Read {
		return op.Fail(syscall.EFBIG)
	}
	return s.dirSource.Get(ctx, o, p)
}

func TestLargeFilesUseTheProvider(t *testing.T) {
	testkit.RequireFuse(t)
	root := makeTree(t)
	provider := &recordingProvider{next: DirectFiles{Target: root}}
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) { o.LargeFiles = provider })
	want, err := os.ReadFile(filepath.Join(root, "big.bin"))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(m.Mountpoint(), "big.bin"))
	require.NoError(t, err)
	assert.Equal(t, want, got)
	_, err = os.ReadFile(filepath.Join(m.Mountpoint(), "exactly.bin"))
	require.NoError(t, err)
	assert.Equal(t, []string{"/big.bin"}, provider.paths(), "only files over MaxCacheable")

	// A small file the Source now finds too big falls back to the provider.
	mnt := filepath.Join(t.TempDir(), "mnt2")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	m2, err := Mount(tooBigSource{newDirSource(root, 0)}, Options{Mount: mnt, Target: root, MaxCacheable: 1 << 30})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m2.Unmount() })
	want, err = os.ReadFile(filepath.Join(root, "a/b/c/deep.txt"))
	require.NoError(t, err)
	got, err = os.ReadFile(filepath.Join(mnt, "a/b/c/deep.txt"))
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestLocksIoctlXattrStatfs(t *testing.T) {
	root := makeTree(t)
	var mu sync.Mutex
	type ioctlCall struct {
		cmd  uint32
		path string
	}
	var ioctls []ioctlCall
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) {
		o.OnIoctl = func(cmd uint32, viewPath string) {
			mu.Lock()
			defer mu.Unlock()
			ioctls = append(ioctls, ioctlCall{cmd, viewPath})
		}
	})
	file := filepath.Join(m.Mountpoint(), "a/small.txt")

	t.Run("locks are local and real", func(t *testing.T) {
		f1, err := os.Open(file)
		require.NoError(t, err)
		defer f1.Close()
		f2, err := os.Open(file)
		require.NoError(t, err)
		defer f2.Close()
		require.NoError(t, syscall.Flock(int(f1.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
		assert.ErrorIs(t, syscall.Flock(int(f2.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), syscall.EWOULDBLOCK)
		require.NoError(t, syscall.Flock(int(f1.Fd()), syscall.LOCK_UN))
		lk := syscall.Flock_t{Type: syscall.F_RDLCK, Whence: 0, Start: 0, Len: 0}
		require.NoError(t, syscall.FcntlFlock(f1.Fd(), syscall.F_SETLK, &lk))
		require.NoError(t, syscall.FcntlFlock(f1.Fd(), syscall.F_GETLK, &lk))
	})

	t.Run("ioctl", func(t *testing.T) {
		for _, p := range []string{file, filepath.Join(m.Mountpoint(), "a")} {
			f, err := os.Open(p)
			require.NoError(t, err)
			_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), 100, 0)
			assert.Zero(t, errno, "ioctl 100 on %s", p)
			// isatty() must stay false on files.
			var termios syscall.Termios
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&termios)))
			assert.Equal(t, syscall.ENOTTY, errno)
			f.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		assert.Contains(t, ioctls, ioctlCall{100, "/a/small.txt"})
		assert.Contains(t, ioctls, ioctlCall{100, "/a"})
		// Terminal requests are answered before OnIoctl: every isatty()
		// sends one, and they are no Copper 1.0 command.
		for _, c := range ioctls {
			assert.NotEqual(t, uint32(syscall.TCGETS), c.cmd, "OnIoctl saw TCGETS on %s", c.path)
		}
	})

	t.Run("xattr", func(t *testing.T) {
		_, err := syscall.Getxattr(file, "user.anything", make([]byte, 64))
		assert.ErrorIs(t, err, syscall.ENODATA)
		n, err := syscall.Listxattr(file, make([]byte, 64))
		require.NoError(t, err)
		assert.Zero(t, n)
	})

	t.Run("statfs", func(t *testing.T) {
		var st syscall.Statfs_t
		require.NoError(t, syscall.Statfs(m.Mountpoint(), &st))
		assert.Positive(t, st.Namelen)
		const stRdonly = 1 // ST_RDONLY: the kernel sees a read-only mount
		assert.Equal(t, int64(stRdonly), st.Flags&stRdonly)
	})
}

func TestPythonImportsNumpyThroughMount(t *testing.T) {
	const python = "/usr/bin/python3"
	const dist = "/usr/lib/python3/dist-packages"
	if _, err := os.Stat(filepath.Join(dist, "numpy", "__init__.py")); err != nil {
		t.Fatalf("system numpy not installed (%v): install the test dependencies with `make test` or scripts/setup-test-deps.sh", err)
	}
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s not installed: install the test dependencies with `make test` or scripts/setup-test-deps.sh", python)
	}
	m, _ := mountView(t, "/", 1<<20, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c",
		"import numpy; print(numpy.__file__); print(int(numpy.arange(10).sum()))")
	cmd.Env = []string{
		"PYTHONPATH=" + filepath.Join(m.Mountpoint(), dist),
		"PYTHONDONTWRITEBYTECODE=1",
		"PATH=/usr/bin:/bin",
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "python: %s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 2, "python output: %s", out)
	assert.True(t, strings.HasPrefix(lines[0], m.Mountpoint()+"/"), "numpy loaded from %s", lines[0])
	assert.Equal(t, "45", lines[1])
}

// oddListingSource adds entries to the root listing that no kernel may
// be handed.
type oddListingSource struct{ *dirSource }

func (s oddListingSource) Get(ctx context.Context, o op.Op, p string) op.Result {
	r := s.dirSource.Get(ctx, o, p)
	if o == op.Readdir && p == "/" && r.OK() {
		for _, name := range []string{".", "..", "", "a/b", "nul\x00name", strings.Repeat("n", 256)} {
			r.Entries = append(r.Entries, op.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: 7})
		}
	}
	return r
}

func TestListingDropsInvalidNames(t *testing.T) {
	testkit.RequireFuse(t)
	root := makeTree(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	m, err := Mount(oddListingSource{newDirSource(root, 0)}, Options{Mount: mnt, Target: root})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Unmount() })

	got := rawDirents(t, mnt)
	want := snapshot(t, root)["."].Names
	assert.Len(t, got, len(want)+2, "listing %v", got)
	for _, name := range append(want, ".", "..") {
		assert.Contains(t, got, name)
	}
}

func TestUnmountBusyFallsBackToLazy(t *testing.T) {
	root := makeTree(t)
	m, _ := mountView(t, root, treeMaxCacheable, nil)
	f, err := os.Open(filepath.Join(m.Mountpoint(), "big.bin"))
	require.NoError(t, err)
	defer f.Close()
	cwd := filepath.Join(m.Mountpoint(), "a")
	dir, err := os.Open(cwd)
	require.NoError(t, err)
	defer dir.Close()

	require.NoError(t, m.Unmount(), "busy mount must be detached lazily")
	requireNoFuseMount(t, m.Mountpoint())
	require.NoError(t, m.Unmount(), "second Unmount is a no-op")

	// Open files keep working until closed; then the server stops.
	buf := make([]byte, 4096)
	_, err = f.ReadAt(buf, treeMaxCacheable)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, dir.Close())
	waited := make(chan struct{})
	go func() { m.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(20 * time.Second):
		t.Fatal("server still running after its last user left the detached mount")
	}
}

// syncBuffer collects log output written from server goroutines.
type syncBuffer = testkit.SyncBuffer

func TestFailuresAreLoggedAtDebug(t *testing.T) {
	root := makeTree(t)
	tests := []struct {
		name      string
		level     slog.Level
		debug     bool
		wantFail  bool // "fuse op failed" for the missing path
		wantTrace bool // go-fuse request tracing
	}{
		{"info level hides expected failures", slog.LevelInfo, false, false, false},
		{"debug level shows them", slog.LevelDebug, false, true, false},
		{"Debug adds go-fuse tracing", slog.LevelDebug, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out syncBuffer
			m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) {
				o.Logger = slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tt.level}))
				o.Debug = tt.debug
			})
			_, err := os.Lstat(filepath.Join(m.Mountpoint(), "a/missing.py"))
			require.ErrorIs(t, err, syscall.ENOENT)
			require.NoError(t, m.Unmount())
			logged := out.String()
			assert.Equal(t, tt.wantFail, strings.Contains(logged, "op=lookup path=/a/missing.py"), logged)
			assert.Equal(t, tt.wantTrace, strings.Contains(logged, "LOOKUP"), logged)
			assert.NotContains(t, logged, "level=ERROR")
		})
	}
}

func TestMountOptionsReachTheKernel(t *testing.T) {
	root := makeTree(t)
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) {
		o.MaxRead = 256 << 10
		o.MaxReadahead = 64 << 10
	})
	top, found, err := osutil.TopMount(m.Mountpoint())
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "fuse.copper", top.FSType)

	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	var line string
	for l := range strings.Lines(string(mountinfo)) {
		if strings.Contains(l, " "+m.Mountpoint()+" ") {
			line = l
		}
	}
	fields := strings.Fields(line)
	require.GreaterOrEqual(t, len(fields), 6, line)
	assert.Contains(t, strings.Split(fields[5], ","), "ro", "mount flags: %s", line)
	// The superblock too: on a read-write superblock every read marks
	// atime stale, and the next stat sends GETATTR despite attr_timeout_s.
	assert.Contains(t, strings.Split(fields[len(fields)-1], ","), "ro", "superblock flags: %s", line)
	assert.Contains(t, line, " - fuse.copper copper ")
	assert.Contains(t, line, "max_read=262144")
	assert.Contains(t, line, "default_permissions")

	readahead, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", top.Major, top.Minor))
	require.NoError(t, err)
	assert.Equal(t, "64", strings.TrimSpace(string(readahead)))
}

func TestMountRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	src := newDirSource(dir, 0)
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	tests := []struct {
		name string
		src  Source
		opts Options
		want string
	}{
		{"nil source", nil, Options{Mount: dir, Target: "/"}, "nil Source"},
		{"no mount", src, Options{Target: "/"}, "must both be set"},
		{"no target", src, Options{Mount: dir}, "must both be set"},
		{"negative max cacheable", src, Options{Mount: dir, Target: "/", MaxCacheable: -1}, "negative"},
		{"target inside mount", src, Options{Mount: dir, Target: filepath.Join(dir, "sub")}, "inside guarded"},
		{"target inside guard", src, Options{Mount: dir, Target: "/usr", Guard: []string{"/"}}, "inside guarded"},
		{"relative guard", src, Options{Mount: dir, Target: "/", Guard: []string{"rel"}}, "not an absolute path"},
		{"missing mount point", src, Options{Mount: filepath.Join(dir, "absent"), Target: "/usr"}, "no such file"},
		{"mount point is a file", src, Options{Mount: file, Target: "/usr"}, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Mount(tt.src, tt.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
