package nodecmd

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/control"
)

// TestWaitReadyNodeGoneMidRequest: a wait that reached a node whose start
// then failed (it closes the control connection without answering, and
// leaves its start-failure record) returns the record's reason, not "no
// answer".
func TestWaitReadyNodeGoneMidRequest(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mount := filepath.Join(t.TempDir(), "mnt")
	_, err := control.MakeRuntimeDir()
	require.NoError(t, err)
	sock, err := control.SocketPath(mount)
	require.NoError(t, err)
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close(); os.Remove(sock) })

	// The node: takes the wait, fails, records why, drops the connection.
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Read(make([]byte, 512))
		_ = control.WriteStartFailure(control.StartFailure{Mount: mount, JobID: "j1", Host: "h", By: "copper-node",
			PID: 7, Error: "mount directory: not a directory"})
		ln.Close()
		os.Remove(sock)
		c.Close()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = waitReady(ctx, mount, "j1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "failed to start")
	assert.Contains(t, err.Error(), "not a directory")
	assert.NoError(t, ctx.Err(), "returned at once, not at the timeout")
}
