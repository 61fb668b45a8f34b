package fuse

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestWarmLargeFileStaysInTheKernel: a large file read once through a
// no-open mount is served by the kernel's page cache from then on: a
// warm read(2) and a warm mmap touching every page, each from a fresh
// open, send the daemon no READ. The cold read goes in READs of the
// whole readahead window (1 MiB, raised through the mount's bdi), not
// the kernel's 128 KiB.
func TestWarmLargeFileStaysInTheKernel(t *testing.T) {
	const size = 16<<20 + 12345
	root := filepath.Join(t.TempDir(), "tree")
	require.NoError(t, os.MkdirAll(root, 0o755))
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i*7 + i>>12)
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "big.bin"), want, 0o644))
	var trace syncBuffer
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) {
		o.Debug = true
		o.MaxRead = 1 << 20
		o.MaxReadahead = 1 << 20
		o.Logger = slog.New(slog.NewTextHandler(&trace, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	require.Equal(t, 1<<20, m.ReadaheadBytes(), "readahead window of the mount (root raises it)")
	p := filepath.Join(m.Mountpoint(), "big.bin")

	readAll := func() []byte {
		f, err := os.Open(p)
		require.NoError(t, err)
		defer f.Close()
		got, err := io.ReadAll(f)
		require.NoError(t, err)
		return got
	}
	mapAll := func() []byte {
		f, err := os.Open(p)
		require.NoError(t, err)
		defer f.Close()
		m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
		require.NoError(t, err)
		defer func() { require.NoError(t, unix.Munmap(m)) }()
		return bytes.Clone(m)
	}
	require.True(t, bytes.Equal(want, readAll()), "cold read")
	cold := requestCounts(trace.String())["READ"]
	// 128 KiB READs would be 129; readahead ramps up to its window.
	assert.LessOrEqual(t, cold, 2*(size>>20+1), "cold READs of %d bytes with a 1 MiB window", size)

	// Pin the file's cached pages: this machine's kernel reclaims cold page
	// cache proactively (DAMON), and a page it took back is read again,
	// rightly. The pin faults in whatever went meanwhile, before the count.
	pinned, err := os.Open(p)
	require.NoError(t, err)
	pin, err := unix.Mmap(int(pinned.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Munmap(pin); _ = pinned.Close() })
	require.NoError(t, unix.Mlock(pin))
	warmFrom := requestCounts(trace.String())["READ"]
	for range 2 {
		require.True(t, bytes.Equal(want, readAll()), "warm read")
		require.True(t, bytes.Equal(want, mapAll()), "warm mmap")
	}
	assert.Equal(t, warmFrom, requestCounts(trace.String())["READ"], "READs of the warm reads and maps")
}

// TestRaiseReadaheadOnlyOnFUSE: the readahead window is only ever set
// on a FUSE mount's bdi, never on the disk under a plain directory.
func TestRaiseReadaheadOnlyOnFUSE(t *testing.T) {
	_, err := raiseReadahead(t.TempDir(), 1<<20)
	require.ErrorContains(t, err, "not a FUSE mount")
}
