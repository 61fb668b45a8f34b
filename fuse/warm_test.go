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
	"golang.org/x/sys/unix"
)

// rxLine matches go-fuse's trace of one request from the kernel:
// "rx 12: LOOKUP n1 [...]", with its opcode and node id.
var rxLine = regexp.MustCompile(`rx \d+: ([A-Z_]+) n(\d+)`)

// pollHackNode is the node id of the file go-fuse opens once at mount time
// to probe poll support: its requests (OPEN, FLUSH, and a RELEASE the
// kernel may send much later) are go-fuse's own, not the tree's.
const pollHackNode = "18446744073709551615"

// requestCounts counts the kernel's requests in go-fuse's trace.
func requestCounts(trace string) map[string]int {
	counts := map[string]int{}
	for _, m := range rxLine.FindAllStringSubmatch(trace, -1) {
		if m[2] != pollHackNode {
			counts[m[1]]++
		}
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

// TestWarmStatStaysInTheKernel: once warm, the ways programs stat a
// path — stat, lstat, statx, fstatat relative to a directory, a path
// through "..", stat right after a read, access, a missing name (also in a deep directory and
// under a missing directory) — reach the daemon zero times, however
// often they repeat: no GETATTR (the mount is read-only, so atime never
// marks attributes stale), no LOOKUP (entries and negative entries live
// out their timeouts), no ACCESS (default_permissions).
func TestWarmStatStaysInTheKernel(t *testing.T) {
	root := makeTree(t)
	var trace syncBuffer
	m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) {
		o.Debug = true
		o.Logger = slog.New(slog.NewTextHandler(&trace, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	mnt := m.Mountpoint()
	at := func(rel string) string { return filepath.Join(mnt, rel) }
	dir, err := os.Open(at("a/b"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = dir.Close() })
	var st syscall.Stat_t
	var stx unix.Statx_t
	var ust unix.Stat_t
	stats := []struct {
		name    string
		want    error
		statOne func() error
	}{
		{"stat of a cached file", nil, func() error { return syscall.Stat(at("a/small.txt"), &st) }},
		{"lstat of a deep file", nil, func() error { return syscall.Lstat(at("a/b/c/deep.txt"), &st) }},
		{"statx", nil, func() error { return unix.Statx(unix.AT_FDCWD, at("a/small.txt"), 0, unix.STATX_BASIC_STATS, &stx) }},
		{"fstatat relative to a directory", nil, func() error {
			return unix.Fstatat(int(dir.Fd()), "c/deep.txt", &ust, unix.AT_SYMLINK_NOFOLLOW)
		}},
		{"a path through ..", nil, func() error { return syscall.Stat(at("a/b/../small.txt"), &st) }},
		{"stat of a directory", nil, func() error { return syscall.Stat(at("a/b/c"), &st) }},
		{"stat through a symlink", nil, func() error { return syscall.Stat(at("links/rel"), &st) }},
		{"stat after reading the file", nil, func() error {
			if _, err := os.ReadFile(at("a/small.txt")); err != nil {
				return err
			}
			return syscall.Stat(at("a/small.txt"), &st)
		}},
		{"access", nil, func() error { return syscall.Access(at("a/small.txt"), unix.R_OK) }},
		{"a missing name", syscall.ENOENT, func() error { return syscall.Lstat(at("a/missing.py"), &st) }},
		{"a missing name in a deep directory", syscall.ENOENT, func() error { return syscall.Stat(at("a/b/c/missing.so"), &st) }},
		{"under a missing directory", syscall.ENOENT, func() error { return syscall.Stat(at("nodir/x/y.py"), &st) }},
	}
	for _, s := range stats { // cold: the kernel learns every name
		require.ErrorIs(t, s.statOne(), s.want, s.name)
	}
	for _, s := range stats {
		before := requestCounts(trace.String())
		for range 200 {
			err := s.statOne()
			if s.want == nil {
				require.NoError(t, err, s.name)
			} else {
				require.ErrorIs(t, err, s.want, s.name)
			}
		}
		after := requestCounts(trace.String())
		sent := map[string]int{}
		for opcode, n := range after {
			if d := n - before[opcode]; d > 0 {
				sent[opcode] = d
			}
		}
		assert.Empty(t, sent, "%s: requests reaching the daemon in 200 warm repetitions", s.name)
	}

	// A read that reaches the daemon would mark atime stale on a
	// read-write superblock, and the next stat would send GETATTR
	// despite the attribute timeout: the mount is read-only.
	require.NoError(t, syscall.Stat(at("exactly.bin"), &st))
	before := requestCounts(trace.String())
	_, err = os.ReadFile(at("exactly.bin"))
	require.NoError(t, err)
	require.NoError(t, syscall.Stat(at("exactly.bin"), &st))
	after := requestCounts(trace.String())
	require.Greater(t, after["READ"], before["READ"], "the first read reaches the daemon")
	assert.Equal(t, before["GETATTR"], after["GETATTR"], "GETATTR after the first read")
}
