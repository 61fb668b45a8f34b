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

// Warm open+read+close of small files: with no-open mounts the kernel
// answers all of it from its caches; with handled opens every open and
// close is a round trip to the daemon. Compare both with native reads of
// the same files.

var benchFiles = []string{"a/small.txt", "a/b/c/deep.txt", "exactly.bin", "run.sh", "a/empty.txt"}

func benchmarkOpenRead(b *testing.B, dir string) {
	buf := make([]byte, 128<<10)
	readAll := func(p string) {
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			b.Fatalf("open %s: %v", p, err)
		}
		for {
			n, err := syscall.Read(fd, buf)
			if err != nil {
				b.Fatalf("read %s: %v", p, err)
			}
			if n == 0 {
				break
			}
		}
		_ = syscall.Close(fd)
	}
	paths := make([]string, len(benchFiles))
	for i, rel := range benchFiles {
		paths[i] = filepath.Join(dir, rel)
		readAll(paths[i]) // warm-up
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range paths {
			readAll(p)
		}
	}
}

func BenchmarkOpenReadWarmMount(b *testing.B) {
	m, _ := mountView(b, makeTree(b), treeMaxCacheable, nil)
	benchmarkOpenRead(b, m.Mountpoint())
}

func BenchmarkOpenReadWarmMountHandledOpens(b *testing.B) {
	m, _ := mountView(b, makeTree(b), treeMaxCacheable, func(o *Options) { o.HandleOpens = true })
	benchmarkOpenRead(b, m.Mountpoint())
}

func BenchmarkOpenReadNative(b *testing.B) {
	benchmarkOpenRead(b, makeTree(b))
}
