package fuse

import (
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkReadMissMount measures a READ that reaches the daemon and is
// answered from memory: the kernel's pages of a 5,000-byte file are
// dropped before every 4 KiB pread, so each one is a FUSE round trip
// (kernel, go-fuse, the Source's cached bytes, the reply's writev): the
// per-request cost of a cold read on a node whose cache holds the file.
// cpu-us/op is the process's CPU per read: the reader's and the daemon's
// side (both in this process), kernel time included.
func BenchmarkReadMissMount(b *testing.B) {
	m, _ := mountView(b, makeTree(b), treeMaxCacheable, nil)
	fd, err := unix.Open(filepath.Join(m.Mountpoint(), "a/b/c/deep.txt"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
			b.Fatal(err)
		}
		if n, err := unix.Pread(fd, buf, 0); err != nil || n != len(buf) {
			b.Fatalf("pread: %d, %v", n, err)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
}

// processCPU is this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
