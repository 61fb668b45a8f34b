package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// Drop makes the next request for one path reach the backend again, and
// leaves the other paths cached.
func TestDropRefetchesOnePath(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"f", "g"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("v1"), 0o644))
	}
	n := newRoot(t, dir)
	for _, o := range []op.Op{op.Getattr, op.Read} {
		for _, p := range []string{"/f", "/g"} {
			require.True(t, n.Get(t.Context(), o, p).OK())
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("v2, longer"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "g"), []byte("v2, longer"), 0o644))

	n.Drop("/f")
	assert.Equal(t, "v2, longer", string(n.Get(t.Context(), op.Read, "/f").Data), "dropped: fetched again")
	assert.Equal(t, int64(len("v2, longer")), n.Get(t.Context(), op.Getattr, "/f").Attr.Size)
	assert.Equal(t, "v1", string(n.Get(t.Context(), op.Read, "/g").Data), "not dropped: still cached")
}
