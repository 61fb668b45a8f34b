package cache

import "testing"

func TestAllocSize(t *testing.T) {
	for _, tc := range []struct{ n, want int64 }{
		{-1, 0}, {0, 0}, {1, 8}, {8, 8}, {9, 16}, {33, 48}, {1025, 1152}, {2305, 2688},
		{32768, 32768}, {32769, 40960}, {64<<10 + dataPrefixBytes, 72 << 10}, {1 << 20, 1 << 20},
	} {
		if got := allocSize(tc.n); got != tc.want {
			t.Errorf("allocSize(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// Capacity, not length, is charged: a clipped view of a larger buffer
// keeps all of it alive.
func TestDataBytesChargesCapacity(t *testing.T) {
	buf := make([]byte, 10, 100<<10)
	if short, whole := dataBytes("/f", buf[:10:10]), dataBytes("/f", buf); whole-short < 90<<10 {
		t.Errorf("dataBytes: len 10 cap 10 = %d, len 10 cap 100 KiB = %d: capacity not charged", short, whole)
	}
}
