package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockExclusive(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mount := t.TempDir()
	l, err := LockMount(mount)
	require.NoError(t, err)
	fi, err := os.Stat(l.Path())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	_, err = LockMount(mount)
	var busy *BusyError
	require.ErrorAs(t, err, &busy)
	assert.Equal(t, os.Getpid(), busy.PID)
	assert.ErrorContains(t, err, "mount "+mount)
	assert.ErrorContains(t, err, fmt.Sprintf("pid %d", os.Getpid()))
	assert.ErrorContains(t, err, "copper-node stop --mount "+mount)
	pid, held, err := Holder(mount)
	require.NoError(t, err)
	assert.True(t, held)
	assert.Equal(t, os.Getpid(), pid)

	other, err := LockMount(t.TempDir())
	require.NoError(t, err, "another mount has its own lock")
	require.NoError(t, other.Close())

	require.NoError(t, l.Close())
	_, held, err = Holder(mount)
	require.NoError(t, err)
	assert.False(t, held)
	l2, err := LockMount(mount)
	require.NoError(t, err, "free again once closed")
	require.NoError(t, l2.Close())
}

// TestLockHandedToChild passes the lock to a child process and closes
// this copy: the child holds the mount until it dies, even by SIGKILL.
func TestLockHandedToChild(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mount := t.TempDir()
	l, err := LockMount(mount)
	require.NoError(t, err)
	cmd := exec.Command("sleep", "600")
	cmd.ExtraFiles = []*os.File{l.File()}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	require.NoError(t, l.Close())

	_, err = LockMount(mount)
	var busy *BusyError
	require.ErrorAs(t, err, &busy, "the child still holds it")

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	l2, err := LockMount(mount)
	require.NoError(t, err, "a dead holder frees the mount")
	require.NoError(t, l2.Close())
}

func TestLockFromEnv(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mount := t.TempDir()
	t.Setenv(LockFDEnv, "")
	_, ok, err := LockFromEnv(mount)
	require.NoError(t, err)
	assert.False(t, ok)

	l, err := LockMount(mount)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	// A second descriptor of the same open file, as a child would inherit.
	fd, err := dupFD(l.File())
	require.NoError(t, err)
	t.Setenv(LockFDEnv, strconv.Itoa(fd))
	got, ok, err := LockFromEnv(mount)
	require.NoError(t, err)
	assert.True(t, ok)
	require.NoError(t, got.Close())

	tests := []struct {
		name, value string
		mount       string
		want        string
	}{
		{"not a number", "x", mount, "want an inherited file descriptor"},
		{"stdio", "1", mount, "want an inherited file descriptor"},
		{"closed", "999", mount, "inherited lock"},
		{"another mount's", "", t.TempDir(), "is not its lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.value
			if v == "" {
				fd, err := dupFD(l.File())
				require.NoError(t, err)
				v = strconv.Itoa(fd)
			}
			t.Setenv(LockFDEnv, v)
			_, ok, err := LockFromEnv(tt.mount)
			assert.True(t, ok)
			require.ErrorContains(t, err, LockFDEnv+"=")
			require.ErrorContains(t, err, tt.want)
		})
	}

	// A separately opened file of the same lock is not a holder's copy.
	f, err := os.Open(l.Path())
	require.NoError(t, err)
	defer f.Close()
	// LockFromEnv owns (and on refusal closes) the descriptor it is
	// handed: give it a copy, or f's finalizer would later close that
	// number again, by then another file's (a later test's RemoveAll
	// once failed with EBADF).
	sep, err := dupFD(f)
	require.NoError(t, err)
	t.Setenv(LockFDEnv, strconv.Itoa(sep))
	_, _, err = LockFromEnv(mount)
	var busy *BusyError
	require.ErrorAs(t, err, &busy)
}

func TestAwaitStopped(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mount := t.TempDir()
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	require.NoError(t, AwaitStopped(t.Context(), mount, gone.Process.Pid, false), "nothing runs, nothing claims")

	l, err := LockMount(mount)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	require.NoError(t, AwaitStopped(t.Context(), mount, gone.Process.Pid, true), "the caller's own claim does not count")

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err = AwaitStopped(ctx, mount, gone.Process.Pid, false)
	require.ErrorContains(t, err, fmt.Sprintf("pid %d still claims the mount", os.Getpid()))
	require.True(t, errors.Is(err, context.DeadlineExceeded))

	sleeper := exec.Command("sleep", "600")
	require.NoError(t, sleeper.Start())
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err = AwaitStopped(ctx, mount, sleeper.Process.Pid, false)
	require.ErrorContains(t, err, fmt.Sprintf("node pid %d still running after stop", sleeper.Process.Pid))
	require.ErrorContains(t, err, fmt.Sprintf("claimed by pid %d", os.Getpid()))
}

// TestStop: a node that closes its socket between ServingPID and the stop
// request has stopped, not failed; a node that refuses the stop has.
func TestStop(t *testing.T) {
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	tests := []struct {
		name    string
		serve   bool  // a node answers at the mount
		stopErr error // what it answers "stop" with
		wantErr string
	}{
		{name: "socket closed before stop", serve: false},
		{name: "stop answered", serve: true},
		{name: "stop refused", serve: true, stopErr: errors.New("not now"), wantErr: "not now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
			mount := t.TempDir()
			s, err := Listen(mount, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			go s.Serve(t.Context(), func(ctx context.Context, req Request) (any, error) {
				if req.Cmd == "stop" {
					return nil, tt.stopErr
				}
				return struct{}{}, nil
			})
			pid, err := ServingPID(t.Context(), mount)
			require.NoError(t, err)
			assert.Equal(t, os.Getpid(), pid, "the kernel names the server")
			if !tt.serve {
				require.NoError(t, s.Close())
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			// The served pid here is this test; wait for one that is gone.
			err = Stop(ctx, mount, gone.Process.Pid, true)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	_, err := ServingPID(t.Context(), t.TempDir())
	require.ErrorIs(t, err, ErrNoNode)
}
