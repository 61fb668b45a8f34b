package testkit

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
)

func TestRunBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		want   Result
	}{
		{"success", "echo out; echo err >&2", Result{Stdout: "out\n", Stderr: "err\n", Code: 0}},
		{"a non-zero exit is a result", "echo partial; exit 3", Result{Stdout: "partial\n", Code: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := RunBounded(exec.Command("sh", "-c", tc.script), time.Minute)
			require.NoError(t, err)
			assert.Equal(t, tc.want, r)
		})
	}
}

func TestRunBoundedCannotStart(t *testing.T) {
	r, err := RunBounded(exec.Command("/nonexistent/copper-testkit"), time.Minute)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "start /nonexistent/copper-testkit")
	assert.Equal(t, -1, r.Code)
}

// TestRunBoundedKillsTheGroup runs a shell whose child would outlive
// it: both must be killed at the timeout, and what came before kept.
func TestRunBoundedKillsTheGroup(t *testing.T) {
	r, err := RunBounded(exec.Command("sh", "-c", "sleep 600 & echo $!; wait"), 200*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "killed after 200ms")
	assert.Equal(t, -1, r.Code, "killed by a signal: %s", r)
	sleeper, convErr := strconv.Atoi(strings.TrimSpace(r.Stdout))
	require.NoError(t, convErr, "the shell printed its child's pid: %s", r)
	require.Eventually(t, func() bool { return !osutil.ProcessRuns(sleeper) }, 10*time.Second, 10*time.Millisecond,
		"sleep (pid %d), in the killed process group, survived", sleeper)
}

// fatalRecorder is a testing.TB whose Fatalf only records, so that a
// test can check that a helper fails its test.
type fatalRecorder struct {
	testing.TB
	mu    sync.Mutex
	fatal string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fatal = fmt.Sprintf(format, args...)
}

func TestWithinPassesOnTheResult(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	assert.EqualError(t, Within(rec, time.Minute, "stat", func() error { return assert.AnError }), assert.AnError.Error())
	assert.NoError(t, Within(rec, time.Minute, "stat", func() error { return nil }))
	assert.Empty(t, rec.fatal)
}

func TestWithinFailsAHungCall(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	hung := make(chan struct{})
	defer close(hung) // release the goroutine Within left behind
	err := Within(rec, 10*time.Millisecond, "stat of a dead mount", func() error { <-hung; return nil })
	assert.NoError(t, err)
	assert.Contains(t, rec.fatal, "stat of a dead mount: no answer after 10ms")
}
