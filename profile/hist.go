package profile

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram has log buckets with 8 linear sub-buckets per
// power of two: a value is reported as its bucket's upper bound, at most
// 12.5% above the true value. Values below 8 ns have exact buckets.
const (
	subBits    = 3
	subBuckets = 1 << subBits
	numBuckets = (64 - subBits + 1) * subBuckets
)

// bucketOf returns the bucket of a value in nanoseconds.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - 1 // >= subBits
	m := (v >> (e - subBits)) & (subBuckets - 1)
	return (e-subBits+1)*subBuckets + int(m)
}

// bucketUpper is the largest value in bucket i.
func bucketUpper(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	e := i/subBuckets + subBits - 1
	m := uint64(i % subBuckets)
	width := uint64(1) << (e - subBits)
	return (subBuckets+m)*width + width - 1
}

// histogram records durations with atomics only: safe for concurrent
// use, no lock on the request path.
type histogram struct {
	buckets [numBuckets]atomic.Int64
	sum     atomic.Int64 // nanoseconds
	max     atomic.Int64 // nanoseconds
}

func (h *histogram) record(d time.Duration) {
	ns := max(int64(d), 0)
	h.buckets[bucketOf(uint64(ns))].Add(1)
	h.sum.Add(ns)
	for {
		cur := h.max.Load()
		if ns <= cur || h.max.CompareAndSwap(cur, ns) {
			return
		}
	}
}

func (h *histogram) reset() {
	for i := range h.buckets {
		h.buckets[i].Store(0)
	}
	h.sum.Store(0)
	h.max.Store(0)
}

// latency is a histogram read at one moment.
type latency struct {
	Count              int64
	Total              time.Duration
	P50, P90, P99, Max time.Duration
}

// read summarises the histogram. Quantiles are bucket upper bounds,
// capped at the largest value seen.
func (h *histogram) read() latency {
	var counts [numBuckets]int64
	var l latency
	for i := range counts {
		counts[i] = h.buckets[i].Load()
		l.Count += counts[i]
	}
	l.Total = time.Duration(h.sum.Load())
	l.Max = time.Duration(h.max.Load())
	if l.Count == 0 {
		return l
	}
	quantile := func(q float64) time.Duration {
		rank := int64(q*float64(l.Count) + 0.999999) // ceil, and at least 1
		rank = min(max(rank, 1), l.Count)
		var cum int64
		for i, c := range counts {
			cum += c
			if cum >= rank {
				return min(time.Duration(bucketUpper(i)), l.Max)
			}
		}
		return l.Max
	}
	l.P50, l.P90, l.P99 = quantile(0.50), quantile(0.90), quantile(0.99)
	return l
}
