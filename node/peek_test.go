package node

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/op"
)

// TestPeekAnswersHitsOnly: Peek declines what the cache does not hold
// (counting nothing: Get counts the request), and answers what it holds
// exactly as Get does, counted and observed as Get's hit.
func TestPeekAnswersHitsOnly(t *testing.T) {
	var obs observations
	n, _ := rootOver(t, backend.Config{Target: sourceDir(t), Parallel: 4, MaxCacheable: 1 << 20}, obs.add)
	ctx := context.Background()

	tests := []struct {
		o    op.Op
		path string
	}{
		{op.Getattr, "/pkg/__init__.py"},
		{op.Read, "/pkg/__init__.py"},
		{op.Readlink, "/pkg/link"},
		{op.Readdir, "/pkg"},
		{op.DirPlus, "/pkg"},
		{op.DirPlusNext, "/pkg/__init__.py"},
		{op.Getattr, "/pkg/missing"},
	}
	for _, tt := range tests {
		t.Run(tt.o.String()+" "+tt.path, func(t *testing.T) {
			before := n.Stats().Op(tt.o)
			_, ok := n.Peek(tt.o, tt.path)
			if ok { // an earlier case's fetch brought it: Get must agree
				want := n.Get(ctx, tt.o, tt.path)
				got, _ := n.Peek(tt.o, tt.path)
				assert.Equal(t, want, got)
				return
			}
			assert.Equal(t, before, n.Stats().Op(tt.o), "a declined peek counts nothing")
			want := n.Get(ctx, tt.o, tt.path) // cold: fetched and cached
			seen := len(obs.all())
			afterGet := n.Stats().Op(tt.o)
			got, ok := n.Peek(tt.o, tt.path)
			require.True(t, ok, "held after Get")
			assert.Equal(t, want, got)
			after := n.Stats().Op(tt.o)
			assert.Equal(t, afterGet.Hits+1, after.Hits)
			assert.Equal(t, afterGet.Misses, after.Misses)
			require.Len(t, obs.all(), seen+1)
			ob := obs.all()[seen]
			assert.Contains(t, []Outcome{OutcomeHit, OutcomeListed, OutcomeNegative}, ob.Outcome)
		})
	}
	for _, o := range []op.Op{op.IsReady, op.Chunk} {
		_, ok := n.Peek(o, "/pkg")
		assert.False(t, ok, "%v is Get's own", o)
	}
	_, ok := n.Peek(op.Getattr, "/pkg/../etc")
	assert.False(t, ok, "a bad path is Get's to refuse")
	_, ok = n.Peek(op.DirPlusNext, "/")
	assert.False(t, ok)
}
