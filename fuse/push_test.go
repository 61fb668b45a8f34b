package fuse

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// heldSource is a dirSource that holds every small file's bytes, as a
// node whose cache got them with their directory does (HeldReader).
// Files in skewed are held as another version: their bytes must never
// be pushed.
type heldSource struct {
	*dirSource
	skewed map[string]bool
}

func (s heldSource) Held(p string) (op.Result, bool) {
	host := filepath.Join(s.root, p)
	var st syscall.Stat_t
	if err := syscall.Lstat(host, &st); err != nil || st.Size > s.maxRead {
		return op.Result{}, false
	}
	data, err := os.ReadFile(host)
	if err != nil {
		return op.Result{}, false
	}
	r := op.Result{Attr: op.AttrFromStat(&st), Data: data}
	if s.skewed[p] {
		r.Attr.MtimeNs++
	}
	return r, true
}

// waitPushed waits until the mount has pushed n files.
func waitPushed(t *testing.T, m *Mounted, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for m.PushStats().Pushed < n {
		if time.Now().After(deadline) {
			t.Fatalf("pushed %+v, want %d files", m.PushStats(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestListedSmallFilesAreNeverRead: once the kernel has listed a
// directory (READDIRPLUS), reading its small files sends the daemon no
// LOOKUP and no READ: their bytes were pushed into the kernel's cache,
// and they are the file's bytes, by read and by mmap. An empty file, a
// large file and a file held as another version are not pushed, and
// still read right; a large file's entry keeps no lifetime.
func TestListedSmallFilesAreNeverRead(t *testing.T) {
	root := makeTree(t)
	var trace syncBuffer
	src := heldSource{dirSource: newDirSource(root, treeMaxCacheable), skewed: map[string]bool{"/run.sh": true}}
	m := mountSource(t, src, root, treeMaxCacheable, func(o *Options) {
		o.Debug = true
		o.Logger = slog.New(slog.NewTextHandler(&trace, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	at := func(rel string) string { return filepath.Join(m.Mountpoint(), rel) }
	var pushed []string // small, non-empty, not skewed
	for _, dir := range []string{".", "a/b/c", "many"} {
		des, err := os.ReadDir(at(dir))
		require.NoError(t, err, dir)
		for _, de := range des {
			rel := filepath.Join(dir, de.Name())
			info, err := os.Lstat(filepath.Join(root, rel))
			require.NoError(t, err)
			if info.Mode().IsRegular() && info.Size() > 0 && info.Size() <= treeMaxCacheable && !src.skewed["/"+rel] {
				pushed = append(pushed, rel)
			}
		}
	}
	require.Contains(t, pushed, "exactly.bin", "a file of exactly max_cacheable bytes is pushed")
	require.Contains(t, pushed, "a/b/c/deep.txt")
	waitPushed(t, m, uint64(len(pushed)))

	before := requestCounts(trace.String())
	for _, rel := range pushed {
		got, err := os.ReadFile(at(rel))
		require.NoError(t, err, rel)
		want, err := os.ReadFile(filepath.Join(root, rel))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s: the pushed bytes are the file's", rel)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := runHelper(ctx, "mmap", at("a/b/c/deep.txt"), "").Output()
	require.NoError(t, err)
	assert.Equal(t, snapshot(t, filepath.Join(root, "a/b/c/deep.txt"))["."].SHA256, strings.TrimSpace(string(out)), "mmap of a pushed file")
	after := requestCounts(trace.String())
	for _, opcode := range []string{"LOOKUP", "READ", "GETATTR"} {
		assert.Equal(t, before[opcode], after[opcode], "%s requests reading %d listed small files", opcode, len(pushed))
	}

	// Not pushed: read through the daemon, and right.
	for _, rel := range []string{"run.sh", "big.bin", "a/empty.txt"} {
		before := requestCounts(trace.String())
		got, err := os.ReadFile(at(rel))
		require.NoError(t, err, rel)
		want, err := os.ReadFile(filepath.Join(root, rel))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), rel)
		if len(want) > 0 {
			assert.Greater(t, requestCounts(trace.String())["READ"], before["READ"], "%s is read through the daemon", rel)
		}
	}
	// big.bin was listed: its entry has no lifetime all the same.
	before = requestCounts(trace.String())
	_, err = os.Stat(at("big.bin"))
	require.NoError(t, err)
	assert.Greater(t, requestCounts(trace.String())["LOOKUP"], before["LOOKUP"], "a path walk to a listed large file looks it up")

	st := m.PushStats()
	assert.Equal(t, uint64(len(pushed)), st.Pushed, "%+v", st)
	assert.Zero(t, st.Failed, "%+v", st)
}

// TestNoPushesWithoutHeldBytes: a Source that offers no HeldReader, or a
// mount that handles opens, pushes nothing; listed files read right.
func TestNoPushesWithoutHeldBytes(t *testing.T) {
	root := makeTree(t)
	for _, tc := range []struct {
		name        string
		src         Source
		handleOpens bool
	}{
		{"no HeldReader", newDirSource(root, treeMaxCacheable), false},
		{"handled opens", heldSource{dirSource: newDirSource(root, treeMaxCacheable)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mountSource(t, tc.src, root, treeMaxCacheable, func(o *Options) { o.HandleOpens = tc.handleOpens })
			_, err := os.ReadDir(m.Mountpoint())
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(m.Mountpoint(), "exactly.bin"))
			require.NoError(t, err)
			want, err := os.ReadFile(filepath.Join(root, "exactly.bin"))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got))
			assert.Equal(t, PushStats{}, m.PushStats())
		})
	}
}

// refusingStorer answers every store with errno and counts them.
type refusingStorer struct {
	errno syscall.Errno
	calls int
}

func (s *refusingStorer) InodeNotifyStoreCache(uint64, int64, []byte) gofuse.Status {
	s.calls++
	return gofuse.Status(s.errno)
}

// TestRefusedStoresTurnPushesOff: a connection that can never store
// (Linux answers a notification code it does not know with EINVAL;
// go-fuse without a notification writer, ENOSYS) turns the mount's
// pushes off after one store, so a listing does not cost a failing
// system call per file; an errno that may pass (ENOMEM) does not.
func TestRefusedStoresTurnPushesOff(t *testing.T) {
	root := makeTree(t)
	for _, tc := range []struct {
		errno   syscall.Errno
		wantOff bool
	}{
		{syscall.EINVAL, true},
		{syscall.ENOSYS, true},
		{syscall.ENOMEM, false},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			src := heldSource{dirSource: newDirSource(root, treeMaxCacheable)}
			fsys, err := newFilesystem(src, Options{Mount: "/nonexistent/mnt", Target: root, MaxCacheable: treeMaxCacheable})
			require.NoError(t, err)
			var st syscall.Stat_t
			require.NoError(t, syscall.Lstat(filepath.Join(root, "a/b/c/deep.txt"), &st))
			attr := op.AttrFromStat(&st)
			data := fsys.heldBytes("/a/b/c/deep.txt", attr)
			require.NotNil(t, data, "a held small file is pushed")

			s := &refusingStorer{errno: tc.errno}
			assert.False(t, fsys.push(s, store{nodeID: 7, data: data}, pushTries))
			assert.Equal(t, 1, s.calls, "a refused store is not tried again")
			assert.Equal(t, tc.wantOff, fsys.pushes.off.Load())
			assert.Equal(t, tc.wantOff, fsys.heldBytes("/a/b/c/deep.txt", attr) == nil, "pushes after the refusal")
			assert.Equal(t, uint64(1), fsys.pushes.count.failed.Load())
		})
	}
}

// TestListingAfterReplacePushesTheNewVersion: a file replaced on the
// host while the kernel holds its old inode (open, its pages cached) is
// listed: the listing's entry makes a new inode, and the push fills that
// one with the new version's bytes, exactly as long as the new stat;
// the open file keeps the old bytes and the old length. A replacement of
// the same length is the case where a wrong inode would go unnoticed.
func TestListingAfterReplacePushesTheNewVersion(t *testing.T) {
	for _, tc := range []struct {
		name           string
		oldLen, newLen int
	}{
		{"same length", 4000, 4000},
		{"longer", 100, 9000},
		{"shorter", 9000, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(root, "d"), 0o755))
			host := filepath.Join(root, "d", "f")
			oldBytes := bytes.Repeat([]byte("old-"), tc.oldLen/4)
			newBytes := bytes.Repeat([]byte("NEW!"), tc.newLen/4)
			require.NoError(t, os.WriteFile(host, oldBytes, 0o644))
			var trace syncBuffer
			m := mountSource(t, heldSource{dirSource: newDirSource(root, treeMaxCacheable)}, root, treeMaxCacheable, func(o *Options) {
				o.Debug = true
				o.Logger = slog.New(slog.NewTextHandler(&trace, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			view := filepath.Join(m.Mountpoint(), "d", "f")

			// The kernel holds the old version: looked up, open, read.
			old, err := os.Open(view)
			require.NoError(t, err)
			defer old.Close()
			got, err := io.ReadAll(old)
			require.NoError(t, err)
			require.Equal(t, oldBytes, got)

			tmp := host + ".tmp"
			require.NoError(t, os.WriteFile(tmp, newBytes, 0o644))
			require.NoError(t, os.Rename(tmp, host))

			_, err = os.ReadDir(filepath.Join(m.Mountpoint(), "d"))
			require.NoError(t, err)
			waitPushed(t, m, 1)

			before := requestCounts(trace.String())
			fresh, err := os.ReadFile(view)
			require.NoError(t, err)
			assert.Equal(t, newBytes, fresh, "a new open reads the new version")
			info, err := os.Stat(view)
			require.NoError(t, err)
			assert.Equal(t, int64(len(newBytes)), info.Size())
			assert.Equal(t, before["READ"], requestCounts(trace.String())["READ"], "the new version's bytes were pushed")

			got, err = io.ReadAll(io.NewSectionReader(old, 0, 1<<20))
			require.NoError(t, err)
			assert.Equal(t, oldBytes, got, "the open file keeps the old version's bytes")
			oldInfo, err := old.Stat()
			require.NoError(t, err)
			assert.Equal(t, int64(len(oldBytes)), oldInfo.Size(), "and its length")
			assert.Zero(t, m.PushStats().Failed)
		})
	}
}

// TestNoPushAfterUnmount: Unmount right after a listing of many held
// small files waits for the pushes in flight (or stops them): none is
// counted, made or failed, once Unmount has returned. The files are
// near max_cacheable so that the stores lag behind the listing (on this
// 2-core host, without the wait, tens of stores failed after Unmount).
func TestNoPushAfterUnmount(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "many")
	require.NoError(t, os.Mkdir(dir, 0o755))
	for i := range 1500 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.py", i)), bytes.Repeat([]byte{'x'}, treeMaxCacheable-i), 0o644))
	}
	m := mountSource(t, heldSource{dirSource: newDirSource(root, treeMaxCacheable)}, root, treeMaxCacheable, nil)
	f, err := os.Open(filepath.Join(m.Mountpoint(), "many"))
	require.NoError(t, err)
	_, err = f.ReadDir(-1)
	require.NoError(t, f.Close())
	require.NoError(t, err)
	require.NoError(t, m.Unmount())
	at := m.PushStats()
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, at, m.PushStats(), "pushes after Unmount returned")
	assert.Zero(t, at.Failed, "%+v", at)
}
