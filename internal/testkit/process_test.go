package testkit

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startFrom starts `sleep 600` from a copy of sleep in dir, so that its
// command line names dir. reaper's cleanup kills and reaps it.
func startFrom(t *testing.T, reaper testing.TB, dir string) *exec.Cmd {
	t.Helper()
	sleepPath, err := exec.LookPath("sleep")
	require.NoError(t, err)
	src, err := os.Open(sleepPath)
	require.NoError(t, err)
	defer src.Close()
	bin := filepath.Join(dir, "sleeper")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	cmd := exec.Command(bin, "600")
	require.NoError(t, cmd.Start())
	reaper.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestProcessMentions(t *testing.T) {
	dir := t.TempDir()
	cmd := startFrom(t, t, dir)
	pid := cmd.Process.Pid
	assert.True(t, ProcessAlive(pid))
	assert.True(t, ProcessMentions(pid, dir))
	assert.False(t, ProcessMentions(pid, dir+"-other"), "a process naming another directory")
	assert.Equal(t, []int{pid}, ProcessesMentioning(dir))
	assert.False(t, ProcessAlive(-1), "no such process")
}

// TestZombieIsNotAlive: a child that exited but is not yet reaped has
// finished, though its /proc entry remains.
func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	defer cmd.Wait()
	require.Eventually(t, func() bool { return !ProcessAlive(pid) }, 10*time.Second, 10*time.Millisecond,
		"pid %d exited and stays a zombie until reaped", pid)
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	require.NoError(t, err, "not reaped yet, so still in /proc")
	assert.Contains(t, string(stat), ") Z ")
}
