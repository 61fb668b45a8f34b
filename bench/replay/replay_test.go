package replay

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tree makes the files the trace below touches.
func tree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "site", "pkg"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "site", "pkg", "__init__.py"), []byte("x = 1\n"), 0o644))
	lib := make([]byte, 3*pageSize+100)
	for i := range lib {
		lib[i] = byte(i)
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "site", "pkg", "lib.so"), lib, 0o644))
	require.NoError(t, os.Symlink("pkg", filepath.Join(root, "site", "alias")))
	return root
}

const treeTrace = `1 newfstatat(AT_FDCWD, "/rec/site", {st_mode=S_IFDIR|0755}, 0) = 0
1 openat(AT_FDCWD, "/rec/site/pkg", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3
1 getdents64(3, 0x1 /* 4 entries */, 32768) = 112
1 getdents64(3, 0x1 /* 0 entries */, 32768) = 0
1 close(3) = 0
1 newfstatat(AT_FDCWD, "/rec/site/pkg/missing.py", 0x1, 0) = -1 ENOENT (No such file or directory)
1 openat(AT_FDCWD, "/rec/site/pkg/__init__.py", O_RDONLY|O_CLOEXEC) = 3
1 newfstatat(3, "", {st_mode=S_IFREG|0644, st_size=6}, AT_EMPTY_PATH) = 0
1 read(3, ""..., 7) = 6
1 read(3, "", 1) = 0
1 close(3) = 0
1 openat(AT_FDCWD, "/rec/site/pkg/lib.so", O_RDONLY|O_CLOEXEC) = 3
1 read(3, ""..., 832) = 832
1 mmap(NULL, 16384, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3, 0) = 0x7f0000000000
1 mmap(0x7f0000001000, 16384, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3, 0x1000) = 0x7f0000001000
1 close(3) = 0
1 readlink("/rec/site/alias", ""..., 4096) = 3
1 access("/rec/site/pkg/__init__.py", R_OK) = 0
1 openat(AT_FDCWD, "/rec/site/pkg/absent.so", O_RDONLY) = -1 ENOENT (No such file or directory)
1 read(4, ""..., 10) = 10
`

func parseTree(t *testing.T) *Trace {
	t.Helper()
	tr, err := Parse(strings.NewReader(treeTrace), "tree", "/rec")
	require.NoError(t, err)
	require.Zero(t, tr.Bad, "%v", tr.First)
	return tr
}

func TestRunReplaysTheTraceAgainstAnotherRoot(t *testing.T) {
	tr := parseTree(t)
	res, err := Run(context.Background(), tr, tree(t))
	require.NoError(t, err)
	assert.Zero(t, res.Divergences, res.First)
	assert.Equal(t, len(tr.Ops), res.Ops)
	assert.Zero(t, res.Skipped)
	// getdents listing + 6 bytes of __init__.py + 832 header bytes + the
	// first page of the reservation + the 2 in-file pages of the MAP_FIXED
	// segment (offset 4096, 16384 long, file ends 8292 bytes later).
	listing := res.Bytes - 6 - 832 - pageSize - (2*pageSize + 100)
	assert.Positive(t, listing, "directory entries were listed")
	assert.Positive(t, res.Duration)
}

func TestRunCountsDivergences(t *testing.T) {
	tr := parseTree(t)
	root := tree(t)
	require.NoError(t, os.Remove(filepath.Join(root, "site", "pkg", "lib.so")))
	require.NoError(t, os.WriteFile(filepath.Join(root, "site", "pkg", "missing.py"), nil, 0o644))
	res, err := Run(context.Background(), tr, root)
	require.NoError(t, err)
	// The stat of missing.py and the open of lib.so now differ; the read,
	// mmaps and close on lib.so's descriptor are skipped.
	assert.Equal(t, 2, res.Divergences)
	assert.Equal(t, 4, res.Skipped)
	assert.Contains(t, res.First, "trace line 6: stat /site/pkg/missing.py: traced no such file or directory, replay success")
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, parseTree(t), tree(t))
	assert.ErrorIs(t, err, context.Canceled)
}

func TestTouchStaysInsideTheFile(t *testing.T) {
	root := tree(t)
	f, err := os.Open(filepath.Join(root, "site", "pkg", "lib.so"))
	require.NoError(t, err)
	defer f.Close()
	tests := []struct {
		name        string
		off, length int64
		want        int64
	}{
		{"whole file and beyond", 0, 1 << 20, 3*pageSize + 100},
		{"one page", pageSize, pageSize, pageSize},
		{"past the end", 8 * pageSize, pageSize, 0},
		{"unaligned offset is not mapped", 100, pageSize, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _, err := touch(int(f.Fd()), tt.off, tt.length)
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
		})
	}
}
