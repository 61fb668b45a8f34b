package backend

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// BenchmarkBackendGetattr compares the path-based lstat the backend used
// to do with the beneath resolution it does now (openat2, and the walk of
// kernels without it), for a name at the top and one four levels down:
// the cost of never following a symlink is one open of the parent
// directory (none at the top) per getattr. "Do" adds the semaphore and
// the target fd's reference.
func BenchmarkBackendGetattr(b *testing.B) {
	target := b.TempDir()
	require.NoError(b, os.MkdirAll(filepath.Join(target, "a/b/c"), 0o755))
	for _, p := range []string{"f", "a/b/c/f"} {
		require.NoError(b, os.WriteFile(filepath.Join(target, p), []byte("x"), 0o644))
	}
	kernel, err := New(Config{Target: target, Parallel: 1, MaxCacheable: 1 << 20})
	require.NoError(b, err)
	b.Cleanup(func() { _ = kernel.Close() })
	walker, err := New(Config{Target: target, Parallel: 1, MaxCacheable: 1 << 20, ForceWalk: true})
	require.NoError(b, err)
	b.Cleanup(func() { _ = walker.Close() })
	root := int(kernel.root.Fd())
	ctx := context.Background()

	for _, tc := range []struct{ depth, view string }{{"depth1", "/f"}, {"depth4", "/a/b/c/f"}} {
		host := HostPath(target, tc.view)
		b.Run(tc.depth+"/lstat-path", func(b *testing.B) {
			var st syscall.Stat_t
			for b.Loop() {
				if err := syscall.Lstat(host, &st); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.depth+"/openat2", func(b *testing.B) {
			for b.Loop() {
				if r := kernel.getattr(root, tc.view); !r.OK() {
					b.Fatal(r.Errno)
				}
			}
		})
		b.Run(tc.depth+"/walk", func(b *testing.B) {
			for b.Loop() {
				if r := walker.getattr(root, tc.view); !r.OK() {
					b.Fatal(r.Errno)
				}
			}
		})
		b.Run(tc.depth+"/Do-openat2", func(b *testing.B) {
			for b.Loop() {
				if r := kernel.Do(ctx, op.Getattr, tc.view); !r.OK() {
					b.Fatal(r.Errno)
				}
			}
		})
	}
}
