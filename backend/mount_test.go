package backend_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/cache"
	cfuse "github.com/hpc-copper/copper/fuse"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

// Through a real mount a symlink leading out of the target still works:
// the kernel follows it for the user, outside the mount, with the user's
// rights. Asked directly (as a peer asks a root), the same path through
// the link is refused: the root never follows it with its own rights.
func TestMountFollowsLinksRootDoesNot(t *testing.T) {
	testkit.RequireFuse(t)
	sc := testkit.NewScratch(t, "copper-beneath-*")
	outside := filepath.Join(sc.Dir, "etc") // stands in for the host's /etc
	target := filepath.Join(sc.Dir, "target")
	mnt := filepath.Join(sc.Dir, "mnt")
	for _, d := range []string{outside, filepath.Join(target, "d"), mnt} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(outside, "somefile"), []byte("outside\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(target, "d/f.txt"), []byte("inside\n"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(target, "etclink")))
	require.NoError(t, os.Symlink("d", filepath.Join(target, "inner")))

	be, err := backend.New(backend.Config{Target: target, Parallel: 2, MaxCacheable: 1 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, be.Close()) })
	root, err := node.New(node.Config{Cache: cache.New(cache.Config{BudgetBytes: 1 << 20, NegativeTTL: time.Minute}), Backend: be})
	require.NoError(t, err)
	root.MarkRegistered()
	m, err := cfuse.Mount(root, cfuse.Options{Mount: mnt, Target: target, MaxCacheable: 1 << 20})
	require.NoError(t, err)
	sc.NoteConnections()
	t.Cleanup(func() { assert.NoError(t, m.Unmount()) }) // before the scratch cleanup

	// The view shows the link as a link, with its text.
	to, err := os.Readlink(filepath.Join(mnt, "etclink"))
	require.NoError(t, err)
	assert.Equal(t, outside, to)
	// The user's cat follows it: to the host path, outside the mount.
	out, err := exec.Command("cat", filepath.Join(mnt, "etclink/somefile")).Output()
	require.NoError(t, err)
	assert.Equal(t, "outside\n", string(out))
	// A link inside the target is followed by the kernel within the view.
	out, err = exec.Command("cat", filepath.Join(mnt, "inner/f.txt")).Output()
	require.NoError(t, err)
	assert.Equal(t, "inside\n", string(out))

	// A peer's request for the same path is refused by the root.
	ctx := context.Background()
	for _, o := range []op.Op{op.Getattr, op.Read, op.Readlink} {
		assert.Equal(t, syscall.ELOOP, root.Get(ctx, o, "/etclink/somefile").Errno, "node.Get %s", o)
		assert.Equal(t, syscall.ELOOP, be.Do(ctx, o, "/etclink/somefile").Errno, "backend.Do %s", o)
	}
	assert.Equal(t, syscall.ELOOP, root.Get(ctx, op.Readdir, "/etclink").Errno)
}
