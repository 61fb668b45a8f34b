package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
)

// TestChildRefusesImpostorParent runs real copper-node processes: rank 1's
// parent endpoint is held by an impostor that serves forged bytes. Rank 1
// must refuse it, fail to start naming the address, mount nothing and
// send it no request; with the real rank 0 there, the same rank 1 serves
// the real file.
func TestChildRefusesImpostorParent(t *testing.T) {
	target := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(target, "lib.py"), []byte("real content\n"), 0o644))
	c := newCluster(t, clusterConfig{nodes: 2, fanout: 2, target: target, flags: []string{"--ready-timeout-s", "2"}})

	requests := testkit.AcceptAnyone(t, c.endpoints[0], []byte("forged content\n"))
	r, err := c.tryStart(1)
	require.Error(t, err, "rank 1 started under an impostor parent")
	assert.Contains(t, r.out.stderr, c.endpoints[0])
	assert.Contains(t, r.out.stderr, "does not know the job token")
	assert.Empty(t, mountsUnder(t, c.dir), "something got mounted")
	assert.Zero(t, requests.Load(), "requests the impostor received")
}

// TestChildOfRealParentServes is the control for the test above: the
// same configuration with the real rank 0 serves the real file.
func TestChildOfRealParentServes(t *testing.T) {
	target := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(target, "lib.py"), []byte("real content\n"), 0o644))
	c := newCluster(t, clusterConfig{nodes: 2, fanout: 2, target: target, flags: []string{"--ready-timeout-s", "10"}})
	c.startAll()
	got, err := c.walk(1) // in a child process: a hung mount cannot hang the test
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("real content\n"))
	require.Contains(t, got, "/lib.py")
	assert.Equal(t, hex.EncodeToString(sum[:]), got["/lib.py"].SHA256)
}
