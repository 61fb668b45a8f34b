package fuse

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rxLine matches go-fuse's trace of one request from the kernel:
// "rx 12: LOOKUP n1 [...]".
var rxLine = regexp.MustCompile(`rx \d+: ([A-Z_]+) `)

// requestCounts counts the kernel's requests in go-fuse's trace.
func requestCounts(trace string) map[string]int {
	counts := map[string]int{}
	for _, m := range rxLine.FindAllStringSubmatch(trace, -1) {
		counts[m[1]]++
	}
	return counts
}

// warmPass is what a job does over and over with a tree: open, read and
// close files, list directories, probe a missing name, stat and follow
// links. Files over max_cacheable are left out: each of their path walks
// is a LOOKUP by design (see rawView.Lookup).
func warmPass(t *testing.T, mnt string) {
	t.Helper()
	at := func(rel string) string { return filepath.Join(mnt, rel) }
	for _, rel := range []string{"a/small.txt", "a/b/c/deep.txt", "a/empty.txt", "exactly.bin", "run.sh",
		"dïr with space/fïlé ünïcode.txt", "links/rel", "many/entry-with-a-longish-name--0"} {
		_, err := os.ReadFile(at(rel))
		require.NoError(t, err, rel)
		_, err = os.Stat(at(rel))
		require.NoError(t, err, rel)
	}
	for _, rel := range []string{".", "a", "a/b/c", "many", "emptydir", "links"} {
		_, err := os.ReadDir(at(rel))
		require.NoError(t, err, rel)
		_, err = os.Lstat(at(rel))
		require.NoError(t, err, rel)
	}
	_, err := os.Lstat(at("a/missing.py"))
	require.ErrorIs(t, err, syscall.ENOENT)
	_, err = os.Readlink(at("links/abs"))
	require.NoError(t, err)
}

// TestWarmPassStaysInTheKernel: once a pass over the tree has warmed
// the kernel's caches, the same pass again sends the daemon nothing
// (STATFS aside): no OPEN, RELEASE, OPENDIR, RELEASEDIR, FLUSH, GETATTR,
// LOOKUP, READ or READDIR. Counted from go-fuse's own request trace, so
// every request the kernel sends is seen, handled by copper or not.
func TestWarmPassStaysInTheKernel(t *testing.T) {
	root := makeTree(t)
	var trace syncBuffer
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) {
		o.Debug = true
		o.Logger = slog.New(slog.NewTextHandler(&trace, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	warmPass(t, m.Mountpoint())
	cold := requestCounts(trace.String())
	require.Positive(t, cold["LOOKUP"], "the trace shows requests: %v", cold)
	require.Positive(t, cold["READ"], "the trace shows requests: %v", cold)

	warmPass(t, m.Mountpoint())
	warm := requestCounts(trace.String())
	for opcode, n := range warm {
		warm[opcode] = n - cold[opcode]
		if warm[opcode] == 0 || opcode == "STATFS" {
			delete(warm, opcode)
		}
	}
	assert.Empty(t, warm, "requests of the warm pass (cold pass: %v)", cold)

	// Programs still run from the mount with no handles: exec reads
	// the script through the kernel (mmap: TestMmapThroughMount).
	for range 2 {
		out, err := exec.Command(filepath.Join(m.Mountpoint(), "run.sh")).Output()
		require.NoError(t, err)
		assert.Equal(t, "hi\n", string(out))
	}
}
