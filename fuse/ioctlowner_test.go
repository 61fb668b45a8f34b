package fuse

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ioctlHelper sends Copper 1.0's ioctl 100 (clear the caches) on path
// and prints the errno it got (0 for success).
func ioctlHelper(path string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), 100, 0)
	fmt.Print(int(errno))
	return 0
}

// TestIoctlCommandsAreTheMounters: with allow_other, other users read
// through the mount, but Copper 1.0's ioctl commands (clear the whole
// tree's caches, reset the profile, write the logs) stay the mounter's:
// another user's ioctl does nothing and gets ENOTTY, as on a plain file.
func TestIoctlCommandsAreTheMounters(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another uid")
	}
	target := t.TempDir()
	require.NoError(t, os.Chmod(target, 0o755))
	file := filepath.Join(target, "lib.py")
	require.NoError(t, os.WriteFile(file, []byte("x = 1\n"), 0o644))
	var mu sync.Mutex
	var cmds []uint32
	m, _ := mountView(t, target, treeMaxCacheable, func(o *Options) {
		o.AllowOther = true
		o.OnIoctl = func(cmd uint32, _ string) {
			mu.Lock()
			defer mu.Unlock()
			cmds = append(cmds, cmd)
		}
	})
	for _, d := range []string{filepath.Dir(m.Mountpoint()), filepath.Dir(filepath.Dir(m.Mountpoint()))} {
		require.NoError(t, os.Chmod(d, 0o755)) // t.TempDir's are 0700
	}
	// This test binary, where uid 2000 can run it.
	self, err := os.Executable()
	require.NoError(t, err)
	raw, err := os.ReadFile(self)
	require.NoError(t, err)
	bin := filepath.Join(filepath.Dir(m.Mountpoint()), "helper")
	require.NoError(t, os.WriteFile(bin, raw, 0o755))

	run := func(uid uint32) string {
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=ioctl", helperPathEnv+"="+filepath.Join(m.Mountpoint(), "lib.py"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.Output()
		require.NoError(t, err, "helper as uid %d: %s", uid, out)
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, fmt.Sprint(int(syscall.ENOTTY)), run(2000), "another user's ioctl")
	mu.Lock()
	assert.Empty(t, cmds, "another user's ioctl reached the node")
	mu.Unlock()
	assert.Equal(t, "0", run(0), "the mounter's ioctl")
	mu.Lock()
	assert.Equal(t, []uint32{100}, cmds)
	mu.Unlock()
}
