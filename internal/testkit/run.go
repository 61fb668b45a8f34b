package testkit

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// KillGrace is how long RunBounded waits for a child it killed to go. A
// child still there by then is stuck in the kernel, typically on a FUSE
// mount whose server is gone.
const KillGrace = 10 * time.Second

// Result is one finished child process.
type Result struct {
	Stdout, Stderr string
	Code           int // exit code; -1 when it did not exit normally
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// RunBounded runs cmd in its own process group, capturing its output,
// and kills the group after timeout. A non-zero exit is a Result, not an
// error; the error says the child could not start or had to be killed.
// A child that does not die even then (stuck in a dead FUSE mount) is
// left to the test's teardown, which aborts the connection.
//
// cmd must not have Stdout, Stderr or SysProcAttr set.
func RunBounded(cmd *exec.Cmd, timeout time.Duration) (Result, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A grandchild (a daemon) holding the output pipes must not hold
	// up Wait.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return Result{Code: -1}, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	finish := func(err error) (Result, error) {
		r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
		if _, exited := errors.AsType[*exec.ExitError](err); exited {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("%s %q: %w", cmd.Path, cmd.Args[1:], err)
		}
		return r, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return finish(err)
	case <-timer.C:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case err := <-done:
		r, _ := finish(err)
		return r, fmt.Errorf("%s %q: killed after %v", cmd.Path, cmd.Args[1:], timeout)
	case <-time.After(KillGrace):
		return Result{Code: -1}, fmt.Errorf("%s %q: still not gone %v after SIGKILL (stuck in a FUSE mount?)",
			cmd.Path, cmd.Args[1:], KillGrace)
	}
}

// Within runs f, which touches a mount from the test's own process, and
// fails the test if f does not return within d: a hung or dead FUSE
// server would otherwise hang the test forever. A stuck f is released
// by the teardown's abort of the connection. Call it from the test's
// goroutine.
func Within(t testing.TB, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		t.Fatalf("%s: no answer after %v (FUSE server hung or dead?)", what, d)
		return nil
	}
}
