package fuse

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
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

// Warm large-file reads and maps: the kernel's page cache of the FUSE
// inode against the local file system's of the same file (pfsbench's
// large section measures the same at 256 MiB; these reproduce it with
// the Go harness). b.SetBytes makes the MB/s column the throughput.

const benchLargeBytes = 64 << 20

// largeBenchFile writes a benchLargeBytes file and returns its directory.
func largeBenchFile(b *testing.B) string {
	dir := b.TempDir()
	data := make([]byte, benchLargeBytes)
	for i := range data {
		data[i] = byte(i ^ i>>12)
	}
	f, err := os.Create(filepath.Join(dir, "large.bin"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// Synced, so that writeback does not run under the measurement.
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return dir
}

func benchmarkSeqRead(b *testing.B, path string) {
	buf := make([]byte, 1<<20)
	read := func() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if n, err := io.CopyBuffer(io.Discard, f, buf); err != nil || n != benchLargeBytes {
			b.Fatalf("read %s: %d bytes, %v", path, n, err)
		}
	}
	read() // warm-up: pages in
	b.SetBytes(benchLargeBytes)
	for b.Loop() {
		read()
	}
}

func benchmarkMmapTouch(b *testing.B, path string) {
	var sink byte
	touch := func() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		m, err := unix.Mmap(int(f.Fd()), 0, benchLargeBytes, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(m); i += 4096 {
			sink ^= m[i]
		}
		if err := unix.Munmap(m); err != nil {
			b.Fatal(err)
		}
	}
	touch() // warm-up: pages in
	b.SetBytes(benchLargeBytes)
	for b.Loop() {
		touch()
	}
	benchSink = sink
}

// benchSink keeps the touching loads from being optimised away.
var benchSink byte

func BenchmarkLargeSeqReadWarmMount(b *testing.B) {
	m, _ := mountView(b, largeBenchFile(b), 1<<20, func(o *Options) { o.MaxRead, o.MaxReadahead = 1<<20, 1<<20 })
	benchmarkSeqRead(b, filepath.Join(m.Mountpoint(), "large.bin"))
}

func BenchmarkLargeSeqReadNative(b *testing.B) {
	benchmarkSeqRead(b, filepath.Join(largeBenchFile(b), "large.bin"))
}

func BenchmarkLargeMmapTouchWarmMount(b *testing.B) {
	m, _ := mountView(b, largeBenchFile(b), 1<<20, func(o *Options) { o.MaxRead, o.MaxReadahead = 1<<20, 1<<20 })
	benchmarkMmapTouch(b, filepath.Join(m.Mountpoint(), "large.bin"))
}

func BenchmarkLargeMmapTouchNative(b *testing.B) {
	benchmarkMmapTouch(b, filepath.Join(largeBenchFile(b), "large.bin"))
}
