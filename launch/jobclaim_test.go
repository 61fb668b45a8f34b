package launch

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ctl "github.com/hpc-copper/copper/control"
)

// fakeNodeEnv makes this test binary, run by fakeNode, wait for its
// stdin to close instead of running the tests.
const fakeNodeEnv = "COPPER_LAUNCH_TEST_FAKE_NODE"

func TestMain(m *testing.M) {
	if os.Getenv(fakeNodeEnv) != "" {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	if os.Getenv(fakeLauncherEnv) != "" {
		os.Exit(runFakeLauncher())
	}
	os.Exit(m.Run())
}

// fakeNode runs a process whose command line is a copper-node serve's
// (this test binary, linked as copper-node), until the test ends.
func fakeNode(t *testing.T, args ...string) int {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "copper-node")
	require.NoError(t, os.Symlink(self, bin))
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), fakeNodeEnv+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

func TestClaimJobDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	logs := t.TempDir()
	dir := filepath.Join(logs, "shared")
	require.NoError(t, os.MkdirAll(dir, 0o755))

	// A second claim while the first is held: the starting launcher is named.
	release, err := claimJobDirs([]string{dir}, "shared", "COPPER_JOB_ID")
	require.NoError(t, err)
	_, err = claimJobDirs([]string{filepath.Join(logs, "other"), dir}, "shared", "COPPER_JOB_ID")
	var busy *JobBusyError
	require.ErrorAs(t, err, &busy)
	assert.Equal(t, JobBusyError{JobID: "shared", Dir: dir, Source: "COPPER_JOB_ID", PID: os.Getpid(), Starting: true}, *busy)
	assert.Contains(t, err.Error(), fmt.Sprintf("copper-launch pid %d, which is starting it", os.Getpid()))
	assert.Contains(t, err.Error(), "pass --job-id with another name")
	release()
	// All or none: the first directory's claim was given back.
	again, err := claimJobDirs([]string{filepath.Join(logs, "other")}, "shared", "COPPER_JOB_ID")
	require.NoError(t, err)
	again()
	left, err := filepath.Glob(filepath.Join(ctl.RuntimeDir(), "job-*.lock"))
	require.NoError(t, err)
	assert.Empty(t, left, "a released claim removes its lock file")

	// A live node writing to the directory, however it spells it.
	link := filepath.Join(t.TempDir(), "logs")
	require.NoError(t, os.Symlink(logs, link))
	pid := fakeNode(t, "--book", "/x.book", "--rank", "1", "--job-id=shared", "--job-dir", filepath.Join(link, "shared"), "--mount=/tmp/m{rank}")
	_, err = claimJobDirs([]string{dir}, "shared", "--job-id or job_id")
	require.ErrorAs(t, err, &busy)
	assert.Equal(t, JobBusyError{JobID: "shared", Dir: dir, Source: "--job-id or job_id", PID: pid, Mount: "/tmp/m1"}, *busy)
	assert.Contains(t, err.Error(), fmt.Sprintf("copper-node pid %d (mount /tmp/m1)", pid))

	// Another job's node elsewhere, or a process that is not a node, does not count.
	fakeNode(t, "--job-dir", filepath.Join(logs, "elsewhere"))
	free, err := claimJobDirs([]string{filepath.Join(logs, "free")}, "free", "generated")
	require.NoError(t, err)
	free()
}

func TestArgValue(t *testing.T) {
	args := []string{"copper-node", "serve", "--job-dir", "/a", "--mount=/m", "--rank"}
	for _, tc := range []struct{ flag, want string }{
		{"--job-dir", "/a"}, {"--mount", "/m"}, {"--rank", ""}, {"--book", ""},
	} {
		assert.Equal(t, tc.want, argValue(args, tc.flag), tc.flag)
	}
}

// TestClaimJobDirIgnoresOtherUsersProcesses: anyone can run a process
// named copper-node with a command line naming your job directory; it
// must not keep your job from starting.
func TestClaimJobDirIgnoresOtherUsersProcesses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another uid")
	}
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	dir := filepath.Join(t.TempDir(), "job")
	require.NoError(t, os.MkdirAll(dir, 0o755))

	// The test binary, linked as copper-node where uid 2000 can run it.
	self, err := os.Executable()
	require.NoError(t, err)
	binDir := t.TempDir()
	for _, d := range []string{binDir, filepath.Dir(binDir)} { // t.TempDir's are 0700
		require.NoError(t, os.Chmod(d, 0o755))
	}
	bin := filepath.Join(binDir, "copper-node")
	raw, err := os.ReadFile(self)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, raw, 0o755))
	cmd := exec.Command(bin, "serve", "--job-dir", dir, "--mount", "/tmp/m")
	cmd.Env = append(os.Environ(), fakeNodeEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 2000, Gid: 2000}}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	require.Eventually(t, func() bool { // its command line is the node's once it runs
		pid, _, ok := liveNodeWriting(dir, 2000)
		return ok && pid == cmd.Process.Pid
	}, 10*time.Second, 10*time.Millisecond, "uid 2000's fake node is seen as its own")

	release, err := claimJobDirs([]string{dir}, "job", "--job-id or job_id")
	require.NoError(t, err, "uid 2000's process does not hold our job directory")
	release()
}
