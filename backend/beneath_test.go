package backend

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/op"
)

// escapeTree builds a target whose symlinks lead out of it (outside
// stands in for /etc) and one that stays inside, and returns both.
func escapeTree(t *testing.T) (target, outside string) {
	t.Helper()
	outside = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "shadow"), []byte("root:secret\n"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(outside, "sub"), 0o755))
	target = t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(target, "d/sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(target, "d/f.txt"), []byte("hello"), 0o644))
	up, err := filepath.Rel(filepath.Join(target, "d"), outside) // ../../NNN
	require.NoError(t, err)
	links := map[string]string{
		"etclink": outside,                          // a directory outside, absolute
		"abs":     filepath.Join(outside, "shadow"), // a file outside, absolute
		"d/up":    up,                               // relative, escaping with ../../
		"inner":   "d",                              // inside the target
		"d/rel":   "f.txt",                          // inside, to a file
	}
	for name, to := range links {
		require.NoError(t, os.Symlink(to, filepath.Join(target, name)))
	}
	return target, outside
}

type beneathCase struct {
	name  string
	o     op.Op
	path  string
	errno syscall.Errno
	check func(t *testing.T, r op.Result)
}

// beneathCases are requests a peer may send that name a path through or
// at a symlink. The backend never follows one: a request through a
// symlinked component is ELOOP (the kernel would have resolved the link
// on the client side), a symlink itself is shown as a symlink.
func beneathCases(outside string) []beneathCase {
	isLink := func(t *testing.T, r op.Result) { assert.True(t, r.Attr.IsSymlink(), "mode %o", r.Attr.Mode) }
	target := func(want string) func(t *testing.T, r op.Result) {
		return func(t *testing.T, r op.Result) { assert.Equal(t, want, r.Target) }
	}
	return []beneathCase{
		{"escaping dir: getattr through", op.Getattr, "/etclink/shadow", syscall.ELOOP, nil},
		{"escaping dir: read through", op.Read, "/etclink/shadow", syscall.ELOOP, nil},
		{"escaping dir: readlink through", op.Readlink, "/etclink/shadow", syscall.ELOOP, nil},
		{"escaping dir: readdir through", op.Readdir, "/etclink/sub", syscall.ELOOP, nil},
		{"escaping dir: readdir of the link", op.Readdir, "/etclink", syscall.ELOOP, nil},
		{"escaping dir: getattr of the link", op.Getattr, "/etclink", 0, isLink},
		{"escaping dir: readlink of the link", op.Readlink, "/etclink", 0, target(outside)},
		{"absolute to a file: read", op.Read, "/abs", syscall.ELOOP, nil},
		{"absolute to a file: getattr", op.Getattr, "/abs", 0, isLink},
		{"relative ../../ escape: read through", op.Read, "/d/up/shadow", syscall.ELOOP, nil},
		{"relative ../../ escape: getattr through", op.Getattr, "/d/up/shadow", syscall.ELOOP, nil},
		{"relative ../../ escape: readdir of the link", op.Readdir, "/d/up", syscall.ELOOP, nil},
		{"inside: read through", op.Read, "/inner/f.txt", syscall.ELOOP, nil},
		{"inside: getattr through", op.Getattr, "/inner/f.txt", syscall.ELOOP, nil},
		{"inside: readlink of the link", op.Readlink, "/inner", 0, target("d")},
		{"inside: readdir of the link", op.Readdir, "/inner", syscall.ELOOP, nil},
		{"last component: read of a file link", op.Read, "/d/rel", syscall.ELOOP, nil},
		{"last component: getattr is lstat", op.Getattr, "/d/rel", 0, isLink},
		{"plain file still served", op.Read, "/d/f.txt", 0, func(t *testing.T, r op.Result) {
			assert.Equal(t, "hello", string(r.Data))
		}},
		{"plain dir still listed", op.Readdir, "/d", 0, func(t *testing.T, r op.Result) {
			names := map[string]uint32{}
			for _, e := range r.Entries {
				names[e.Name] = e.Mode
			}
			assert.Equal(t, map[string]uint32{"f.txt": syscall.S_IFREG, "sub": syscall.S_IFDIR,
				"up": syscall.S_IFLNK, "rel": syscall.S_IFLNK}, names)
		}},
		{"root", op.Getattr, "/", 0, func(t *testing.T, r op.Result) { assert.True(t, r.Attr.IsDir()) }},
	}
}

func runBeneath(t *testing.T, b *Backend, cases []beneathCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := b.Do(context.Background(), tc.o, tc.path)
			require.Equal(t, tc.errno, r.Errno, "%s %s: errno %v", tc.o, tc.path, r.Errno)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestNeverFollowsSymlinks(t *testing.T) {
	target, outside := escapeTree(t)
	b := newTest(t, Config{Target: target, Parallel: 2, MaxCacheable: 1 << 20})
	require.Equal(t, "openat2", b.Resolver(), "this kernel has openat2")
	runBeneath(t, b, beneathCases(outside))
}

// The walk that kernels without openat2 use answers the same table.
func TestNeverFollowsSymlinksWalk(t *testing.T) {
	target, outside := escapeTree(t)
	b := newTest(t, Config{Target: target, Parallel: 2, MaxCacheable: 1 << 20, ForceWalk: true})
	require.Equal(t, "openat walk", b.Resolver())
	runBeneath(t, b, beneathCases(outside))
}

// A kernel without openat2 (ENOSYS, or EPERM from an old seccomp
// profile) gets the walk without being told; any other probe failure is
// an error naming the target.
func TestOpenat2Fallback(t *testing.T) {
	target, outside := escapeTree(t)
	cases := []struct {
		name    string
		errno   syscall.Errno
		want    string
		wantErr bool
	}{
		{"ENOSYS", syscall.ENOSYS, "openat walk", false},
		{"EPERM", syscall.EPERM, "openat walk", false},
		{"EACCES", syscall.EACCES, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			missing := func(int, string, *unix.OpenHow) (int, error) { return -1, tc.errno }
			b, err := newBackend(Config{Target: target, Parallel: 1, MaxCacheable: 1 << 20}, missing)
			if tc.wantErr {
				require.ErrorContains(t, err, "target "+target+": openat2: ")
				require.ErrorIs(t, err, tc.errno)
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			require.Equal(t, tc.want, b.Resolver())
			runBeneath(t, b, beneathCases(outside))
		})
	}
}

// The walk answers exactly what openat2 answers, path by path and for
// every way the backend opens.
func TestWalkMatchesOpenat2(t *testing.T) {
	target, _ := escapeTree(t)
	require.NoError(t, syscall.Mkfifo(filepath.Join(target, "d/fifo"), 0o644))
	root, err := openTarget(target)
	require.NoError(t, err)
	defer unix.Close(root)
	paths := []string{".", "d", "d/f.txt", "d/sub", "d/rel", "d/up", "d/up/shadow", "etclink", "etclink/shadow",
		"etclink/sub", "abs", "inner", "inner/f.txt", "inner/sub", "nope", "nope/x", "d/f.txt/x", "d/fifo", ".."}
	flags := map[string]int{
		"parent":  unix.O_PATH | unix.O_DIRECTORY,
		"readdir": unix.O_RDONLY | unix.O_DIRECTORY,
		"read":    unix.O_RDONLY | unix.O_NONBLOCK,
	}
	kernel := resolver{openat2: unix.Openat2}
	for fname, fl := range flags {
		for _, p := range paths {
			t.Run(fname+" "+p, func(t *testing.T) {
				fd1, err1 := kernel.open(root, p, fl)
				fd2, err2 := resolver{}.open(root, p, fl)
				for _, fd := range []int{fd1, fd2} {
					if fd >= 0 {
						_ = unix.Close(fd)
					}
				}
				require.Equal(t, err1, err2, "openat2 answered %v, the walk %v", err1, err2)
			})
		}
	}
}

// A target that cannot be shown as a directory is refused at New, with
// an error naming the path; CheckTarget says the same.
func TestTargetMustBeADirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	require.NoError(t, os.Symlink(file, filepath.Join(dir, "tofile")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "realdir"), 0o755))
	require.NoError(t, os.Symlink("realdir", filepath.Join(dir, "todir")))
	cases := []struct {
		name   string
		target string
		want   string // "" for a good target
		errno  syscall.Errno
	}{
		{"regular file", file, "target " + file + ": not a directory", syscall.ENOTDIR},
		{"missing", filepath.Join(dir, "nope"), "target " + dir + "/nope: no such file or directory", syscall.ENOENT},
		{"symlink to a file", filepath.Join(dir, "tofile"),
			"target " + dir + "/tofile (a symlink to " + file + "): not a directory", syscall.ENOTDIR},
		{"dangling symlink", filepath.Join(dir, "dangling"), "target " + dir + "/dangling: no such file or directory", syscall.ENOENT},
		{"under a file", file + "/x", "target " + file + "/x: not a directory", syscall.ENOTDIR},
		{"relative", "rel/dir", `target "rel/dir": must be an absolute, clean path`, 0},
		{"unclean", dir + "/realdir/", `target "` + dir + `/realdir/": must be an absolute, clean path`, 0},
		{"empty", "", `target "": must be an absolute, clean path`, 0},
		// The administrator's own spelling may go through a symlink.
		{"symlink to a directory", filepath.Join(dir, "todir"), "", 0},
		{"directory", dir, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, walk := range []bool{false, true} {
				b, err := New(Config{Target: tc.target, ForceWalk: walk})
				check := CheckTarget(tc.target)
				if tc.want == "" {
					require.NoError(t, err)
					require.NoError(t, check)
					r := b.Do(context.Background(), op.Getattr, "/")
					assert.True(t, r.Attr.IsDir(), "the view root is the directory, not the link")
					require.NoError(t, b.Close())
					continue
				}
				require.EqualError(t, err, tc.want)
				require.EqualError(t, check, tc.want)
				if tc.errno != 0 {
					require.ErrorIs(t, err, tc.errno)
				}
			}
		})
	}
}

// After Close the target fd is gone and every operation answers EIO,
// each logged once with its op, path and cause.
func TestDoAfterClose(t *testing.T) {
	target, _ := escapeTree(t)
	var logs bytes.Buffer
	b, err := New(Config{Target: target, Parallel: 1, MaxCacheable: 1 << 20, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	require.Zero(t, b.Do(context.Background(), op.Getattr, "/d/f.txt").Errno)
	require.NoError(t, b.Close())
	ops := []op.Op{op.Getattr, op.Readdir, op.Readlink, op.Read}
	for _, o := range ops {
		assert.Equal(t, syscall.EIO, b.Do(context.Background(), o, "/d/f.txt").Errno, "%s", o)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, len(ops), "one line per EIO: %s", logs.String())
	for i, o := range ops {
		assert.Contains(t, lines[i], "op="+o.String())
		assert.Contains(t, lines[i], "path=/d/f.txt")
		assert.Contains(t, lines[i], "target closed")
	}
}

// A peer may ask to read anything, not only what the kernel would: a
// FIFO must not block a backend slot waiting for a writer, a device must
// not be opened (opening some has effects), both answer EINVAL.
func TestReadRefusesSpecialFiles(t *testing.T) {
	target := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(target, "fifo"), 0o644))
	require.NoError(t, syscall.Mknod(filepath.Join(target, "null"), syscall.S_IFCHR|0o644, int(unix.Mkdev(1, 3))))
	for _, walk := range []bool{false, true} {
		b := newTest(t, Config{Target: target, Parallel: 1, MaxCacheable: 1 << 20, ForceWalk: walk})
		for _, p := range []string{"/fifo", "/null"} {
			assert.Equal(t, syscall.EINVAL, b.Do(context.Background(), op.Read, p).Errno, "%s, %s", p, b.Resolver())
		}
	}
}

// Sites mount software trees below a target: the backend crosses mount
// points (no RESOLVE_NO_XDEV), with openat2 and with the walk alike.
func TestCrossesMountsBelowTarget(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts a tmpfs below the target: run it as root (euid %d)", os.Geteuid())
	}
	target := t.TempDir()
	sw := filepath.Join(target, "sw")
	require.NoError(t, os.Mkdir(sw, 0o755))
	require.NoError(t, syscall.Mount("copper-test", sw, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { assert.NoError(t, syscall.Unmount(sw, syscall.MNT_DETACH)) })
	require.NoError(t, os.MkdirAll(filepath.Join(sw, "gcc/bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sw, "gcc/bin/cc"), []byte("#!/bin/sh\n"), 0o755))
	for _, walk := range []bool{false, true} {
		b := newTest(t, Config{Target: target, Parallel: 1, MaxCacheable: 1 << 20, ForceWalk: walk})
		ctx := context.Background()
		r := b.Do(ctx, op.Read, "/sw/gcc/bin/cc")
		require.Zero(t, r.Errno, "read across the mount, %s", b.Resolver())
		assert.Equal(t, "#!/bin/sh\n", string(r.Data))
		r = b.Do(ctx, op.Readdir, "/sw")
		require.Zero(t, r.Errno, "readdir of the mount root, %s", b.Resolver())
		require.Len(t, r.Entries, 1)
		assert.Equal(t, "gcc", r.Entries[0].Name)
		r = b.Do(ctx, op.Getattr, "/sw/gcc")
		require.Zero(t, r.Errno, "getattr across the mount, %s", b.Resolver())
		assert.True(t, r.Attr.IsDir())
	}
}
