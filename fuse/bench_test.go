package fuse

import (
	"path/filepath"
	"syscall"
	"testing"
)

// Warm stats are answered by the kernel's entry and attribute caches;
// these compare them with a native stat of the same file.

func benchmarkLstat(b *testing.B, path string, wantErrno syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != wantErrno && !(err == nil && wantErrno == 0) {
		b.Fatalf("warm-up lstat %s: %v, want %v", path, err, wantErrno)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = syscall.Lstat(path, &st)
	}
}

func BenchmarkStatWarmMount(b *testing.B) {
	root := makeTree(b)
	m, _ := mountView(b, root, treeMaxCacheable, nil)
	benchmarkLstat(b, filepath.Join(m.Mountpoint(), "a/b/c/deep.txt"), 0)
}

func BenchmarkStatNative(b *testing.B) {
	benchmarkLstat(b, filepath.Join(makeTree(b), "a/b/c/deep.txt"), 0)
}

func BenchmarkStatMissingWarmMount(b *testing.B) {
	root := makeTree(b)
	m, _ := mountView(b, root, treeMaxCacheable, nil)
	benchmarkLstat(b, filepath.Join(m.Mountpoint(), "a/b/c/missing.py"), syscall.ENOENT)
}

func BenchmarkStatMissingNative(b *testing.B) {
	benchmarkLstat(b, filepath.Join(makeTree(b), "a/b/c/missing.py"), syscall.ENOENT)
}

// BenchmarkStatColdMount measures a stat that reaches the daemon every
// time (no kernel caching): the cost of one FUSE round trip plus the
// Source's answer.
func BenchmarkStatColdMount(b *testing.B) {
	root := makeTree(b)
	m, _ := mountView(b, root, treeMaxCacheable, func(o *Options) {
		o.EntryTimeout, o.AttrTimeout, o.NegativeTimeout = 0, 0, 0
	})
	benchmarkLstat(b, filepath.Join(m.Mountpoint(), "a/b/c/deep.txt"), 0)
}
