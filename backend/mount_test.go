package backend_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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

// gatedSource answers getattr of "/slow" only once released, so that a
// backend whose target is this mount has an operation in flight.
type gatedSource struct {
	asked   chan struct{} // closed when "/slow" is first asked
	release chan struct{}
	once    sync.Once
}

func (s *gatedSource) Get(ctx context.Context, o op.Op, p string) op.Result {
	if o != op.Getattr {
		return op.Fail(syscall.ENOSYS)
	}
	switch p {
	case "/":
		return op.Result{Attr: op.Attr{Mode: syscall.S_IFDIR | 0o755, Nlink: 2}}
	case "/slow":
		s.once.Do(func() { close(s.asked) })
		select {
		case <-s.release:
		case <-ctx.Done():
			return op.Fail(syscall.EINTR)
		}
		return op.Result{Attr: op.Attr{Mode: syscall.S_IFREG | 0o644, Nlink: 1, Size: 7}}
	}
	return op.Fail(syscall.ENOENT)
}

// Close while an operation runs: the target fd stays open until the
// operation ends (its number is never freed, so never reused, under
// it), the operation succeeds, and Close does not wait for it.
func TestCloseDuringAnOperation(t *testing.T) {
	testkit.RequireFuse(t)
	sc := testkit.NewScratch(t, "copper-beneath-*")
	mnt := filepath.Join(sc.Dir, "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	src := &gatedSource{asked: make(chan struct{}), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(src.release) }) }
	m, err := cfuse.Mount(src, cfuse.Options{Mount: mnt, Target: filepath.Join(sc.Dir, "unused"), MaxCacheable: 1 << 20})
	require.NoError(t, err)
	sc.NoteConnections()
	t.Cleanup(func() { release(); assert.NoError(t, m.Unmount()) })

	be, err := backend.New(backend.Config{Target: mnt, Parallel: 1, MaxCacheable: 1 << 20})
	require.NoError(t, err)
	fds := openFdsTo(t, mnt)
	require.Len(t, fds, 1, "the backend holds one fd on its target")

	done := make(chan op.Result, 1)
	go func() { done <- be.Do(context.Background(), op.Getattr, "/slow") }()
	<-src.asked // the operation is inside the kernel, on the target fd
	require.NoError(t, be.Close(), "Close returns while the operation runs")
	assert.Equal(t, fds, openFdsTo(t, mnt), "the target fd stays open under the running operation")
	release()
	r := <-done
	require.Zero(t, r.Errno)
	assert.EqualValues(t, 7, r.Attr.Size)
	assert.Empty(t, openFdsTo(t, mnt), "the target fd is closed once the operation ended")
	assert.Equal(t, syscall.EIO, be.Do(context.Background(), op.Getattr, "/slow").Errno)
}

// openFdsTo lists this process's fds open on path.
func openFdsTo(t *testing.T, path string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var fds []string
	for _, e := range ents {
		if to, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && to == path {
			fds = append(fds, e.Name())
		}
	}
	return fds
}
