package launch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ctl "github.com/hpc-copper/copper/control"
)

func TestLocalMounts(t *testing.T) {
	noEnv := func(string) string { return "" }
	pmi := func(k string) string { return map[string]string{"PMI_RANK": "5", "PMI_SIZE": "8"}[k] }
	parse := func(args string) Command {
		c, err := Parse(strings.Fields(args), nil)
		require.NoError(t, err)
		return c
	}
	tests := []struct {
		name   string
		args   string
		getenv func(string) string
		want   []rankMount
	}{
		{"all local ranks", "stop --local 3 --mount /m/{rank}", noEnv,
			[]rankMount{{0, "/m/0"}, {1, "/m/1"}, {2, "/m/2"}}},
		{"one local rank", "stop --local 3 --rank 1 --mount /m/{rank}", noEnv, []rankMount{{1, "/m/1"}}},
		{"rank flag", "wait --rank 4 --mount /m/{rank}", pmi, []rankMount{{4, "/m/4"}}},
		{"rank from the environment", "stats --mount /m/{rank}/x", pmi, []rankMount{{5, "/m/5/x"}}},
		{"no rank needed", "stop --site aurora --mount /m/$$x", noEnv, []rankMount{{-1, "/m/$x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := localMounts(context.Background(), parse(tt.args), tt.getenv, quiet())
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	_, err := localMounts(context.Background(), parse("stop --mount /m/{rank}"), noEnv, quiet())
	require.ErrorContains(t, err, "mount /m/{rank} depends on the rank")
	require.ErrorContains(t, err, "PMI_RANK")
	require.ErrorContains(t, err, "--rank R")
}

func TestPrivateFilesOf(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	dir := ctl.RuntimeDir()
	book, token := filepath.Join(dir, "j-rank0.book"), filepath.Join(dir, "j-rank0.token")
	// A process whose command line looks like a foreground node's.
	cmd := exec.Command("sh", "-c", "read x", "sh", "serve", "--book", book, "--token-file", token, "--job-dir", dir+"/jobdir")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	// Right after Start the child may not have exec'd sh yet.
	require.Eventually(t, func() bool {
		return privateFilesOf(cmd.Process.Pid) == privateFiles{Book: book, Token: token}
	}, 10*time.Second, 5*time.Millisecond)

	// Files outside the runtime directory (a prepared book's token) are not ours.
	other := exec.Command("sh", "-c", "read x", "sh", "--token-file", "/shared/job.book.token", "--book", dir+"/../escape.book")
	stdin2, err := other.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, other.Start())
	t.Cleanup(func() {
		stdin2.Close()
		_ = other.Wait()
	})
	require.Eventually(t, func() bool {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", other.Process.Pid))
		return strings.Contains(string(cmdline), "/shared/job.book.token")
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, privateFiles{}, privateFilesOf(other.Process.Pid))
	assert.Equal(t, privateFiles{}, privateFilesOf(0))
}
