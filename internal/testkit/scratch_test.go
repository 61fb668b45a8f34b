package testkit

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
)

// TestDetachMountsUnder stacks two tmpfs at one point and nests a third
// below: one call must detach all three.
func TestDetachMountsUnder(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "m")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	t.Cleanup(func() { _ = DetachMountsUnder(dir) })
	mountTmpfs(t, mnt)
	mountTmpfs(t, mnt) // stacked: the first is uncovered by detaching this one
	require.NoError(t, os.Mkdir(filepath.Join(mnt, "inner"), 0o755))
	mountTmpfs(t, filepath.Join(mnt, "inner"))
	ms, err := osutil.MountsUnder(dir)
	require.NoError(t, err)
	require.Len(t, ms, 3)

	require.NoError(t, DetachMountsUnder(dir))
	ms, err = osutil.MountsUnder(dir)
	require.NoError(t, err)
	assert.Empty(t, ms)
	require.NoError(t, DetachMountsUnder(dir), "nothing to detach is no error")
}

// TestScratchCleanup leaves a mount and a process naming the directory
// behind: the cleanup must kill, detach and remove.
func TestScratchCleanup(t *testing.T) {
	requireRoot(t)
	outer := t
	var s *Scratch
	var pid int
	t.Run("leaves things behind", func(t *testing.T) {
		s = NewScratch(t, "copper-testkit-")
		// Reaped by the outer test, so that the cleanup has to kill it.
		pid = startFrom(t, outer, s.Dir).Process.Pid
		mnt := filepath.Join(s.Dir, "m")
		require.NoError(t, os.Mkdir(mnt, 0o755))
		mountTmpfs(t, mnt)
		s.NoteConnections()
		assert.Len(t, s.Mounts(), 1)
		assert.Equal(t, []int{pid}, s.Processes())
	})
	assert.False(t, osutil.ProcessMentions(pid, s.Dir), "pid %d survived the cleanup", pid)
	assert.NoDirExists(t, s.Dir)
	ms, err := osutil.MountsUnder(s.Dir)
	require.NoError(t, err)
	assert.Empty(t, ms)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts tmpfs: run it as root (euid %d)", os.Geteuid())
	}
}

func mountTmpfs(t *testing.T, at string) {
	t.Helper()
	require.NoError(t, syscall.Mount("tmpfs", at, "tmpfs", 0, "size=1m"), "mount tmpfs at %s", at)
}

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
