package fuse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/internal/testkit"
	cnode "github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

// The tests of this file change files in the backing directory under a
// mounted view and check what the view then serves: each read returns
// the whole bytes of one version of the file, or an error, never a mix
// and never another file's bytes.

// Sizes: versioned files are versionSize bytes, so a small-file view
// (maxCacheable versionSmallMax) fetches them whole through the node and
// a large-file view (versionLargeMax) reads them directly. prefixSize is
// what a first reader leaves in the kernel's page cache (readahead is
// kept at viewReadahead so most of the file is not).
const (
	versionSize     = 256 << 10
	versionSmallMax = 1 << 20
	versionLargeMax = 64 << 10
	prefixSize      = 16 << 10
	viewReadahead   = 16 << 10
)

// directParent hands a child node's requests to its parent node in
// process: the tree without the network.
type directParent struct{ n *cnode.Node }

func (p directParent) Call(ctx context.Context, o op.Op, path string) (op.Result, error) {
	return p.n.Get(ctx, o, path), nil
}

// versionView is a view mounted over real nodes: a root node with its
// backend and, with child, a second node that asks the root.
type versionView struct {
	m      *Mounted
	caches []*cache.Cache // the nodes' caches, root first
	logs   *testkit.SyncBuffer
}

// at returns the view path of rel.
func (v versionView) at(rel string) string { return filepath.Join(v.m.Mountpoint(), rel) }

// clear drops every node's cache, as eviction or ioctl 100 would: the
// next request for anything reaches the backend again.
func (v versionView) clear() {
	for _, c := range v.caches {
		c.Clear()
	}
}

// mountVersionView mounts target through a root node (child false) or
// through a child node of that root (child true). budget bounds every
// node's cache; handleOpens is Options.HandleOpens.
func mountVersionView(t *testing.T, target string, maxCacheable, budget int64, child, handleOpens bool) versionView {
	t.Helper()
	testkit.RequireFuse(t)
	logs := &testkit.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	newCache := func() *cache.Cache { return cache.New(cache.Config{BudgetBytes: budget, NegativeTTL: time.Hour}) }
	rootCache := newCache()
	be, err := backend.New(backend.Config{Target: target, Parallel: 4, MaxCacheable: maxCacheable})
	require.NoError(t, err)
	t.Cleanup(func() { be.Close() })
	root, err := cnode.New(cnode.Config{Cache: rootCache, Logger: logger, Backend: be})
	require.NoError(t, err)
	root.MarkRegistered()
	v := versionView{caches: []*cache.Cache{rootCache}, logs: logs}
	var src Source = root
	if child {
		childCache := newCache()
		c, err := cnode.New(cnode.Config{Rank: 1, Cache: childCache, Parent: directParent{root}, Logger: logger})
		require.NoError(t, err)
		c.MarkRegistered()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		require.NoError(t, c.AwaitParent(ctx))
		v.caches = append(v.caches, childCache)
		src = c
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	m, err := Mount(src, Options{
		Mount:           mnt,
		Target:          target,
		MaxCacheable:    maxCacheable,
		EntryTimeout:    time.Hour,
		AttrTimeout:     time.Hour,
		NegativeTimeout: time.Hour,
		MaxReadahead:    viewReadahead,
		Logger:          logger,
		HandleOpens:     handleOpens,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		if t.Failed() {
			t.Logf("view log:\n%s", logs.String())
		}
	})
	v.m = m
	return v
}

// pattern returns n bytes that differ from every other seed's.
func pattern(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// writeInPlace overwrites path's bytes without replacing or truncating
// the file: same inode, same name.
func writeInPlace(t *testing.T, path string, data []byte, flags int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|flags, 0)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// change is one way the source file can change; it returns the new
// content (nil: the name is gone).
type change struct {
	name  string
	apply func(t *testing.T, path string, old []byte) []byte
}

// changeTable lists the ways a file changes.
func changeTable() []change {
	return []change{
		{"overwrite in place, same size", func(t *testing.T, path string, old []byte) []byte {
			v2 := pattern(2, len(old))
			writeInPlace(t, path, v2, 0)
			return v2
		}},
		{"overwrite in place, other size", func(t *testing.T, path string, old []byte) []byte {
			v2 := pattern(3, len(old)+5000)
			writeInPlace(t, path, v2, os.O_TRUNC)
			return v2
		}},
		{"append", func(t *testing.T, path string, old []byte) []byte {
			extra := pattern(4, 3000)
			writeInPlace(t, path, extra, os.O_APPEND)
			return append(bytes.Clone(old), extra...)
		}},
		{"replace by rename", func(t *testing.T, path string, old []byte) []byte {
			v2 := pattern(5, len(old)-777)
			tmp := path + ".tmp"
			require.NoError(t, os.WriteFile(tmp, v2, 0o644))
			require.NoError(t, os.Rename(tmp, path))
			return v2
		}},
		{"delete", func(t *testing.T, path string, _ []byte) []byte {
			require.NoError(t, os.Remove(path))
			return nil
		}},
	}
}

// refetch is how a test makes the view fetch a file again while the
// kernel still holds pages of the version it read before.
type refetch struct {
	name   string
	budget int64 // every node's cache budget
	child  bool  // mount a child node of the root
	clear  bool  // clear every node's cache after the change
}

// refetchTable lists the ways a view fetches a file again.
func refetchTable() []refetch {
	return []refetch{
		// The budget holds metadata but no file data: every open fetches the
		// data again while the node still knows the old stat.
		{name: "root, data not cached", budget: 64 << 10},
		{name: "root, cache cleared", budget: 64 << 20, clear: true},
		{name: "child, cache cleared", budget: 64 << 20, child: true, clear: true},
		// The root keeps the old stat of a file over max_cacheable for
		// good (it never reads it): the child must go by its own host.
		{name: "child, data not cached", budget: 64 << 10, child: true},
	}
}

// readWhole reads a view file through a fresh open.
func readWhole(path string) ([]byte, error) { return os.ReadFile(path) }

// requireOneVersion fails unless got is one of the versions, whole, or
// err is set.
func requireOneVersion(t *testing.T, what string, got []byte, err error, versions ...[]byte) {
	t.Helper()
	if err != nil {
		return
	}
	for _, v := range versions {
		if v != nil && bytes.Equal(got, v) {
			return
		}
	}
	t.Fatalf("%s: %d bytes that are no version of the file whole (%s)", what, len(got), describeMix(got, versions...))
}

// describeMix says where got stops matching each version, to tell a
// mix from garbage.
func describeMix(got []byte, versions ...[]byte) string {
	s := ""
	for i, v := range versions {
		if v == nil {
			continue
		}
		n := 0
		for n < len(got) && n < len(v) && got[n] == v[n] {
			n++
		}
		s += fmt.Sprintf("v%d: %d bytes, first %d equal; ", i+1, len(v), n)
	}
	return s
}

// TestChangedFileIsOneVersion changes a file the view has read part of
// (the kernel keeps those pages) and reads it again while the node
// fetches it anew: the read must be one version whole or an error, and
// the next open sees the new version whole, with its size.
func TestChangedFileIsOneVersion(t *testing.T) {
	sizes := []struct {
		name         string
		maxCacheable int64
	}{
		{"through the node", versionSmallMax},
		{"over max_cacheable", versionLargeMax},
	}
	for _, mode := range openModes {
		for _, size := range sizes {
			for _, rf := range refetchTable() {
				for _, ch := range changeTable() {
					t.Run(mode.name+"/"+size.name+"/"+rf.name+"/"+ch.name, func(t *testing.T) {
						target := t.TempDir()
						host := filepath.Join(target, "f.bin")
						v1 := pattern(1, versionSize)
						require.NoError(t, os.WriteFile(host, v1, 0o644))
						v := mountVersionView(t, target, size.maxCacheable, rf.budget, rf.child, mode.handleOpens)

						readPrefix(t, v.at("f.bin"), v1)
						v2 := ch.apply(t, host, v1)
						if rf.clear {
							v.clear()
						}

						got, err := readWhole(v.at("f.bin"))
						requireOneVersion(t, "first read after the change", got, err, v1, v2)
						if err != nil {
							t.Logf("first read after the change: %v", err)
							var errno syscall.Errno
							require.ErrorAs(t, err, &errno)
							require.Contains(t, []syscall.Errno{syscall.EIO, syscall.ENOENT, syscall.ESTALE}, errno)
						}
						if errors.Is(err, syscall.EIO) {
							// One line names the path and both versions.
							logs := v.logs.String()
							assert.Contains(t, logs, "path=/f.bin")
							assert.Contains(t, logs, "at=read")
							assert.Contains(t, logs, fmt.Sprintf("view_version=\"dev=%d ino=", fileDev(t, target)))
							assert.Contains(t, logs, "found=")

							// The kernel was told to forget the name: a stat
							// looks it up again and shows the file as it is.
							v.m.fsys.notifies.Wait()
							var view, now syscall.Stat_t
							err := syscall.Stat(v.at("f.bin"), &view)
							switch {
							case v2 == nil:
								require.ErrorIs(t, err, syscall.ENOENT)
							default:
								require.NoError(t, err)
								require.NoError(t, syscall.Stat(host, &now))
								assert.Equal(t, now.Size, view.Size, "size after the invalidation")
								assert.Equal(t, now.Mtim, view.Mtim, "mtime after the invalidation")
							}
						}

						got, err = readWhole(v.at("f.bin"))
						if v2 == nil {
							require.ErrorIs(t, err, syscall.ENOENT, "the deleted file is gone at the next open")
							return
						}
						require.NoError(t, err, "the next open reads the new version")
						require.True(t, bytes.Equal(v2, got), "the next open reads the new version whole (%s)", describeMix(got, v1, v2))
						fi, err := os.Stat(v.at("f.bin"))
						require.NoError(t, err)
						assert.Equal(t, int64(len(v2)), fi.Size(), "stat shows the new version's size")
					})
				}
			}
		}
	}
}

// openModes are the two ways a mount meets open(2) (Options.HandleOpens).
var openModes = []struct {
	name        string
	handleOpens bool
}{
	{"no-open", false},
	{"handled opens", true},
}

// fileDev is the device of the file system under dir.
func fileDev(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(dir, &st))
	return st.Dev
}

// readPrefix reads the first prefixSize bytes of path through one open,
// leaving them in the kernel's page cache.
func readPrefix(t *testing.T, path string, want []byte) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, prefixSize)
	_, err = io.ReadFull(f, buf)
	require.NoError(t, err)
	require.Equal(t, want[:prefixSize], buf)
}

// TestOpenFileKeepsItsVersion changes a file under an open descriptor of
// the view: reading on through that descriptor gives the version it
// opened, whole, or an error. A file read directly (over max_cacheable)
// keeps its host descriptor from open, so a rename over it cannot
// reach it.
func TestOpenFileKeepsItsVersion(t *testing.T) {
	tests := []struct {
		name         string
		maxCacheable int64
		readFirst    bool // read a prefix before the change
		change       int  // index in changes
		mustSucceed  bool // the old version is still there to read
		// A handle keeps its whole copy of a small file after its first
		// read; with no handle, nothing does (the kernel cannot tell this
		// descriptor's next read from a later open's first).
		handledOnly bool
	}{
		{"through the node, renamed over", versionSmallMax, false, 3, false, false},
		{"through the node, renamed over after a read", versionSmallMax, true, 3, true, true},
		{"through the node, overwritten", versionSmallMax, false, 0, false, false},
		{"over max_cacheable, renamed over", versionLargeMax, false, 3, true, false},
		{"over max_cacheable, renamed over after a read", versionLargeMax, true, 3, true, false},
		{"over max_cacheable, overwritten", versionLargeMax, false, 0, false, false},
		{"over max_cacheable, overwritten after a read", versionLargeMax, true, 0, false, false},
	}
	for _, mode := range openModes {
		for _, tt := range tests {
			t.Run(mode.name+"/"+tt.name, func(t *testing.T) {
				target := t.TempDir()
				host := filepath.Join(target, "f.bin")
				v1 := pattern(1, versionSize)
				require.NoError(t, os.WriteFile(host, v1, 0o644))
				v := mountVersionView(t, target, tt.maxCacheable, 64<<10, false, mode.handleOpens)
				mustSucceed := tt.mustSucceed && (mode.handleOpens || !tt.handledOnly)

				f, err := os.Open(v.at("f.bin"))
				require.NoError(t, err)
				defer f.Close()
				if tt.readFirst {
					buf := make([]byte, prefixSize)
					_, err := io.ReadFull(f, buf)
					require.NoError(t, err)
					require.Equal(t, v1[:prefixSize], buf)
				}
				v2 := changeTable()[tt.change].apply(t, host, v1)
				v.clear()

				got := make([]byte, len(v1)+len(v2))
				n, err := f.ReadAt(got, 0)
				if errors.Is(err, io.EOF) {
					err = nil
				}
				got = got[:n]
				if mustSucceed {
					require.NoError(t, err)
					require.True(t, bytes.Equal(v1, got), "the open file reads its version whole (%s)", describeMix(got, v1, v2))
					return
				}
				if err == nil {
					require.True(t, bytes.Equal(v1, got), "the open file reads its version whole or fails (%s)", describeMix(got, v1, v2))
					return
				}
				require.ErrorIs(t, err, syscall.EIO)
				logs := v.logs.String()
				assert.Contains(t, logs, "path=/f.bin at=read") // read or read_direct
				assert.Contains(t, logs, "view_version=")
				if tt.maxCacheable < versionSize {
					assert.Contains(t, logs, `found="on this host: dev=`, "a direct read names the version it found")
				} else {
					assert.Contains(t, logs, `found="dev=`)
				}
			})
		}
	}
}

// TestInodeReuseIsANewFile deletes a file the view has read and creates
// another whose host inode number is the deleted one's: the new name
// must show its own bytes, never the deleted file's.
func TestInodeReuseIsANewFile(t *testing.T) {
	for _, child := range []bool{false, true} {
		t.Run("child="+strconv.FormatBool(child), func(t *testing.T) {
			target := t.TempDir()
			secret := filepath.Join(target, "a.txt")
			require.NoError(t, os.WriteFile(secret, []byte("SECRET-A\n"), 0o644))
			// New names go to a directory the view has not listed yet: a
			// listing is a snapshot, names created in it later stay absent.
			later := filepath.Join(target, "later")
			require.NoError(t, os.Mkdir(later, 0o755))
			var st syscall.Stat_t
			require.NoError(t, syscall.Stat(secret, &st))
			v := mountVersionView(t, target, versionSmallMax, 64<<20, child, false)

			got, err := os.ReadFile(v.at("a.txt"))
			require.NoError(t, err)
			require.Equal(t, "SECRET-A\n", string(got))
			require.NoError(t, os.Remove(secret))

			// The file system hands out the freed number again, usually
			// at once; try a bounded number of creations.
			reused := ""
			for i := range 64 {
				name := filepath.Join(later, fmt.Sprintf("c%d.txt", i))
				require.NoError(t, os.WriteFile(name, []byte(fmt.Sprintf("file c%d, not the secret\n", i)), 0o644))
				var cst syscall.Stat_t
				require.NoError(t, syscall.Stat(name, &cst))
				if cst.Ino == st.Ino {
					reused = filepath.Base(name)
					break
				}
			}
			if reused == "" {
				t.Skipf("the file system of %s did not reuse inode %d in 64 creations", target, st.Ino)
			}
			want, err := os.ReadFile(filepath.Join(later, reused))
			require.NoError(t, err)
			got, err = os.ReadFile(v.at(filepath.Join("later", reused)))
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got), "%s reuses a.txt's inode", reused)
			_, err = os.Stat(v.at("a.txt"))
			if err != nil {
				assert.ErrorIs(t, err, syscall.ENOENT)
			}
		})
	}
}

// TestHardLinksAreSeparateFiles reads a file through both of its names,
// removes one name and makes the view fetch again: the other name keeps
// working.
func TestHardLinksAreSeparateFiles(t *testing.T) {
	tests := []struct {
		name   string
		remove string
		child  bool
	}{
		{"remove the first name read", "x.txt", false},
		{"remove the second name read", "y.txt", false},
		{"child, remove the first name read", "x.txt", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := t.TempDir()
			content := []byte("one file, two names\n")
			require.NoError(t, os.WriteFile(filepath.Join(target, "x.txt"), content, 0o644))
			require.NoError(t, os.Link(filepath.Join(target, "x.txt"), filepath.Join(target, "y.txt")))
			v := mountVersionView(t, target, versionSmallMax, 64<<20, tt.child, false)

			var xs, ys syscall.Stat_t
			for _, name := range []string{"x.txt", "y.txt"} {
				got, err := os.ReadFile(v.at(name))
				require.NoError(t, err)
				require.Equal(t, content, got)
			}
			require.NoError(t, syscall.Stat(v.at("x.txt"), &xs))
			require.NoError(t, syscall.Stat(v.at("y.txt"), &ys))
			assert.Equal(t, xs.Ino, ys.Ino, "hard links show one inode number, as on the source")

			require.NoError(t, os.Remove(filepath.Join(target, tt.remove)))
			v.clear()
			other := "x.txt"
			if tt.remove == "x.txt" {
				other = "y.txt"
			}
			got, err := os.ReadFile(v.at(other))
			require.NoError(t, err, "%s after %s was removed", other, tt.remove)
			assert.Equal(t, content, got)
		})
	}
}

func TestStableAttrFor(t *testing.T) {
	file := op.Attr{Dev: 5, Ino: 42, Mode: syscall.S_IFREG | 0o644, Nlink: 1, Size: 100, MtimeNs: 7, CtimeNs: 8, AtimeNs: 9}
	dir := file
	dir.Mode = syscall.S_IFDIR | 0o755
	with := func(a op.Attr, edit func(*op.Attr)) op.Attr { edit(&a); return a }
	tests := []struct {
		name      string
		a, b      op.Attr
		pathB     string
		sameIdent bool // one view inode
	}{
		{"same stat", file, file, "/f", true},
		{"atime only", file, with(file, func(a *op.Attr) { a.AtimeNs++ }), "/f", true},
		{"mode bits only, ctime kept", file, with(file, func(a *op.Attr) { a.Mode ^= 0o022 }), "/f", true},
		{"size", file, with(file, func(a *op.Attr) { a.Size++ }), "/f", false},
		{"mtime", file, with(file, func(a *op.Attr) { a.MtimeNs++ }), "/f", false},
		{"ctime", file, with(file, func(a *op.Attr) { a.CtimeNs++ }), "/f", false},
		{"inode number", file, with(file, func(a *op.Attr) { a.Ino++ }), "/f", false},
		{"device", file, with(file, func(a *op.Attr) { a.Dev++ }), "/f", false},
		{"other name (hard link)", file, file, "/g", false},
		{"symlink replaced", with(file, func(a *op.Attr) { a.Mode = syscall.S_IFLNK | 0o777 }),
			with(file, func(a *op.Attr) { a.Mode = syscall.S_IFLNK | 0o777; a.CtimeNs++ }), "/f", false},
		{"directory changed", dir, with(dir, func(a *op.Attr) { a.MtimeNs++; a.CtimeNs++; a.Size += 4096 }), "/f", true},
		{"directory at another path", dir, dir, "/g", false},
		{"directory replaced", dir, with(dir, func(a *op.Attr) { a.Ino++ }), "/f", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := stableAttrFor(tt.a, "/f"), stableAttrFor(tt.b, tt.pathB)
			assert.Equal(t, tt.sameIdent, a == b, "identities %+v and %+v", a, b)
			assert.Equal(t, inodeFor(tt.a, "/f"), a.Ino, "st_ino stays the source's (dev, ino) hash")
			assert.Equal(t, tt.a.Mode&syscall.S_IFMT, a.Mode)
		})
	}
}

func TestLogLimit(t *testing.T) {
	var l logLimit
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		at         time.Duration
		allowed    bool
		suppressed uint64
	}{
		{0, true, 0},
		{staleLogInterval / 2, false, 0},
		{staleLogInterval - 1, false, 0},
		{staleLogInterval, true, 2},
		{staleLogInterval + 1, false, 0},
		{5 * staleLogInterval, true, 1},
	}
	for i, st := range steps {
		n, ok := l.allow(t0.Add(st.at))
		assert.Equal(t, st.allowed, ok, "step %d", i)
		assert.Equal(t, st.suppressed, n, "step %d", i)
	}
}

// TestStaleHandleFetchesOnce: once a handle found its file changed, the
// other READs of that open (the kernel sends several, for readahead)
// fail without fetching the whole file again.
func TestStaleHandleFetchesOnce(t *testing.T) {
	target := t.TempDir()
	host := filepath.Join(target, "f.bin")
	v1 := pattern(1, versionSize)
	require.NoError(t, os.WriteFile(host, v1, 0o644))
	m, src := mountView(t, target, versionSmallMax, func(o *Options) { o.MaxReadahead = viewReadahead })

	f, err := os.Open(filepath.Join(m.Mountpoint(), "f.bin"))
	require.NoError(t, err)
	defer f.Close()
	writeInPlace(t, host, pattern(2, versionSize), 0)
	for range 2 {
		_, err = io.ReadAll(f)
		require.ErrorIs(t, err, syscall.EIO)
		_, err = f.Seek(0, io.SeekStart)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, src.count(op.Read, "/f.bin"), "fetches of the changed file")
}

// TestLargeFileDescriptorIsShared: the open handles of one view inode
// over max_cacheable share one host descriptor, as the processes of a
// node that map one large library do. (A no-open mount pins one per
// inode at lookup, and checks the host file at every lookup.)
func TestLargeFileDescriptorIsShared(t *testing.T) {
	root := makeTree(t)
	provider := &recordingProvider{next: DirectFiles{Target: root}}
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) { o.LargeFiles = provider; o.HandleOpens = true })
	want, err := os.ReadFile(filepath.Join(root, "big.bin"))
	require.NoError(t, err)

	var files []*os.File
	for range 3 {
		f, err := os.Open(filepath.Join(m.Mountpoint(), "big.bin"))
		require.NoError(t, err)
		files = append(files, f)
	}
	for i, f := range files {
		got := make([]byte, len(want))
		_, err := f.ReadAt(got, 0)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "handle %d reads the file", i)
	}
	assert.Equal(t, []string{"/big.bin"}, provider.paths(), "one host open for three handles")
	for _, f := range files {
		require.NoError(t, f.Close())
	}
}

func TestSameBytes(t *testing.T) {
	v := version{dev: 5, ino: 42, size: 100, mtimeNs: 7, ctimeNs: 8}
	tests := []struct {
		name string
		edit func(*version)
		same bool
	}{
		{"equal", func(*version) {}, true},
		{"another host's st_dev", func(w *version) { w.dev = 77 }, true},
		{"ino", func(w *version) { w.ino++ }, false},
		{"size", func(w *version) { w.size++ }, false},
		{"mtime", func(w *version) { w.mtimeNs++ }, false},
		{"ctime", func(w *version) { w.ctimeNs++ }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := v
			tt.edit(&w)
			assert.Equal(t, tt.same, v.sameBytes(w))
		})
	}
}

// checkingProvider is a recordingProvider that also checks versions, as
// DirectFiles does.
type checkingProvider struct {
	*recordingProvider
	mu     sync.Mutex
	checks int
}

func (p *checkingProvider) Check(ctx context.Context, viewPath string, attr op.Attr) syscall.Errno {
	p.mu.Lock()
	p.checks++
	p.mu.Unlock()
	return p.next.(VersionChecker).Check(ctx, viewPath, attr)
}

// TestLargeFilePinnedOncePerInode: on a no-open mount, a view inode over
// max_cacheable holds one host descriptor, opened at its first lookup;
// every later path walk to it is a lookup that checks the host file
// without opening it.
func TestLargeFilePinnedOncePerInode(t *testing.T) {
	root := makeTree(t)
	provider := &checkingProvider{recordingProvider: &recordingProvider{next: DirectFiles{Target: root}}}
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) { o.LargeFiles = provider })
	want, err := os.ReadFile(filepath.Join(root, "big.bin"))
	require.NoError(t, err)

	for i := range 3 {
		got, err := os.ReadFile(filepath.Join(m.Mountpoint(), "big.bin"))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "read %d", i)
	}
	assert.Equal(t, []string{"/big.bin"}, provider.paths(), "one host open for the view inode")
	provider.mu.Lock()
	defer provider.mu.Unlock()
	assert.GreaterOrEqual(t, provider.checks, 2, "the later path walks check the host file")
}

// releaseCounter counts the releases of the contents a provider opened.
type releaseCounter struct {
	next     ContentProvider
	opened   atomic.Int64
	released atomic.Int64
}

func (p *releaseCounter) Open(ctx context.Context, viewPath string, attr op.Attr) (Content, syscall.Errno) {
	c, errno := p.next.Open(ctx, viewPath, attr)
	if errno != 0 {
		return nil, errno
	}
	p.opened.Add(1)
	return countedContent{Content: c, p: p}, 0
}

type countedContent struct {
	Content
	p *releaseCounter
}

func (c countedContent) Release() syscall.Errno {
	c.p.released.Add(1)
	return c.Content.Release()
}

// TestLargeFileReleasedWhenForgotten: a no-open view inode's pinned host
// descriptor stays open while the kernel knows the inode and is closed
// once the kernel forgets it.
func TestLargeFileReleasedWhenForgotten(t *testing.T) {
	root := makeTree(t)
	provider := &releaseCounter{next: DirectFiles{Target: root}}
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) { o.LargeFiles = provider })
	want, err := os.ReadFile(filepath.Join(root, "big.bin"))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(m.Mountpoint(), "big.bin"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got))
	require.EqualValues(t, 1, provider.opened.Load())
	require.Zero(t, provider.released.Load(), "pinned while the kernel knows the inode")

	// Have the kernel drop the name, as a changed file does: nothing
	// holds the inode then, so the kernel evicts it and sends FORGET.
	require.Zero(t, m.root.NotifyEntry("big.bin"))
	require.Eventually(t, func() bool { return provider.released.Load() == 1 }, 10*time.Second, 10*time.Millisecond,
		"the pinned descriptor is released after FORGET")
}

// TestHandledOpenChecksTheSharedDescriptor: with handled opens, a large
// file's open handles share one host descriptor; an open while another
// handle is still open must still see the file the path shows now, not
// the shared descriptor's version.
func TestHandledOpenChecksTheSharedDescriptor(t *testing.T) {
	target := t.TempDir()
	host := filepath.Join(target, "f.bin")
	v1 := pattern(1, versionSize)
	require.NoError(t, os.WriteFile(host, v1, 0o644))
	// The root node keeps its stat of the file: only the host tells.
	v := mountVersionView(t, target, versionLargeMax, 64<<20, false, true)

	first, err := os.Open(v.at("f.bin"))
	require.NoError(t, err)
	defer first.Close()
	v2 := changeTable()[3].apply(t, host, v1) // replace by rename

	got, err := os.ReadFile(v.at("f.bin"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(v2, got), "a new open reads the new version (%s)", describeMix(got, v1, v2))
	got = make([]byte, len(v1))
	_, err = first.ReadAt(got, 0)
	require.NoError(t, err)
	require.True(t, bytes.Equal(v1, got), "the first handle keeps its version (%s)", describeMix(got, v1, v2))
}

// TestPinnedDescriptorsAreBounded: past the bound, the least recently
// used pinned descriptor is closed; the file is opened again when it is
// looked up or read again.
func TestPinnedDescriptorsAreBounded(t *testing.T) {
	root := makeTree(t)
	big, err := os.ReadFile(filepath.Join(root, "big.bin"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "big2.bin"), big, 0o644))
	provider := &releaseCounter{next: DirectFiles{Target: root}}
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) { o.LargeFiles = provider })
	m.fsys.pins.mu.Lock()
	m.fsys.pins.max = 1
	m.fsys.pins.mu.Unlock()

	for _, name := range []string{"big.bin", "big2.bin"} {
		got, err := os.ReadFile(filepath.Join(m.Mountpoint(), name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(big, got), name)
	}
	assert.EqualValues(t, 2, provider.opened.Load(), "host opens")
	assert.EqualValues(t, 1, provider.released.Load(), "big.bin's descriptor was closed for big2.bin's")

	// The next path walk to big.bin pins it again, closing big2.bin's.
	got, err := os.ReadFile(filepath.Join(m.Mountpoint(), "big.bin"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got))
	assert.EqualValues(t, 3, provider.opened.Load(), "host opens")
	assert.EqualValues(t, 2, provider.released.Load(), "host closes")

	// A descriptor whose inode lost its pin while open: the next read
	// that misses the kernel's pages opens the file again.
	f, err := os.Open(filepath.Join(m.Mountpoint(), "big2.bin")) // pins big2.bin
	require.NoError(t, err)
	defer f.Close()
	_, err = os.ReadFile(filepath.Join(m.Mountpoint(), "big.bin")) // pins big.bin, closes big2.bin's
	require.NoError(t, err)
	require.NoError(t, unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED), "drop big2.bin's pages")
	opened := provider.opened.Load()
	got = make([]byte, len(big))
	_, err = f.ReadAt(got, 0)
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got))
	assert.Equal(t, opened+1, provider.opened.Load(), "the read opened big2.bin again")
}
