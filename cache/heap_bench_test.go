package cache

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-copper/copper/op"
)

// BenchmarkHeapPerAccountedByte fills a cache past its budget with one
// kind of entry and reports the live heap it holds per byte it accounts
// (heap-B/accounted-B): above 1 the cache underestimates and a node's RSS
// outgrows cache_memory_bytes. Every entry has its own path string and
// data, allocated as the decoder or the backend would.
func BenchmarkHeapPerAccountedByte(b *testing.B) {
	const budget = 8 << 20
	for _, tc := range []struct {
		name  string
		op    op.Op
		store func(i int) op.Result
	}{
		{"getattr", op.Getattr, func(i int) op.Result { return op.Result{Attr: fileAttr(int64(i))} }},
		{"enoent", op.Getattr, func(int) op.Result { return op.Fail(syscall.ENOENT) }},
		{"readlink", op.Readlink, func(i int) op.Result { return op.Result{Target: fmt.Sprintf("../lib/libtarget%06d.so.1", i)} }},
		{"readdir-8", op.Readdir, func(i int) op.Result {
			entries := make([]op.DirEntry, 8)
			for j := range entries {
				entries[j] = op.DirEntry{Name: fmt.Sprintf("module_%02d_%06d.py", j, i), Mode: 0o100644}
			}
			return op.Result{Entries: entries}
		}},
		{"read-100B", op.Read, dataOf(100)},
		{"read-3KiB", op.Read, dataOf(3 << 10)},
		{"read-33KiB", op.Read, dataOf(33 << 10)},
		{"read-64KiB", op.Read, dataOf(64 << 10)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var ratio float64
			for b.Loop() {
				ratio = heapPerAccounted(b, budget, tc.op, tc.store)
			}
			b.ReportMetric(ratio, "heap-B/accounted-B")
		})
	}
}

// dataOf returns file contents of n bytes with the allocation the network
// decoder makes: the data is the tail of a payload that starts with the
// errno and the stat.
func dataOf(n int) func(int) op.Result {
	return func(i int) op.Result {
		payload := make([]byte, 4+112+4+n)
		return op.Result{Attr: fileAttr(int64(n)), Data: payload[4+112+4:]}
	}
}

func heapPerAccounted(b *testing.B, budget int64, o op.Op, result func(i int) op.Result) float64 {
	b.Helper()
	before := liveHeap()
	c := New(Config{BudgetBytes: budget, NegativeTTL: time.Hour})
	// Until the budget has turned over, so eviction has run and its
	// garbage is freed.
	for i := 0; ; i++ {
		if i%1024 == 0 {
			if t := own(c.Stats(), o, i); t.Evictions > uint64(t.Entries) {
				break
			}
		}
		c.Store(o, fmt.Sprintf("/usr/lib/python3/dist-packages/pkg%03d/module_%07d.py", i%1000, i), result(i))
	}
	held := liveHeap() - before
	accounted := c.Stats().Bytes
	runtime.KeepAlive(c)
	if accounted == 0 {
		b.Fatal("nothing accounted")
	}
	return float64(held) / float64(accounted)
}

// own is the table the benchmark's entries go to: once it has evicted more
// than it holds, the cache has turned over.
func own(s Stats, o op.Op, stored int) TableStat {
	switch {
	case o == op.Read:
		return s.Data
	case o == op.Readdir:
		return s.Tree
	case o == op.Readlink:
		return s.Links
	case s.Negative.Entries > 0:
		return s.Negative
	case stored > 0 && s.Metadata.Entries == 0:
		return s.Negative // ENOENT with a TTL of zero: nothing kept
	default:
		return s.Metadata
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC() // a second cycle frees what the first one's finalizers and pools released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
