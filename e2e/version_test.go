package e2e

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestChangedFileThroughTheTree changes a file that a child node's mount
// has read part of, clears every node's cache (ioctl 100, root first) and
// reads the file again through the child: the read is one version whole
// or fails, and the next open reads the new version whole. The kernel
// keeps the pages of the first read, so a view that fetched the rest anew
// would mix versions.
func TestChangedFileThroughTheTree(t *testing.T) {
	const (
		size   = 256 << 10
		prefix = 16 << 10
	)
	tests := []struct {
		name         string
		maxCacheable int
	}{
		{"through the tree", 1 << 20},
		{"over max_cacheable", 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			host := filepath.Join(src, "f.bin")
			v1, v2 := randomBytes(1, size), randomBytes(2, size)
			require.NoError(t, os.WriteFile(host, v1, 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(src, "ctl"), []byte("ioctl target\n"), 0o644))
			c := newCluster(t, clusterConfig{nodes: 2, fanout: 2, target: src, flags: []string{
				"--max-cacheable-bytes", strconv.Itoa(tt.maxCacheable),
				"--max-readahead-bytes", strconv.Itoa(prefix),
			}})
			c.startAll()
			view := filepath.Join(c.mount(1), "f.bin") // a child: its stat comes through the tree

			require.NoError(t, within(t, fsTimeout, "read a prefix of "+view, func() error {
				f, err := os.Open(view)
				if err != nil {
					return err
				}
				defer f.Close()
				buf := make([]byte, prefix)
				if _, err := io.ReadFull(f, buf); err != nil {
					return err
				}
				if !bytes.Equal(buf, v1[:prefix]) {
					return errors.New("the prefix is not the first version's")
				}
				return nil
			}))

			f, err := os.OpenFile(host, os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.Write(v2)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			for rank := range 2 {
				ctl := filepath.Join(c.mount(rank), "ctl")
				require.NoError(t, within(t, fsTimeout, "ioctl 100 on "+ctl, func() error {
					f, err := os.Open(ctl)
					if err != nil {
						return err
					}
					defer f.Close()
					if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), 100, 0); errno != 0 {
						return errno
					}
					return nil
				}))
			}

			var got []byte
			err = within(t, fsTimeout, "read "+view, func() (err error) {
				got, err = os.ReadFile(view)
				return err
			})
			if err == nil && !bytes.Equal(got, v1) && !bytes.Equal(got, v2) {
				t.Fatalf("first read after the change: %d bytes that are no version whole (first %d equal to the old)",
					len(got), commonPrefix(got, v1))
			}
			t.Logf("first read after the change: err=%v", err)

			require.NoError(t, within(t, fsTimeout, "read "+view+" again", func() (err error) {
				got, err = os.ReadFile(view)
				return err
			}))
			require.True(t, bytes.Equal(got, v2), "the next open reads the new version whole (%d bytes, first %d equal to the old)",
				len(got), commonPrefix(got, v1))
		})
	}
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
