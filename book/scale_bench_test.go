package book_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hpc-copper/copper/book"
	"github.com/hpc-copper/copper/tree"
)

// auroraBook is a book of n ranks with Aurora-style host names
// (x4000c0s0b0n0: 13 bytes) and endpoints (10.a.b.c:port).
func auroraBook(n int) []tree.Entry {
	entries := make([]tree.Entry, n)
	for r := range entries {
		entries[r] = tree.Entry{
			Host:     fmt.Sprintf("x%dc%ds%db0n%d", 4000+r/512, (r/64)%8, (r/8)%8, r%8),
			Endpoint: fmt.Sprintf("10.%d.%d.%d:%d", 100+r>>16, (r>>8)&255, r&255, 40000+r%20000),
		}
	}
	return entries
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkBookAtScale measures what one copper-node spends on the
// address book of a large job, the way copper-node gets it: book.Read of
// the file the launcher wrote, tree.ValidateBook, and tree.Locate of the
// deepest rank (the longest ancestor list). held-B/rank is the heap the
// book keeps (the entries and their strings) divided by the job size;
// alloc-B/rank is everything allocated on the way (scanner, validation's
// endpoint set); position-B is the Position Locate returns, held for the
// node's life.
func BenchmarkBookAtScale(b *testing.B) {
	for _, n := range []int{2000, 8300, 20000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "book")
			if err := book.Write(path, auroraBook(n)); err != nil {
				b.Fatal(err)
			}
			var held, alloc, posBytes uint64
			var depth int
			for b.Loop() {
				var ms0, ms1 runtime.MemStats
				base := heapInUse()
				runtime.ReadMemStats(&ms0)
				entries, err := book.Read(path)
				if err != nil {
					b.Fatal(err)
				}
				if err := tree.ValidateBook(entries); err != nil {
					b.Fatal(err)
				}
				runtime.ReadMemStats(&ms1)
				afterBook := heapInUse()
				pos, err := tree.Locate(n, 1, 0, n-1)
				if err != nil {
					b.Fatal(err)
				}
				afterPos := heapInUse()
				runtime.KeepAlive(entries)
				runtime.KeepAlive(pos)
				held += afterBook - base
				posBytes += afterPos - afterBook
				alloc += ms1.TotalAlloc - ms0.TotalAlloc
				depth = pos.Depth
			}
			nb := float64(b.N)
			b.ReportMetric(float64(held)/nb/float64(n), "held-B/rank")
			b.ReportMetric(float64(held)/nb/1024, "held-KiB")
			b.ReportMetric(float64(alloc)/nb/float64(n), "alloc-B/rank")
			b.ReportMetric(float64(posBytes)/nb, "position-B")
			b.ReportMetric(float64(depth), "depth")
		})
	}
}
