package service_test

// Large files (over max_cacheable_bytes) through real mounts: chunked
// through the tree, kept in each node's chunk store, one version at a
// time, read from the backing filesystem once per tree.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/profile"
)

const testChunk = 64 << 10

// largeSettings: every non-empty file is large, 64 KiB chunks, a spill
// directory of the test's own, a tree 0 → 1, 2; 1 → 3.
func largeSettings(t *testing.T, src string) config.Settings {
	s := clusterSettings(t, src)
	s.Fanout = 2
	s.MaxCacheableBytes = 0
	s.LargeFiles = "chunked"
	s.ChunkBytes = testChunk
	s.SpillDir = filepath.Join(t.TempDir(), "spill")
	s.SpillBudgetBytes = 256 << 20
	s.ReadaheadChunks = 2
	return s
}

// patterned is n bytes that differ at every offset mod 251 and by seed.
func patterned(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251) ^ seed
	}
	return b
}

func chunkStats(t *testing.T, st node.Stats) node.ChunkStats {
	t.Helper()
	require.NotNil(t, st.Chunks, "rank %d has no chunk store", st.Rank)
	return *st.Chunks
}

// Files of every size around the chunk boundaries, and a sparse one, are
// read whole and at random offsets on every mount, byte for byte; the
// root reads each chunk from the backend once, and every other node
// fetches each chunk once from its parent.
func TestMountLargeChunkBoundaries(t *testing.T) {
	src := t.TempDir()
	sizes := map[string]int{
		"empty": 0, "one": 1, "chunk-1": testChunk - 1, "chunk": testChunk, "chunk+1": testChunk + 1,
		"many": 10*testChunk + 123,
	}
	want := map[string][]byte{}
	for name, n := range sizes {
		want[name] = patterned(n, byte(len(name)))
		require.NoError(t, os.WriteFile(filepath.Join(src, name), want[name], 0o644))
	}
	// Sparse: holes read as zeros, a few bytes written across boundaries.
	sparse := make([]byte, 6*testChunk+7)
	f, err := os.Create(filepath.Join(src, "sparse"))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(int64(len(sparse))))
	for _, off := range []int{testChunk - 2, 3 * testChunk, len(sparse) - 3} {
		copy(sparse[off:], "xyz")
		_, err := f.WriteAt([]byte("xyz"), int64(off))
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	want["sparse"] = sparse

	c, mounts := startMountedCluster(t, largeSettings(t, src), 4)
	var totalBytes, totalChunks int64
	for _, data := range want {
		totalBytes += int64(len(data))
		totalChunks += op.Chunks(int64(len(data)), testChunk)
	}
	rng := rand.New(rand.NewPCG(10, 20))
	for _, r := range []int{3, 2, 1, 0} { // leaf first: it pulls through every hop
		for name, data := range want {
			path := filepath.Join(mounts[r], name)
			var got []byte
			require.NoError(t, within(t, "read "+path, func() (err error) { got, err = os.ReadFile(path); return err }))
			require.True(t, bytes.Equal(data, got), "rank %d %s: %d bytes read, want %d, first difference at %d",
				r, name, len(got), len(data), firstDiff(data, got))
			f, err := os.Open(path)
			require.NoError(t, err)
			for range 20 {
				off := rng.IntN(len(data) + 1)
				n := rng.IntN(3*testChunk + 1)
				buf := make([]byte, n)
				m, err := f.ReadAt(buf, int64(off))
				if err != nil && !errors.Is(err, io.EOF) {
					t.Fatalf("rank %d %s: pread %d at %d: %v", r, name, n, off, err)
				}
				end := min(off+n, len(data))
				require.Equal(t, end-off, m, "rank %d %s: pread %d at %d", r, name, n, off)
				require.True(t, bytes.Equal(data[off:end], buf[:m]), "rank %d %s: pread %d at %d", r, name, n, off)
			}
			require.NoError(t, f.Close())
		}
	}
	root := chunkStats(t, c.nodes[0].Node().Stats())
	assert.Equal(t, totalBytes, root.FetchedB, "the root reads every byte from the backend once")
	assert.Equal(t, totalChunks, root.Fetched)
	assert.EqualValues(t, totalChunks, c.nodes[0].Node().Stats().Op(op.Chunk).BackendOps)
	for r := 1; r < 4; r++ {
		cs := chunkStats(t, c.nodes[r].Node().Stats())
		assert.Equal(t, totalChunks, cs.Fetched, "rank %d fetches each chunk once", r)
		assert.Equal(t, "disk", cs.Store.Mode, "rank %d", r)
		assert.LessOrEqual(t, cs.Store.Bytes, int64(256<<20))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Readers on every node ask for the same chunk at once: each node fetches
// it once, the root reads it from the backend once.
func TestMountLargeConcurrentReadersOfOneChunk(t *testing.T) {
	src := t.TempDir()
	data := patterned(8*testChunk, 3)
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), data, 0o644))
	s := largeSettings(t, src)
	s.ReadaheadChunks = 0
	s.MaxReadaheadB = 4096 // the kernel asks for the chunk read, not the next
	c, mounts := startMountedCluster(t, s, 4)

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for r := range 4 {
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, err := os.Open(filepath.Join(mounts[r], "f"))
				if err != nil {
					errs <- err
					return
				}
				defer f.Close()
				buf := make([]byte, 4096)
				off := int64(testChunk + 4096*g)
				if _, err := f.ReadAt(buf, off); err != nil {
					errs <- fmt.Errorf("rank %d: %w", r, err)
					return
				}
				if !bytes.Equal(buf, data[off:off+4096]) {
					errs <- fmt.Errorf("rank %d reader %d: wrong bytes", r, g)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for r := range 4 {
		cs := chunkStats(t, c.nodes[r].Node().Stats())
		assert.EqualValues(t, 1, cs.Fetched, "rank %d: one fetch of the chunk", r)
	}
	assert.EqualValues(t, testChunk, chunkStats(t, c.nodes[0].Node().Stats()).FetchedB)
}

// A file replaced on the backing filesystem while a reader is in the
// middle of it: the reader gets an error (EIO), never bytes of the new
// version; the log names the path; a new open reads the new version whole.
func TestMountLargeFileReplacedMidRead(t *testing.T) {
	src := t.TempDir()
	const size = 64 * testChunk // 4 MiB: beyond the kernel's readahead
	old := patterned(size, 1)
	host := filepath.Join(src, "lib.so")
	require.NoError(t, os.WriteFile(host, old, 0o644))
	s := largeSettings(t, src)
	s.ReadaheadChunks = 0
	c, mounts := startMountedCluster(t, s, 4)
	path := filepath.Join(mounts[3], "lib.so")

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 4096)
	_, err = f.ReadAt(buf, 0)
	require.NoError(t, err)
	require.Equal(t, old[:4096], buf)

	fresh := patterned(size, 2)
	require.NoError(t, os.WriteFile(host+".new", fresh, 0o644))
	require.NoError(t, os.Rename(host+".new", host))

	off := int64(size - testChunk)
	_, err = f.ReadAt(buf, off)
	require.Error(t, err, "a read of the old version after the replace must fail")
	assert.ErrorIs(t, err, syscall.EIO)
	assert.Contains(t, c.logs.String(), "/lib.so", "the log names the path")
	assert.Positive(t, chunkStats(t, c.nodes[0].Node().Stats()).Stale)

	var got []byte
	require.NoError(t, within(t, "read the new version", func() error {
		var err error
		got, err = os.ReadFile(path)
		if err == nil && !bytes.Equal(got, fresh) {
			err = fmt.Errorf("read %d bytes, not the new version (first difference at %d)", len(got), firstDiff(fresh, got))
		}
		return err
	}))
	assert.False(t, bytes.Equal(got, old))
}

// A spill directory that is read-only, or that fills up, degrades to
// memory: the application gets the right bytes, the log one warning.
func TestMountLargeSpillUnusable(t *testing.T) {
	for _, tc := range []struct {
		name, opts string
	}{
		{"read-only", "size=1m"},
		{"full", "size=256k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			data := patterned(32*testChunk+5, 9)
			require.NoError(t, os.WriteFile(filepath.Join(src, "big"), data, 0o644))
			spill := t.TempDir()
			flags := uintptr(0)
			if tc.name == "read-only" {
				flags = unix.MS_RDONLY
			}
			require.NoError(t, unix.Mount("tmpfs", spill, "tmpfs", flags, tc.opts+",mode=0700"))
			t.Cleanup(func() { _ = unix.Unmount(spill, unix.MNT_DETACH) })
			s := largeSettings(t, src)
			s.SpillDir = spill
			c, mounts := startMountedCluster(t, s, 2)
			var got []byte
			require.NoError(t, within(t, "read", func() (err error) {
				got, err = os.ReadFile(filepath.Join(mounts[1], "big"))
				return err
			}))
			require.True(t, bytes.Equal(data, got), "first difference at %d", firstDiff(data, got))
			for r := range 2 {
				cs := chunkStats(t, c.nodes[r].Node().Stats())
				assert.Equal(t, "memory", cs.Store.Mode, "rank %d", r)
				assert.EqualValues(t, 1, cs.Store.Failures, "rank %d: found unusable once", r)
			}
			assert.Contains(t, c.logs.String(), "chunk spill directory unusable")

			// Copper 1.0's clear-cache command frees the chunks kept in memory.
			require.Positive(t, chunkStats(t, c.nodes[1].Node().Stats()).Store.Bytes)
			ioctl(t, filepath.Join(mounts[1], "big"), profile.IoctlClearCaches)
			assert.Zero(t, chunkStats(t, c.nodes[1].Node().Stats()).Store.Bytes, "ioctl 100 frees the chunks in memory")
			got, err := os.ReadFile(filepath.Join(mounts[1], "big"))
			require.NoError(t, err)
			require.True(t, bytes.Equal(data, got), "after ioctl 100")
		})
	}
}

// A node stopped while its child streams a large file through it: the
// child fails over to the root and still reads every byte right.
func TestMountLargeParentKilledMidStream(t *testing.T) {
	src := t.TempDir()
	data := patterned(48*testChunk+11, 5)
	require.NoError(t, os.WriteFile(filepath.Join(src, "big"), data, 0o644))
	s := largeSettings(t, src)
	s.MaxReadaheadB = 64 << 10
	c, mounts := startMountedCluster(t, s, 4)
	require.Equal(t, []int{1, 0}, c.nodes[3].Position.Ancestors)

	f, err := os.Open(filepath.Join(mounts[3], "big"))
	require.NoError(t, err)
	defer f.Close()
	half := len(data) / 2
	first := make([]byte, half)
	_, err = f.ReadAt(first, 0)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data[:half], first))

	require.NoError(t, c.nodes[1].Stop(t.Context()))

	rest := make([]byte, len(data)-half)
	require.NoError(t, within(t, "read the rest", func() error {
		_, err := f.ReadAt(rest, int64(half))
		return err
	}))
	require.True(t, bytes.Equal(data[half:], rest), "first difference at %d", half+firstDiff(data[half:], rest))
	assert.EqualValues(t, 1, c.nodes[3].Node().Stats().Failovers)
}

// The biggest shared library a Debian package ships on this machine
// (libLLVM-15, 117 MB), mapped and dlopened through a non-root mount:
// byte for byte the original, loadable, and read from the backing
// filesystem once.
func TestMountLargeSharedLibraryMmapAndDlopen(t *testing.T) {
	const (
		libDir = "/usr/lib/x86_64-linux-gnu"
		lib    = "libLLVM-15.so.1"
		pkg    = "libllvm15"
		python = "/usr/bin/python3"
	)
	host := filepath.Join(libDir, lib)
	if _, err := os.Stat(host); err != nil {
		out, ierr := exec.Command("apt-get", "install", "-y", "--no-install-recommends", pkg).CombinedOutput()
		require.NoError(t, ierr, "%s missing and apt-get install %s failed: %s", host, pkg, out)
	}
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s: %v: install the test dependencies with `make test` or scripts/setup-test-deps.sh", python, err)
	}
	want, err := os.ReadFile(host)
	require.NoError(t, err)

	s := clusterSettings(t, libDir)
	s.Fanout = 2
	s.LargeFiles = "chunked"
	s.ChunkBytes = 4 << 20
	s.SpillDir = filepath.Join(t.TempDir(), "spill")
	s.SpillBudgetBytes = 512 << 20
	c, mounts := startMountedCluster(t, s, 2)
	path := filepath.Join(mounts[1], lib)

	// Mapped and loaded by another process: a page fault of this one
	// on its own mount would block a thread the Go runtime cannot
	// preempt, and a garbage collection would then wait on it forever.
	ctx, cancel := context.WithTimeout(t.Context(), 2*mountTimeout)
	defer cancel()
	script := `import ctypes, hashlib, mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print(hashlib.sha256(m).hexdigest())
l = ctypes.CDLL(sys.argv[1])
print(bool(l.LLVMContextCreate))`
	out, err := exec.CommandContext(ctx, python, "-c", script, path).CombinedOutput()
	require.NoError(t, err, "mmap and dlopen %s: %s", path, out)
	assert.Equal(t, fmt.Sprintf("%x\nTrue\n", sha256.Sum256(want)), string(out), "mmap of the whole library, then dlopen")

	root := chunkStats(t, c.nodes[0].Node().Stats())
	assert.Equal(t, int64(len(want)), root.FetchedB, "backend bytes = 1.00x the library")
	leaf := chunkStats(t, c.nodes[1].Node().Stats())
	assert.Equal(t, op.Chunks(int64(len(want)), s.ChunkBytes), leaf.Fetched)
	assert.LessOrEqual(t, leaf.Store.Bytes, s.SpillBudgetBytes)
}

// Stopping a node removes its own spill directory and nothing else.
func TestLargeStopRemovesSpillDir(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "big"), patterned(3*testChunk, 1), 0o644))
	s := largeSettings(t, src)
	other := filepath.Join(s.SpillDir, "run-other-job")
	require.NoError(t, os.MkdirAll(other, 0o700))
	c, mounts := startMountedCluster(t, s, 2)
	_, err := os.ReadFile(filepath.Join(mounts[1], "big"))
	require.NoError(t, err)
	dirs := []string{}
	for r := range 2 {
		d := chunkStats(t, c.nodes[r].Node().Stats()).Store.Dir
		require.DirExists(t, d)
		dirs = append(dirs, d)
	}
	for r := 1; r >= 0; r-- {
		require.NoError(t, c.nodes[r].Stop(t.Context()))
	}
	for _, d := range dirs {
		assert.NoDirExists(t, d)
	}
	assert.DirExists(t, other, "another job's spill directory stays")
}

// The mount says how large files are served and whether the kernel
// offered passthrough, which the kernel's build configuration decides
// (CONFIG_FUSE_PASSTHROUGH).
func TestLargeFilesStatusReportsKernel(t *testing.T) {
	want := kernelConfigHas(t, "CONFIG_FUSE_PASSTHROUGH=y")
	src := t.TempDir()
	c, _ := startMountedCluster(t, largeSettings(t, src), 1)
	st := c.nodes[0].LargeFiles()
	assert.Equal(t, "chunked", st.Mode)
	assert.Equal(t, "page_cache", st.KernelPath)
	assert.Equal(t, int64(testChunk), st.ChunkBytes)
	assert.Equal(t, want, st.KernelOffersPassthrough, "the kernel's offer at mount time")
	require.Zero(t, os.Geteuid(), "the readahead window above 128 KiB is set as root")
	assert.Equal(t, c.nodes[0].Settings.MaxReadaheadB, st.ReadaheadBytes, "max_readahead_bytes, set through the mount's bdi")
}

// kernelConfigHas reports whether the running kernel's build
// configuration (/proc/config.gz or /boot/config-<release>) has line.
func kernelConfigHas(t *testing.T, line string) bool {
	t.Helper()
	var uts unix.Utsname
	require.NoError(t, unix.Uname(&uts))
	release := unix.ByteSliceToString(uts.Release[:])
	var cfg []byte
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		cfg, err = io.ReadAll(zr)
		require.NoError(t, err)
	} else if cfg, err = os.ReadFile("/boot/config-" + release); err != nil {
		t.Fatalf("neither /proc/config.gz nor /boot/config-%s: the test needs the kernel's configuration to know whether it offers FUSE passthrough", release)
	}
	return bytes.Contains(cfg, []byte("\n"+line+"\n"))
}
