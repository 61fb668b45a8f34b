package memstat

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadFollowsTheRuntime: a reading shows the GC settings in force and
// a live allocation, and its classes add up to the runtime's total.
func TestReadFollowsTheRuntime(t *testing.T) {
	old := debug.SetGCPercent(37)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	oldLimit := debug.SetMemoryLimit(3 << 30)
	t.Cleanup(func() { debug.SetMemoryLimit(oldLimit) })

	before, err := Read()
	require.NoError(t, err)
	keep := make([]byte, 32<<20)
	for i := range keep {
		keep[i] = 1 // resident, not just mapped
	}
	after, err := Read()
	require.NoError(t, err)
	runtime.KeepAlive(keep)

	assert.Equal(t, int64(37), after.GOGC)
	assert.Equal(t, int64(3<<30), after.MemoryLimitBytes)
	assert.GreaterOrEqual(t, after.ObjectsBytes-before.ObjectsBytes, int64(32<<20), "the allocation is a heap object")
	assert.GreaterOrEqual(t, after.RSSBytes-before.RSSBytes, int64(24<<20), "and resident")
	assert.GreaterOrEqual(t, after.PeakRSSBytes, after.RSSBytes)
	for _, m := range []Memory{before, after} {
		assert.Equal(t, m.TotalBytes, m.ObjectsBytes+m.UnusedBytes+m.FreeBytes+m.ReleasedBytes+m.StacksBytes+m.RuntimeBytes)
		assert.Positive(t, m.Goroutines)
	}
}

func TestStatusKiB(t *testing.T) {
	status := []byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t   512 kB\nVmBad:\tlots kB\n")
	for _, c := range []struct {
		name    string
		want    int64
		wantErr string
	}{
		{"VmRSS", 512 << 10, ""},
		{"VmHWM", 2 << 20, ""},
		{"VmBad", 0, `VmBad "\tlots kB"`},
		{"VmSwap", 0, "no VmSwap line"},
	} {
		got, err := statusKiB(status, c.name)
		if c.wantErr != "" {
			assert.ErrorContains(t, err, c.wantErr, c.name)
			continue
		}
		require.NoError(t, err, c.name)
		assert.Equal(t, c.want, got, c.name)
	}
}

func TestHeapProfile(t *testing.T) {
	p, err := HeapProfile(true)
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(p))
	require.NoError(t, err)
	body, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Contains(t, string(body), "inuse_space")
}
