package slowpfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// requireFuse fails (never skips) when the machine cannot mount.
func requireFuse(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("/dev/fuse: %v: this test mounts FUSE; run scripts/setup-test-deps.sh", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts FUSE directly: run it as root (euid %d)", os.Geteuid())
	}
}

// mountTree builds a tiny backing tree and mounts one caching and one
// non-caching client of it, with no service time (the FUSE path is what
// is tested here; the costs are tested on the Model).
func mountTree(t *testing.T) (e *Emulator, cached, uncached string) {
	t.Helper()
	requireFuse(t)
	backing := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(backing, "site", "pkg"), 0o755))
	require.NoError(t, writeFile(filepath.Join(backing, "site", "pkg", "mod.py"), "x = 1\n"))
	require.NoError(t, os.Symlink("mod.py", filepath.Join(backing, "site", "pkg", "link.py")))
	e, err := New(Config{Backing: backing, Params: Params{Slots: 1, Bandwidth: 1 << 30, DirEntriesPerOp: 1}})
	require.NoError(t, err)
	// Not t.TempDir for mount points: its removal must come after the
	// unmount, and Cleanup runs last-registered first.
	mounts, err := os.MkdirTemp("", "slowpfs-test-")
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, e.Close())
		require.NoError(t, os.RemoveAll(mounts))
	})
	cached, uncached = filepath.Join(mounts, "cached"), filepath.Join(mounts, "uncached")
	require.NoError(t, os.Mkdir(cached, 0o755))
	require.NoError(t, os.Mkdir(uncached, 0o755))
	_, err = e.Mount(cached, ClientOptions{CacheTimeout: time.Hour})
	require.NoError(t, err)
	_, err = e.Mount(uncached, ClientOptions{})
	require.NoError(t, err)
	return e, cached, uncached
}

func TestClientsServeTheBackingTree(t *testing.T) {
	_, cached, uncached := mountTree(t)
	for _, root := range []string{cached, uncached} {
		data, err := os.ReadFile(filepath.Join(root, "site/pkg/mod.py"))
		require.NoError(t, err)
		assert.Equal(t, "x = 1\n", string(data))
		target, err := os.Readlink(filepath.Join(root, "site/pkg/link.py"))
		require.NoError(t, err)
		assert.Equal(t, "mod.py", target)
		ents, err := os.ReadDir(filepath.Join(root, "site/pkg"))
		require.NoError(t, err)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		assert.ElementsMatch(t, []string{"mod.py", "link.py"}, names)
		_, err = os.Stat(filepath.Join(root, "site/pkg/missing.py"))
		assert.ErrorIs(t, err, os.ErrNotExist)

		err = os.WriteFile(filepath.Join(root, "site/new"), []byte("x"), 0o644)
		assert.ErrorIs(t, err, syscall.EROFS, "the view is read-only")
		_, err = os.OpenFile(filepath.Join(root, "site/pkg/mod.py"), os.O_WRONLY, 0)
		assert.ErrorIs(t, err, syscall.EROFS)
	}
}

func TestEachClientCachesForItselfAndOpensAlwaysReachTheServer(t *testing.T) {
	e, cached, uncached := mountTree(t)
	mod := "site/pkg/mod.py"
	e.Reset()
	for range 3 {
		_, err := os.ReadFile(filepath.Join(cached, mod))
		require.NoError(t, err)
		_, err = os.Stat(filepath.Join(cached, "site/pkg/missing.py"))
		require.ErrorIs(t, err, os.ErrNotExist)
	}
	s := e.Reset().Counters
	assert.Equal(t, int64(1), s.Paths["/"+mod].Ops[OpLookup], "the caching client looked the file up once")
	assert.Equal(t, int64(1), s.Paths["/site/pkg/missing.py"].Ops[OpLookup], "and cached the negative answer")
	assert.Equal(t, int64(3), s.Paths["/"+mod].Ops[OpOpen], "every open reaches the server")
	assert.Equal(t, int64(6), s.Paths["/"+mod].Bytes, "pages were read once and kept")
	sum := s.Fetches("/site/pkg/mod.py")
	assert.InDelta(t, 1.0, sum.DataRatio, 1e-9)

	for range 3 {
		_, err := os.ReadFile(filepath.Join(uncached, mod))
		require.NoError(t, err)
	}
	s = e.Reset().Counters
	assert.GreaterOrEqual(t, s.Paths["/"+mod].Ops[OpLookup], int64(3), "without a cache every access looks up")
	assert.Equal(t, int64(18), s.Paths["/"+mod].Bytes, "and reads the data again")

	_, err := os.ReadDir(filepath.Join(cached, "site/pkg"))
	require.NoError(t, err)
	s = e.Reset().Counters
	assert.Equal(t, int64(1), s.Paths["/site/pkg"].Ops[OpOpendir])
	// 4 entries (".", "..", mod.py, link.py) at one per readdir operation.
	assert.Equal(t, int64(4), s.Paths["/site/pkg"].Ops[OpReaddir])
}
