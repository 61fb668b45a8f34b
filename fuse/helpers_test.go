package fuse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/op"
)

// dirSource answers from a real directory, as a root node's backend
// does: lstat, readdir, readlink and whole-file read of root+path. It
// records every request so tests can see what reached it.
type dirSource struct {
	root    string
	maxRead int64

	mu   sync.Mutex
	seen map[op.Op]map[string]int
}

func newDirSource(root string, maxRead int64) *dirSource {
	return &dirSource{root: root, maxRead: maxRead, seen: map[op.Op]map[string]int{}}
}

func (s *dirSource) Get(_ context.Context, o op.Op, p string) op.Result {
	s.mu.Lock()
	if s.seen[o] == nil {
		s.seen[o] = map[string]int{}
	}
	s.seen[o][p]++
	s.mu.Unlock()
	if errno := op.CheckPath(p); errno != 0 {
		return op.Fail(errno)
	}
	host := filepath.Join(s.root, p)
	switch o {
	case op.Getattr:
		var st syscall.Stat_t
		if err := syscall.Lstat(host, &st); err != nil {
			return op.Fail(errnoOf(err))
		}
		return op.Result{Attr: op.AttrFromStat(&st)}
	case op.Readdir:
		des, err := os.ReadDir(host)
		if err != nil {
			return op.Fail(errnoOf(err))
		}
		var r op.Result
		for _, de := range des {
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(host, de.Name()), &st); err != nil {
				continue // vanished since the listing
			}
			r.Entries = append(r.Entries, op.DirEntry{Name: de.Name(), Mode: st.Mode & syscall.S_IFMT, Ino: st.Ino})
		}
		return r
	case op.Readlink:
		target, err := os.Readlink(host)
		if err != nil {
			return op.Fail(errnoOf(err))
		}
		return op.Result{Target: target}
	case op.Read:
		var st syscall.Stat_t
		if err := syscall.Lstat(host, &st); err != nil {
			return op.Fail(errnoOf(err))
		}
		if st.Size > s.maxRead {
			return op.Fail(syscall.EFBIG)
		}
		data, err := os.ReadFile(host)
		if err != nil {
			return op.Fail(errnoOf(err))
		}
		return op.Result{Attr: op.AttrFromStat(&st), Data: data}
	}
	return op.Fail(syscall.ENOSYS)
}

// count returns how often o was asked for path p.
func (s *dirSource) count(o op.Op, p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[o][p]
}

// mountView mounts target through a dirSource at a fresh directory and
// unmounts it in Cleanup, lazily if the clean unmount fails.
func mountView(t testing.TB, target string, maxCacheable int64, edit func(*Options)) (*Mounted, *dirSource) {
	t.Helper()
	src := newDirSource(target, maxCacheable)
	return mountSource(t, src, target, maxCacheable, edit), src
}

// mountSource is mountView with the Source given.
func mountSource(t testing.TB, src Source, target string, maxCacheable int64, edit func(*Options)) *Mounted {
	t.Helper()
	testkit.RequireFuse(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	opts := Options{
		Mount:           mnt,
		Target:          target,
		MaxCacheable:    maxCacheable,
		EntryTimeout:    time.Hour,
		AttrTimeout:     time.Hour,
		NegativeTimeout: time.Hour,
	}
	if edit != nil {
		edit(&opts)
	}
	m, err := Mount(src, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	return m
}

// Test tree layout; maxCacheable of treeMaxCacheable makes big.bin large.
const treeMaxCacheable = 64 << 10

// makeTree builds the tree every mount test walks and returns its root.
func makeTree(t testing.TB) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{"a/small.txt", []byte("hello copper\n"), 0o644},
		{"a/b/c/deep.txt", random(5000), 0o644},
		{"a/empty.txt", nil, 0o644},
		{"exactly.bin", random(treeMaxCacheable), 0o644},
		{"big.bin", random(3*treeMaxCacheable + 4321), 0o644},
		{"secret.txt", []byte("only the owner\n"), 0o600},
		{"nobody.txt", []byte("mode 0000\n"), 0o000},
		{"run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
		{"dïr with space/fïlé ünïcode.txt", []byte("ünïcode\n"), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, f.data, f.mode))
		require.NoError(t, os.Chmod(p, f.mode)) // umask-proof
	}
	// A directory that needs several READDIR replies.
	for i := range 300 {
		p := filepath.Join(root, "many", "entry-with-a-longish-name-"+strings.Repeat("x", i%7)+"-"+strconv.Itoa(i))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(strconv.Itoa(i)), 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(root, "emptydir"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(root, "links"), 0o755))
	links := map[string]string{
		"links/rel":      "../a/small.txt",
		"links/abs":      filepath.Join(root, "a/small.txt"),
		"links/dirlink":  "../a",
		"links/dangling": "nowhere/at/all",
		"links/loop1":    "loop2",
		"links/loop2":    "loop1",
	}
	for name, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(root, name)))
	}
	require.NoError(t, os.Link(filepath.Join(root, "a/small.txt"), filepath.Join(root, "a/hardlink.txt")))
	return root
}

// fileFacts is what a walk compares between the source and the view.
type fileFacts struct {
	Mode    os.FileMode
	Size    int64
	Uid     uint32
	Gid     uint32
	Nlink   uint64
	MtimeNs int64
	Target  string   // symlinks
	SHA256  string   // regular files
	Names   []string // directories, sorted
}

// snapshot walks root without following symlinks.
func snapshot(t testing.TB, root string) map[string]fileFacts {
	t.Helper()
	facts := map[string]fileFacts{}
	var walk func(rel string)
	walk = func(rel string) {
		p := filepath.Join(root, rel)
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(p, &st), "lstat %s", p)
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		f := fileFacts{
			Mode: fi.Mode(), Size: st.Size, Uid: st.Uid, Gid: st.Gid,
			Nlink: uint64(st.Nlink), MtimeNs: st.Mtim.Nano(),
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			f.Target, err = os.Readlink(p)
			require.NoError(t, err)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			require.NoError(t, err, "read %s", p)
			sum := sha256.Sum256(data)
			f.SHA256 = hex.EncodeToString(sum[:])
		case fi.IsDir():
			des, err := os.ReadDir(p)
			require.NoError(t, err)
			for _, de := range des {
				f.Names = append(f.Names, de.Name())
			}
			sort.Strings(f.Names)
			for _, name := range f.Names {
				walk(filepath.Join(rel, name))
			}
		}
		facts[rel] = f
	}
	walk(".")
	return facts
}

// rawDirents lists a directory with getdents64, keeping "." and ".."
// and the d_ino of every entry, which os.ReadDir hides.
func rawDirents(t testing.TB, dir string) map[string]uint64 {
	t.Helper()
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer syscall.Close(fd)
	out := map[string]uint64{}
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Getdents(fd, buf)
		require.NoError(t, err)
		if n == 0 {
			return out
		}
		for b := buf[:n]; len(b) > 0; {
			// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
			ino := binary.LittleEndian.Uint64(b[0:8])
			reclen := int(binary.LittleEndian.Uint16(b[16:18]))
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			out[string(name)] = ino
			b = b[reclen:]
		}
	}
}
