package osutil

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatFields(t *testing.T) {
	tests := []struct {
		name, stat string
		state      string
		ppid       string
		ok         bool
	}{
		{"plain", "42 (sleep) S 7 42 42 0", "S", "7", true},
		{"name with spaces and parens", "42 (a) b) (c) Z 1 42", "Z", "1", true},
		{"no name", "42 sleep S 7", "", "", false},
		{"nothing after name", "42 (sleep)", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, rest, ok := statFields([]byte(tt.stat))
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.state, state)
			if tt.ok {
				require.NotEmpty(t, rest)
				assert.Equal(t, tt.ppid, rest[0])
			}
		})
	}
}

func TestProcessRuns(t *testing.T) {
	cmd := exec.Command("sleep", "600")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	tests := []struct {
		name string
		pid  int
		want bool
	}{
		{"this process", os.Getpid(), true},
		{"a child", pid, true},
		{"zero", 0, false},
		{"negative", -1, false},
		{"beyond pid_max", 1 << 30, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ProcessRuns(tt.pid), tt.name)
	}
	assert.Equal(t, os.Getpid(), ParentOf(pid))
	assert.Equal(t, -1, ParentOf(1<<30))
	// Start returns once the child is forked, not once it has exec'd
	// sleep: until then its cmdline is this test binary's.
	require.Eventually(t, func() bool { return ProcessMentions(pid, "600") }, 10*time.Second, time.Millisecond,
		"the child's cmdline never named its argument")
	assert.False(t, ProcessMentions(pid, "no-such-argument"))
	assert.Contains(t, ProcessesMentioning("sleep\x00600"), pid)
	// This test binary's parent (go test, or a shell) names its own
	// arguments; ancestors are never listed, so a cleanup that kills what
	// it lists cannot kill whoever started it.
	parent := ParentOf(os.Getpid())
	parentCmd, err := os.ReadFile("/proc/" + strconv.Itoa(parent) + "/cmdline")
	require.NoError(t, err)
	if first, _, _ := bytes.Cut(parentCmd, []byte{0}); len(first) > 0 {
		assert.NotContains(t, ProcessesMentioning(string(first)), parent, "an ancestor is listed")
	}
	assert.True(t, ancestors(os.Getpid())[parent])
}

// TestZombieDoesNotRun: a child that exited but is not yet reaped has
// finished, though its /proc entry remains.
func TestZombieDoesNotRun(t *testing.T) {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	defer cmd.Wait()
	require.Eventually(t, func() bool { return !ProcessRuns(pid) }, 10*time.Second, 10*time.Millisecond,
		"pid %d exited and stays a zombie until reaped", pid)
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	require.NoError(t, err, "the zombie's /proc entry is still there, so the state was what decided")
}

func TestProcessState(t *testing.T) {
	cmd := exec.Command("sleep", "600")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	require.NoError(t, cmd.Process.Signal(syscall.SIGSTOP))
	require.Eventually(t, func() bool { s, ok := ProcessState(pid); return ok && s == "T" }, 10*time.Second, time.Millisecond)
	assert.True(t, ProcessRuns(pid), "a stopped process still runs")
	_, ok := ProcessState(1 << 30)
	assert.False(t, ok, "no such process")
}
