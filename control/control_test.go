package control

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mount := t.TempDir()
	s, err := Listen(mount, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	fi, err := os.Stat(s.Path())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	go s.Serve(context.Background(), func(ctx context.Context, req Request) (any, error) {
		switch req.Cmd {
		case "stats":
			return map[string]int{"hits": 3}, nil
		}
		return nil, errors.New("unknown command " + req.Cmd)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out map[string]int
	require.NoError(t, Call(ctx, mount, Request{Cmd: "stats"}, &out))
	assert.Equal(t, 3, out["hits"])
	err = Call(ctx, mount, Request{Cmd: "bogus"}, nil)
	require.ErrorContains(t, err, "unknown command bogus")

	// A second node for the same mount is refused.
	_, err = Listen(mount, nil)
	require.ErrorContains(t, err, "already serves mount")
}

func TestNoNode(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	err := Call(context.Background(), t.TempDir(), Request{Cmd: "stats"}, nil)
	require.ErrorIs(t, err, ErrNoNode)
}

func TestStaleSocketReplaced(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mount := t.TempDir()
	s, err := Listen(mount, nil)
	require.NoError(t, err)
	// Simulate a killed node: the socket file stays, nobody listens.
	require.NoError(t, s.ln.Close())
	_, statErr := os.Stat(s.path)
	if statErr != nil {
		// net.UnixListener removes its file on Close; recreate the leftover.
		require.NoError(t, os.WriteFile(s.path, nil, 0o600))
	}
	s2, err := Listen(mount, nil)
	require.NoError(t, err)
	require.NoError(t, s2.Close())
}
