package cache

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// TestPeekCountsHitsNotMisses: Peek followed, on a miss, by Lookup counts
// each request once, as one Lookup would; an expired ENOENT entry is left
// for that Lookup to drop and count.
func TestPeekCountsHitsNotMisses(t *testing.T) {
	c, clock := newTestCache(t, 1<<20, testTTL)
	c.Store(op.Getattr, "/f", op.Result{Attr: op.Attr{Ino: 1}})
	c.Store(op.Getattr, "/gone", op.Fail(syscall.ENOENT))
	c.Store(op.Getattr, "/old", op.Fail(syscall.ENOENT))
	clock.Advance(testTTL / 2)
	c.Store(op.Getattr, "/gone", op.Fail(syscall.ENOENT)) // renewed: live after the advance below
	clock.Advance(testTTL / 2)

	tests := []struct {
		path  string
		found bool
		errno syscall.Errno
	}{{"/f", true, 0}, {"/gone", true, syscall.ENOENT}, {"/old", false, 0}, {"/missing", false, 0}}
	for _, tt := range tests {
		r, ok := c.Peek(op.Getattr, tt.path)
		require.Equal(t, tt.found, ok, tt.path)
		assert.Equal(t, tt.errno, r.Errno, tt.path)
	}
	st := c.Stats()
	assert.EqualValues(t, 2, st.Hits.Total())
	assert.Zero(t, st.Misses.Total())
	assert.Zero(t, st.NegativeExpires, "Peek leaves an expired entry to Lookup")
	for _, tt := range tests[2:] { // the misses go on to Lookup
		_, ok := c.Lookup(op.Getattr, tt.path)
		assert.False(t, ok, tt.path)
	}
	st = c.Stats()
	assert.EqualValues(t, 2, st.Hits.Total())
	assert.EqualValues(t, 2, st.Misses.Total())
	assert.EqualValues(t, 1, st.NegativeExpires)
}
