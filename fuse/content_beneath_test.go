package fuse

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// TestDirectFilesOpenBeneathTarget: a large file read straight from the
// host is opened beneath the target with no symlink in any component. A
// directory on the way swapped for a symlink (to the same bytes outside,
// or anywhere) and a FIFO swapped in for the file are refused at once,
// as a changed file (ESTALE), never opened through the link or blocked on.
func TestDirectFilesOpenBeneathTarget(t *testing.T) {
	payload := []byte("large file bytes\n")
	cases := []struct {
		name string
		swap func(t *testing.T, target, outside string) // after the view's stat
		want syscall.Errno
	}{
		{"unchanged", func(*testing.T, string, string) {}, 0},
		{"directory swapped for a symlink to a copy outside", func(t *testing.T, target, outside string) {
			require.NoError(t, os.Rename(filepath.Join(target, "d"), filepath.Join(outside, "moved")))
			require.NoError(t, os.Symlink(filepath.Join(outside, "moved"), filepath.Join(target, "d")))
		}, syscall.ESTALE},
		{"file swapped for a FIFO", func(t *testing.T, target, _ string) {
			require.NoError(t, os.Remove(filepath.Join(target, "d", "f")))
			require.NoError(t, syscall.Mkfifo(filepath.Join(target, "d", "f"), 0o644))
		}, syscall.ESTALE},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target, outside := t.TempDir(), t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(target, "d"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(target, "d", "f"), payload, 0o644))
			var st syscall.Stat_t
			require.NoError(t, syscall.Lstat(filepath.Join(target, "d", "f"), &st))
			attr := op.AttrFromStat(&st)
			tc.swap(t, target, outside)

			done := make(chan syscall.Errno, 1)
			go func() {
				c, errno := DirectFiles{Target: target}.Open(context.Background(), "/d/f", attr)
				if c != nil {
					_ = c.Release()
				}
				done <- errno
			}()
			select {
			case errno := <-done:
				require.Equal(t, tc.want, errno)
			case <-time.After(10 * time.Second):
				t.Fatal("Open blocked (a FIFO opened without O_NONBLOCK?)")
			}
		})
	}
}
