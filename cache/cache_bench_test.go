package cache

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hpc-copper/copper/op"
)

// BenchmarkLookupHit measures metadata hits from parallel goroutines, the
// path an import storm takes; run with -cpu 1,2,... to see lock contention.
func BenchmarkLookupHit(b *testing.B) {
	const paths = 4096
	c := New(Config{BudgetBytes: 1 << 30, NegativeTTL: time.Second})
	names := make([]string, paths)
	for i := range names {
		names[i] = fmt.Sprintf("/usr/lib/python3/dist-packages/pkg%04d/__init__.py", i)
		c.Store(op.Getattr, names[i], op.Result{Attr: fileAttr(int64(i))})
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1) * 7919 // each goroutine starts elsewhere
		for pb.Next() {
			i++
			if _, ok := c.Lookup(op.Getattr, names[i%paths]); !ok {
				b.Fatal("miss on a stored path")
			}
		}
	})
}

// BenchmarkStoreWithEviction stores 64 KiB files into a budget that holds
// 16 of them, so every store evicts one.
func BenchmarkStoreWithEviction(b *testing.B) {
	const size = 64 << 10
	r := readResult(size)
	names := make([]string, 1024)
	for i := range names {
		names[i] = fmt.Sprintf("/lib/libfile%04d.so", i)
	}
	c := New(Config{BudgetBytes: 16 * (size + 512), NegativeTTL: time.Second})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Store(op.Read, names[i%len(names)], r)
	}
	b.StopTimer()
	if c.Stats().Data.Evictions == 0 {
		b.Fatal("no eviction happened")
	}
}
