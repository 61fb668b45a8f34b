package launch

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ctl "github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/tree"
)

// fakeLauncherEnv makes this test binary, run by fakeLauncher, write a
// rank's private book and token as a launch does, print their paths and
// wait for its stdin to close.
const fakeLauncherEnv = "COPPER_LAUNCH_TEST_FAKE_LAUNCHER"

func runFakeLauncher() int {
	files, err := writePrivate("job9", 0, []tree.Entry{{Host: "a", Endpoint: "127.0.0.1:1"}}, []byte("abcdef0123456789abcdef"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(files.Book)
	fmt.Println(files.Token)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// fakeLauncher runs this test binary linked as copper-launch, which
// writes its private files, and returns the process and those files.
func fakeLauncher(t *testing.T) (*exec.Cmd, privateFiles) {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "copper-launch")
	require.NoError(t, os.Symlink(self, bin))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fakeLauncherEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	var p privateFiles
	require.True(t, sc.Scan(), "the fake launcher's book")
	p.Book = sc.Text()
	require.True(t, sc.Scan(), "the fake launcher's token")
	p.Token = sc.Text()
	return cmd, p
}

// TestSweepPrivate: a launcher's start removes the book and token copies
// of launchers that are gone, and only those.
func TestSweepPrivate(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	dir := ctl.RuntimeDir()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	write := func(p privateFiles) privateFiles {
		for _, f := range []string{p.Book, p.Token} {
			require.NoError(t, os.WriteFile(f, []byte("x"), 0o600))
		}
		return p
	}
	other := exec.Command("sleep", "600") // a live process, not copper's
	require.NoError(t, other.Start())
	t.Cleanup(func() {
		_ = other.Process.Kill()
		_ = other.Wait()
	})
	done := exec.Command("true")
	require.NoError(t, done.Run())

	// Started before the one killed: a start sweeps what is stale then.
	_, liveFiles := fakeLauncher(t)
	killed, killedFiles := fakeLauncher(t)
	zombie, zombieFiles := fakeLauncher(t)
	require.NoError(t, killed.Process.Signal(syscall.SIGKILL))
	_ = killed.Wait()
	// Not reaped yet: shows state Z, as a launcher does while it execs
	// copper-node from a thread other than its main one.
	require.NoError(t, zombie.Process.Signal(syscall.SIGKILL))
	require.Eventually(t, func() bool {
		st, ok := osutil.ProcessState(zombie.Process.Pid)
		return ok && st == "Z"
	}, 10*time.Second, time.Millisecond, "the killed launcher is a zombie")
	readByNode := write(privatePaths(dir, "job9", 1, done.Process.Pid+1_000_000))
	fakeNode(t, "--book", readByNode.Book, "--token-file", readByNode.Token, "--rank", "1")

	tests := []struct {
		name  string
		files privateFiles
		kept  bool
	}{
		{"launcher killed by SIGKILL", killedFiles, false},
		{"launcher still running", liveFiles, true},
		{"launcher a zombie (or mid-exec)", zombieFiles, true},
		{"writer gone", write(privatePaths(dir, "job9", 2, done.Process.Pid)), false},
		{"writer's pid reused by another program", write(privatePaths(dir, "other", 0, other.Process.Pid)), false},
		{"writer gone, a live node reads them", readByNode, true},
		{"not a private file", privateFiles{Book: filepath.Join(dir, "notes-rank1.book"), Token: filepath.Join(dir, "ctl-0.lock")}, true},
	}
	write(tests[len(tests)-1].files)
	for _, tt := range tests {
		assert.FileExists(t, tt.files.Book, "%s: before", tt.name)
	}

	// The next start (in this process) sweeps as it writes its own.
	mine, err := writePrivate("job9", 0, []tree.Entry{{Host: "a", Endpoint: "127.0.0.1:1"}}, []byte("abcdef0123456789abcdef"))
	require.NoError(t, err)
	assert.FileExists(t, mine.Token, "its own files")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range []string{tt.files.Book, tt.files.Token} {
				if tt.kept {
					assert.FileExists(t, f)
				} else {
					assert.NoFileExists(t, f)
				}
			}
		})
	}
	assert.Empty(t, sweepPrivate(dir), "nothing more to remove; this process's own are kept")
	assert.Equal(t, strconv.Itoa(os.Getpid()), privateName.FindStringSubmatch(mine.Book)[1])
}
