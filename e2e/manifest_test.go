package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// testMaxCacheable is --max-cacheable-bytes for the fixture trees: small,
// so that a few files exceed it and take the per-node direct path.
const testMaxCacheable = 64 << 10

// entry is what a walk records of one path: everything the view must
// show exactly as the source has it.
type entry struct {
	Type     string   `json:"type"` // dir, file, symlink, other
	Mode     uint32   `json:"mode"` // st_mode: type and permission bits
	Size     int64    `json:"size"`
	MtimeNs  int64    `json:"mtime_ns"`
	Uid      uint32   `json:"uid"`
	Gid      uint32   `json:"gid"`
	SHA256   string   `json:"sha256,omitempty"`   // regular files
	Link     string   `json:"link,omitempty"`     // symlinks
	Children []string `json:"children,omitempty"` // directories: "name type" from readdir, sorted
}

// manifest maps view paths ("/", "/dir/file") to entries.
type manifest map[string]entry

func typeName(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return "dir"
	case syscall.S_IFREG:
		return "file"
	case syscall.S_IFLNK:
		return "symlink"
	}
	return "other"
}

func direntTypeName(t fs.FileMode) string {
	switch {
	case t.IsDir():
		return "dir"
	case t.IsRegular():
		return "file"
	case t&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "other"
}

// buildManifest walks root without following symlinks, reading every
// regular file whole.
func buildManifest(root string) (manifest, error) {
	man := manifest{}
	var walk func(view string) error
	walk = func(view string) error {
		host := filepath.Join(root, view)
		var st syscall.Stat_t
		if err := syscall.Lstat(host, &st); err != nil {
			return fmt.Errorf("lstat %s: %w", host, err)
		}
		e := entry{
			Type: typeName(st.Mode), Mode: st.Mode, Size: st.Size,
			MtimeNs: st.Mtim.Nano(), Uid: st.Uid, Gid: st.Gid,
		}
		switch e.Type {
		case "file":
			sum, err := fileSHA256(host)
			if err != nil {
				return err
			}
			e.SHA256 = sum
		case "symlink":
			target, err := os.Readlink(host)
			if err != nil {
				return fmt.Errorf("readlink %s: %w", host, err)
			}
			e.Link = target
		case "dir":
			des, err := os.ReadDir(host)
			if err != nil {
				return fmt.Errorf("readdir %s: %w", host, err)
			}
			e.Children = []string{}
			for _, de := range des {
				e.Children = append(e.Children, de.Name()+" "+direntTypeName(de.Type()))
			}
			sort.Strings(e.Children)
			man[view] = e
			for _, de := range des {
				if err := walk(path.Join(view, de.Name())); err != nil {
					return err
				}
			}
			return nil
		}
		man[view] = e
		return nil
	}
	if err := walk("/"); err != nil {
		return nil, err
	}
	return man, nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// digest is one checksum of a whole manifest.
func (m manifest) digest(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(m) // map keys are sorted
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// counts tallies what a cold walk of the manifest asks a tree root for.
type walkCounts struct {
	paths, dirs, symlinks, cacheableReads int64
}

func (m manifest) counts(maxCacheable int64) walkCounts {
	var c walkCounts
	for _, e := range m {
		c.paths++
		switch e.Type {
		case "dir":
			c.dirs++
		case "symlink":
			c.symlinks++
		case "file":
			// Each file up to maxCacheable (= the default
			// dir_files_max_bytes here) is read by the root into its
			// directory's dirplus, an empty one too (without that the
			// kernel never sends READ for one); larger files bypass the
			// tree.
			if e.Size <= maxCacheable {
				c.cacheableReads++
			}
		}
	}
	return c
}

// diffManifests lists every difference between want and got, for one
// failure message that shows them all.
func diffManifests(want, got manifest) []string {
	var diffs []string
	for _, p := range sortedKeys(want) {
		g, ok := got[p]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing from the view", p))
			continue
		}
		w := want[p]
		if w.Type != g.Type || w.Mode != g.Mode {
			diffs = append(diffs, fmt.Sprintf("%s: type/mode %s %#o, view has %s %#o", p, w.Type, w.Mode, g.Type, g.Mode))
		}
		if w.Size != g.Size {
			diffs = append(diffs, fmt.Sprintf("%s: size %d, view has %d", p, w.Size, g.Size))
		}
		if w.MtimeNs != g.MtimeNs || w.Uid != g.Uid || w.Gid != g.Gid {
			diffs = append(diffs, fmt.Sprintf("%s: mtime/uid/gid %d/%d/%d, view has %d/%d/%d",
				p, w.MtimeNs, w.Uid, w.Gid, g.MtimeNs, g.Uid, g.Gid))
		}
		if w.SHA256 != g.SHA256 {
			diffs = append(diffs, fmt.Sprintf("%s: sha256 %s, view has %s", p, w.SHA256, g.SHA256))
		}
		if w.Link != g.Link {
			diffs = append(diffs, fmt.Sprintf("%s: link target %q, view has %q", p, w.Link, g.Link))
		}
		if !slices.Equal(w.Children, g.Children) {
			diffs = append(diffs, fmt.Sprintf("%s: listing %q, view has %q", p, w.Children, g.Children))
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: in the view but not in the source", p))
		}
	}
	return diffs
}

func sortedKeys(m manifest) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// requireSameTree fails with every difference between the source and a
// view of it.
func requireSameTree(t *testing.T, what string, want, got manifest) {
	t.Helper()
	if diffs := diffManifests(want, got); len(diffs) > 0 {
		t.Fatalf("%s differs from the source in %d ways:\n  %s", what, len(diffs), strings.Join(diffs, "\n  "))
	}
}

// makeFixture builds the target tree the tree tests serve and returns its
// directory and manifest. Contents are pseudo-random but fixed.
func makeFixture(t *testing.T) (string, manifest) {
	t.Helper()
	root := t.TempDir()
	rng := rand.New(rand.NewChaCha8([32]byte{'c', 'o', 'p', 'p', 'e', 'r'}))
	file := func(rel string, size int, perm os.FileMode) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		require.NoError(t, os.WriteFile(p, data, perm))
		require.NoError(t, os.Chmod(p, perm)) // not subject to umask
	}
	link := func(rel, target string) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.Symlink(target, p))
	}

	file("README.txt", 1234, 0o644)
	file("empty.txt", 0, 0o644)
	for i, size := range []int{1, 100, 4095, 4096, 4097, 30000, testMaxCacheable} {
		file(fmt.Sprintf("dir1/sub/deeper/file-%d.dat", i), size, 0o644)
	}
	file("dir1/a.txt", 17, 0o644)
	file("dir1/sub/b.txt", 5000, 0o444)
	file("dir2/x/y/z/leaf.txt", 42, 0o644)
	file("big-boundary.bin", testMaxCacheable+1, 0o644) // one byte over: not through the tree
	file("dir2/big.bin", 1<<20+7, 0o644)
	file("secret.txt", 321, 0o600)
	file("bin/tool.sh", 77, 0o755)
	file("ünïcødé/файл 名前.txt", 999, 0o644)
	file("with space/a file.txt", 2048, 0o640)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "emptydir"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "dir2/closed"), 0o700))
	link("links/relative", "../dir1/a.txt")
	link("links/absolute", filepath.Join(root, "dir1/sub/b.txt"))
	link("links/dirlink", "../dir1/sub")
	link("links/loop-a", "loop-b")
	link("links/loop-b", "loop-a")
	link("links/dangling", "does/not/exist")

	man, err := buildManifest(root)
	require.NoError(t, err)
	return root, man
}
