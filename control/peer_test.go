package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dialerEnv makes this test binary, run by TestServeRefusesOtherUsers,
// send a stop to the socket it names and print the answer.
const dialerEnv = "COPPER_CONTROL_TEST_DIAL"

func dialAndStop(path string) int {
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer c.Close()
	// A node that refuses may answer and close before the request is
	// written (EPIPE): its answer is still there to read.
	_ = json.NewEncoder(c).Encode(Request{Cmd: "stop"})
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Print(resp.Error)
	return 0
}

// TestServeRefusesOtherUsers: the socket's mode keeps other users out;
// should it ever not (a runtime directory and socket opened up by hand,
// a umask), the node still answers only its own user (and root).
func TestServeRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another uid")
	}
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	mount := t.TempDir()
	s, err := Listen(mount, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	stops := make(chan struct{}, 1)
	go s.Serve(context.Background(), func(context.Context, Request) (any, error) {
		stops <- struct{}{}
		return nil, nil
	})
	// Open the way for uid 2000, as a careless chmod would.
	for _, p := range []string{filepath.Dir(xdg), xdg, filepath.Dir(s.Path())} {
		require.NoError(t, os.Chmod(p, 0o755))
	}
	require.NoError(t, os.Chmod(s.Path(), 0o666))

	// This test binary, where uid 2000 can run it.
	self, err := os.Executable()
	require.NoError(t, err)
	raw, err := os.ReadFile(self)
	require.NoError(t, err)
	bin := filepath.Join(xdg, "dialer")
	require.NoError(t, os.WriteFile(bin, raw, 0o755))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), dialerEnv+"="+s.Path())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 2000, Gid: 2000}}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "dialer: %s %s", out, stderr.String())
	assert.Contains(t, string(out), "control connection from uid 2000")
	assert.Contains(t, string(out), "refused")
	select {
	case <-stops:
		t.Fatal("uid 2000's stop reached the node")
	case <-time.After(100 * time.Millisecond):
	}

	// The owner still gets through.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, Call(ctx, mount, Request{Cmd: "stop"}, nil))
	<-stops
}
