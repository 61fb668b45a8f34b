package profile

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBucketBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := []uint64{0, 1, 7, 8, 9, 15, 16, 17, 1000, 1 << 20, math.MaxInt64, math.MaxUint64}
	for range 10000 {
		values = append(values, rng.Uint64()>>rng.UintN(64))
	}
	for _, v := range values {
		i := bucketOf(v)
		require.Less(t, i, numBuckets, "value %d", v)
		hi := bucketUpper(i)
		require.GreaterOrEqual(t, hi, v, "bucket %d of %d", i, v)
		if i > 0 {
			require.Less(t, bucketUpper(i-1), v, "value %d belongs in an earlier bucket than %d", v, i)
		}
		if v >= subBuckets {
			assert.LessOrEqual(t, float64(hi-v)/float64(v), 0.125, "value %d reported as %d", v, hi)
		} else {
			assert.Equal(t, v, hi, "small values are exact")
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	assert.Equal(t, latency{}, h.read(), "empty")

	// 1..1000 µs, once each.
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	l := h.read()
	assert.EqualValues(t, 1000, l.Count)
	assert.Equal(t, 500500*time.Microsecond, l.Total)
	assert.Equal(t, 1000*time.Microsecond, l.Max)
	for _, q := range []struct {
		got  time.Duration
		want time.Duration
	}{{l.P50, 500 * time.Microsecond}, {l.P90, 900 * time.Microsecond}, {l.P99, 990 * time.Microsecond}} {
		assert.GreaterOrEqual(t, q.got, q.want)
		assert.LessOrEqual(t, float64(q.got), 1.125*float64(q.want))
	}

	// Quantiles never exceed the largest value seen.
	h.reset()
	h.record(1001 * time.Nanosecond)
	l = h.read()
	assert.Equal(t, latency{Count: 1, Total: 1001, P50: 1001, P90: 1001, P99: 1001, Max: 1001}, l)

	h.record(-time.Second) // a clock step: counted as zero
	assert.EqualValues(t, 2, h.read().Count)
	assert.EqualValues(t, 1001, h.read().Total)
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h histogram
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(1)
		for pb.Next() {
			h.record(d)
			d = d*7 + 13
		}
	})
}
