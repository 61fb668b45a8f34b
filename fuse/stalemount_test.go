package fuse

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/stalemount"
	"github.com/hpc-copper/copper/internal/testkit"
)

// The test binary doubles as a helper process, chosen by helperEnv, for
// what must not run inside the process that serves the mount.
const (
	helperEnv       = "COPPER_FUSE_TEST_HELPER" // "serve", "mmap", "ioctl" or "read"
	helperPathEnv   = "COPPER_FUSE_TEST_HELPER_PATH"
	helperTargetEnv = "COPPER_FUSE_TEST_HELPER_TARGET"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "serve":
		os.Exit(serveHelper(os.Getenv(helperPathEnv), os.Getenv(helperTargetEnv)))
	case "mmap":
		os.Exit(mmapHelper(os.Getenv(helperPathEnv)))
	case "ioctl":
		os.Exit(ioctlHelper(os.Getenv(helperPathEnv)))
	case "read":
		os.Exit(readHelper(os.Getenv(helperPathEnv)))
	}
	os.Exit(m.Run())
}

// serveHelper mounts, says so on stdout and waits to be killed or
// stopped; it gives up by itself after a minute so a failed test leaves
// no server behind.
func serveHelper(mount, target string) int {
	m, err := Mount(newDirSource(target, 1<<20), Options{Mount: mount, Target: target})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper mount:", err)
		return 1
	}
	fmt.Println("mounted")
	time.Sleep(time.Minute)
	_ = m.Unmount()
	return 0
}

// mmapHelper maps a whole file and prints the sha256 of the mapping. It
// runs apart from the server: a Go process that faults on pages of its
// own mount deadlocks (a stop-the-world waits for the faulting thread,
// the fault waits for the server goroutine).
func mmapHelper(path string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmap:", err)
		return 1
	}
	defer syscall.Munmap(mem)
	fmt.Printf("%x\n", sha256.Sum256(mem))
	return 0
}

// runHelper starts the test binary as helper name on path.
func runHelper(ctx context.Context, name, path, target string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+name, helperPathEnv+"="+path, helperTargetEnv+"="+target)
	cmd.Stderr = os.Stderr
	return cmd
}

// startHelperMount starts a mount server at mnt in a child process and
// returns once it serves. The child is killed in Cleanup at the latest.
func startHelperMount(t *testing.T, mnt, target string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := runHelper(ctx, "serve", mnt, target)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cancel()
		_ = syscall.Unmount(mnt, syscall.MNT_DETACH) // in case CleanStale failed
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "helper did not mount")
	require.Equal(t, "mounted\n", line)
	return cmd
}

func requireNoFuseMount(t *testing.T, mnt string) {
	t.Helper()
	top, found, err := osutil.TopMount(mnt)
	require.NoError(t, err)
	assert.False(t, found && top.IsFUSE(), "still a FUSE mount at %s: %+v", mnt, top)
}

func TestCleanStale(t *testing.T) {
	testkit.RequireFuse(t)
	target := makeTree(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))

	cleaned, err := stalemount.Clean(mnt, nil)
	require.NoError(t, err)
	assert.False(t, cleaned, "nothing mounted yet")

	helper := startHelperMount(t, mnt, target)
	require.NoError(t, helper.Process.Kill())
	_ = helper.Wait()
	_, err = os.Stat(mnt)
	require.ErrorIs(t, err, syscall.ENOTCONN, "the killed server left a stale mount")
	_, err = Mount(newDirSource(target, 0), Options{Mount: mnt, Target: target})
	require.ErrorIs(t, err, syscall.ENOTCONN)
	assert.Contains(t, err.Error(), "stalemount.Clean", "the error says what to do")

	cleaned, err = stalemount.Clean(mnt, nil)
	require.NoError(t, err)
	assert.True(t, cleaned)
	_, err = os.Stat(mnt)
	require.NoError(t, err)
	requireNoFuseMount(t, mnt)

	cleaned, err = stalemount.Clean(mnt, nil)
	require.NoError(t, err)
	assert.False(t, cleaned, "already clean")

	// The directory is usable again, and a live mount is left alone.
	m, _ := mountViewAt(t, mnt, target)
	cleaned, err = stalemount.Clean(mnt, nil)
	assert.False(t, cleaned)
	require.ErrorIs(t, err, stalemount.ErrLive)
	_, err = os.Stat(filepath.Join(m.Mountpoint(), "a/small.txt"))
	require.NoError(t, err, "the live mount still serves")
}

func TestCleanStaleHungServer(t *testing.T) {
	testkit.RequireFuse(t)
	target := makeTree(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	helper := startHelperMount(t, mnt, target)
	// A stopped server keeps its connection but answers nothing.
	require.NoError(t, helper.Process.Signal(syscall.SIGSTOP))
	waitStopped(t, helper.Process.Pid)

	cleaned, err := stalemount.Clean(mnt, nil)
	require.NoError(t, err)
	assert.True(t, cleaned)
	requireNoFuseMount(t, mnt)
}

// waitStopped waits until the kernel has stopped pid (state T): a
// signal is delivered asynchronously.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool { state, _ := osutil.ProcessState(pid); return state == "T" },
		10*time.Second, 10*time.Millisecond, "process %d did not stop", pid)
}

// mountViewAt mounts target at an existing directory.
func mountViewAt(t *testing.T, mnt, target string) (*Mounted, *dirSource) {
	t.Helper()
	src := newDirSource(target, 1<<20)
	m, err := Mount(src, Options{Mount: mnt, Target: target, MaxCacheable: 1 << 20})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return m, src
}
