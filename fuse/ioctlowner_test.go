package fuse

import (
	"errors"
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
	for _, d := range []string{target, filepath.Dir(target)} { // searchable, or the root hides itself
		require.NoError(t, os.Chmod(d, 0o755))
	}
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
	bin := helperForAnyone(t, m.Mountpoint())
	run := func(uid uint32) string {
		return runHelperAs(t, bin, uid, "ioctl", filepath.Join(m.Mountpoint(), "lib.py"))
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

// helperForAnyone makes the mount's parent directories searchable
// (t.TempDir's are 0700) and copies this test binary beside the mount,
// where any uid can run it.
func helperForAnyone(t *testing.T, mount string) string {
	t.Helper()
	for _, d := range []string{filepath.Dir(mount), filepath.Dir(filepath.Dir(mount))} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	self, err := os.Executable()
	require.NoError(t, err)
	raw, err := os.ReadFile(self)
	require.NoError(t, err)
	bin := filepath.Join(filepath.Dir(mount), "helper")
	require.NoError(t, os.WriteFile(bin, raw, 0o755))
	return bin
}

// runHelperAs runs helper name on path as uid and returns what it printed.
func runHelperAs(t *testing.T, bin string, uid uint32, name, path string) string {
	t.Helper()
	return runHelperAsGroup(t, bin, uid, int(uid), name, path)
}

// runHelperAsGroup is runHelperAs with the group given.
func runHelperAsGroup(t *testing.T, bin string, uid uint32, gid int, name, path string) string {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+name, helperPathEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uint32(gid), Groups: []uint32{}}}
	out, err := cmd.Output()
	require.NoError(t, err, "helper %s as uid %d: %s", name, uid, out)
	return strings.TrimSpace(string(out))
}

// readHelper reads path and prints the errno it got (0 for success).
func readHelper(path string) int {
	_, err := os.ReadFile(path)
	var errno syscall.Errno
	if err != nil && !errors.As(err, &errno) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Print(int(errno))
	return 0
}

// TestAllowOtherHidesWhatTheHostHides: a target below a directory that
// others cannot search (/home/you, 0700) keeps them out on the host. An
// allow_other view starts at the target, where the kernel checks nothing
// above it: the root must hide what those directories hide.
func TestAllowOtherHidesWhatTheHostHides(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another uid")
	}
	top := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(top), 0o755))
	tests := []struct {
		name       string
		home       os.FileMode // the directory above the target
		gid        int         // its group
		uid3000gid int         // uid 3000's group (the target's is 0)
		readable2k bool        // uid 2000, neither owner nor in a group
		readable3k bool        // uid 3000
	}{
		{"home 0700", 0o700, 0, 3000, false, false},
		{"home 0711", 0o711, 0, 3000, true, true},
		{"home 0750 of the target's group", 0o750, 0, 0, false, true},
		{"home 0750 of another group", 0o750, 4000, 0, false, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := filepath.Join(top, fmt.Sprint(i))
			target := filepath.Join(home, "env")
			require.NoError(t, os.MkdirAll(target, 0o755))
			require.NoError(t, os.Chmod(target, 0o775))
			require.NoError(t, os.Chmod(home, tt.home))
			require.NoError(t, os.Chown(home, 0, tt.gid))
			require.NoError(t, os.Chmod(top, 0o755))
			file := filepath.Join(target, "lib.py")
			require.NoError(t, os.WriteFile(file, []byte("x = 1\n"), 0o664))
			m, _ := mountView(t, target, treeMaxCacheable, func(o *Options) { o.AllowOther = true })
			bin := helperForAnyone(t, m.Mountpoint())
			want := func(ok bool) string {
				if ok {
					return "0"
				}
				return fmt.Sprint(int(syscall.EACCES))
			}
			for _, c := range []struct {
				uid  uint32
				gid  int
				want bool
			}{{2000, 2000, tt.readable2k}, {3000, tt.uid3000gid, tt.readable3k}} {
				direct := runHelperAsGroup(t, bin, c.uid, c.gid, "read", file)
				view := runHelperAsGroup(t, bin, c.uid, c.gid, "read", filepath.Join(m.Mountpoint(), "lib.py"))
				assert.Equal(t, want(c.want), direct, "uid %d on the host", c.uid)
				assert.Equal(t, direct, view, "uid %d: the view answers as the host", c.uid)
			}
		})
	}
}
