package nodecmd

import (
	"math"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name   string
		budget int64
		want   int64
	}{
		{"no cache", 0, 28 * mib},
		{"64 MiB", 64 * mib, 100 * mib},
		{"16 GiB", 16 << 30, 18<<30 + 28*mib},
		{"largest without overflow", (math.MaxInt64 - 28*mib) / 9 * 8, (math.MaxInt64-28*mib)/9*8 + (math.MaxInt64-28*mib)/9 + 28*mib},
		{"above it saturates", (math.MaxInt64-28*mib)/9*8 + 8, math.MaxInt64},
		{"max", math.MaxInt64, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := memoryLimit(tc.budget); got != tc.want {
				t.Errorf("memoryLimit(%d) = %d, want %d", tc.budget, got, tc.want)
			}
		})
	}
}
