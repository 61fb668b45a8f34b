package pfsbench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseHostBusy(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
	}{
		{"busy is all but idle and iowait", "cpu  100 20 30 5000 40 1 2 3 0 0\ncpu0 1 2 3 4 5 6 7 8\n", 1.56},
		{"older kernels' eight fields", "cpu 100 0 0 100 100 0 0 0\n", 1},
		{"not the cpu line", "intr 1 2 3 4 5 6 7 8 9\n", 0},
		{"too short", "cpu 1 2 3\n", 0},
		{"garbage", "cpu a b c d e f g h\n", 0},
		{"negative", "cpu -1 0 0 0 0 0 0 0\n", 0},
		{"empty", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, parseHostBusy([]byte(tc.stat)), 1e-12)
		})
	}
}

// A window measures this host's busy time (never negative) and keeps the
// run's own CPU as given; a zero clock measures nothing.
func TestHostClockWindow(t *testing.T) {
	h := startHostClock()
	time.Sleep(20 * time.Millisecond)
	w := h.stop(5 * time.Millisecond)
	if assert.NotNil(t, w) {
		assert.GreaterOrEqual(t, w.WallS, 0.02)
		assert.GreaterOrEqual(t, w.BusyS, 0.0)
		assert.InDelta(t, 0.005, w.OwnS, 1e-12)
	}
	assert.Nil(t, hostClock{}.stop(time.Second))
}
