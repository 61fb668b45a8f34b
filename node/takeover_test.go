package node_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

// A target that cannot be opened at takeover (a filesystem hiccup) fails
// calls for a moment, then is opened again: the successor's segment is
// not left failing for the rest of the job.
func TestLocalBackendRetriesAFailedOpen(t *testing.T) {
	target := filepath.Join(t.TempDir(), "not-yet")
	l := node.NewLocalBackend(backend.Config{Target: target, Parallel: 2, MaxCacheable: 1 << 20}, 0, "successor root", nil)
	t.Cleanup(func() { _ = l.Close() })

	_, err := l.Call(t.Context(), op.Getattr, "/")
	require.Error(t, err, "a missing target")
	assert.ErrorContains(t, err, target)

	require.NoError(t, os.Mkdir(target, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644))
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := l.Call(t.Context(), op.Getattr, "/f")
		if err == nil {
			require.True(t, r.OK(), "getattr /f: %v", r.Errno)
			assert.EqualValues(t, 1, r.Attr.Size)
			return
		}
		require.True(t, time.Now().Before(deadline), "the target was never opened again: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
}
