package nodecmd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/rank"
)

// readLines sends r's lines until it ends, then closes the channel.
func readLines(r io.Reader) <-chan string {
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

// daemonize starts this program again in its own session and waits for it
// to report that it is mounted and tree-ready, so that a job script's next
// line can use the mount.
func daemonize(a serveArgs, lock *control.Lock) int {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-node: pipe: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-node: %v\n", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	// fd 3 is the ready pipe, fd 4 the mount's lock, which the daemon
	// holds from here to its exit.
	cmd.Env = append(control.WithLockFD(os.Environ(), 4), daemonEnv+"=1")
	cmd.ExtraFiles = []*os.File{w, lock.File()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// No inherited stdio: a daemon holding mpiexec's or srun's pipes would
	// keep them from returning. Its stderr (a crash, a panic) goes to a file
	// beside the logs.
	errPath, errFile, err := daemonStderr(a)
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-node rank %d: %v\n", a.rank, err)
		recordFailure(a, os.Getpid(), err, nil)
		return 1
	}
	defer errFile.Close()
	cmd.Stderr = errFile
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "copper-node rank %d: start daemon: %v\n", a.rank, err)
		recordFailure(a, os.Getpid(), fmt.Errorf("start daemon: %w", err), nil)
		return 1
	}
	w.Close()
	return awaitDaemon(a, cmd, r, errPath)
}

// awaitDaemon waits for the daemon cmd, started by daemonize, to report
// on its ready pipe r, and returns this process's exit status.
func awaitDaemon(a serveArgs, cmd *exec.Cmd, r io.Reader, errPath string) int {
	// The daemon records the failures it reports; these are the ones it
	// cannot (a crash, a hang).
	daemonLogs := func() []string {
		s, _ := a.expanded()
		return []string{errPath, a.logFileOf(s, cmd.Process.Pid)}
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	lines := readLines(r)
	// The daemon enforces the readiness budget itself; this is the backstop
	// for a daemon that hangs. ready_timeout_s = 0 waits forever.
	var deadline <-chan time.Time
	budget := a.settings.ReadyTimeout() + 30*time.Second
	if a.settings.ReadyTimeout() > 0 {
		timer := time.NewTimer(budget)
		defer timer.Stop()
		deadline = timer.C
	}
	for {
		select {
		case line, ok := <-lines:
			switch {
			case !ok:
				err := <-exited
				fmt.Fprintf(os.Stderr, "copper-node rank %d: daemon exited during startup (%v); see %s and the log beside it\n",
					a.rank, err, errPath)
				recordFailure(a, cmd.Process.Pid, fmt.Errorf("daemon exited during startup (%v)", err), daemonLogs())
				return 1
			case strings.HasPrefix(line, "ready"):
				fmt.Fprintf(os.Stdout, "copper-node: %s\n", line)
				return 0
			case strings.HasPrefix(line, "error: "):
				fmt.Fprintf(os.Stderr, "copper-node rank %d: %s\n", a.rank, strings.TrimPrefix(line, "error: "))
				<-exited
				return 1
			}
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			fmt.Fprintf(os.Stderr, "copper-node rank %d: not ready after %v; daemon stopped\n", a.rank, budget)
			recordFailure(a, cmd.Process.Pid, fmt.Errorf("not ready after %v; daemon stopped", budget), daemonLogs())
			select {
			case <-exited:
			case <-time.After(35 * time.Second):
				_ = cmd.Process.Kill()
			}
			return 1
		}
	}
}

// daemonStderrPath is <jobdir>/logs/<host>-rank<R>-stderr.log: a daemon's
// stderr. Only a daemon has one; a foreground node's stderr is its
// caller's (srun's output).
func (a serveArgs) daemonStderrPath() string {
	s, err := a.expanded()
	if err != nil {
		return ""
	}
	host, _ := os.Hostname()
	return filepath.Join(a.jobDirectory(s), "logs", fmt.Sprintf("%s-rank%d-stderr.log", rank.ShortHost(host), a.rank))
}

// daemonStderr opens the daemon's stderr file.
func daemonStderr(a serveArgs) (string, *os.File, error) {
	if _, err := a.expanded(); err != nil {
		return "", nil, err
	}
	path := a.daemonStderrPath()
	f, err := osutil.AppendLog(path)
	if err != nil {
		return "", nil, fmt.Errorf("daemon stderr: %w", err)
	}
	return path, f, nil
}
