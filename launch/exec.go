package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	ctl "github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/osutil"
)

// execForeground replaces this process with copper-node. It returns only
// when the exec (or keeping the lock across it) failed, with the reason.
func execForeground(nodeBin string, args []string, p plan, lock *ctl.Lock) error {
	// The book and token stay in the private runtime directory: the
	// node reads them after this process is gone.
	p.hold.Release()
	argv := append([]string{nodeBin}, args...)
	// The lock's descriptor survives the exec: this pid goes on
	// holding the mount as copper-node.
	fd := int(lock.File().Fd())
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		return fmt.Errorf("mount %s: keeping its lock across exec: %w", p.mount, err)
	}
	// From the exec on, copper-node records its own failure.
	err := syscall.Exec(nodeBin, argv, ctl.WithLockFD(os.Environ(), fd))
	return fmt.Errorf("exec %s: %w", nodeBin, err)
}

// findNode locates copper-node beside copper-launch, else in PATH.
func findNode(self string) (string, error) {
	if self != "" {
		beside := filepath.Join(filepath.Dir(self), "copper-node")
		if fi, err := os.Stat(beside); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return beside, nil
		}
	}
	p, err := exec.LookPath("copper-node")
	if err != nil {
		return "", fmt.Errorf("copper-node is neither beside %s nor in PATH: %w", self, err)
	}
	return p, nil
}

// nodeArgs is copper-node's command line for this rank.
func nodeArgs(c Command, p plan, files privateFiles) []string {
	args := []string{"serve", "--book", files.Book, "--rank", strconv.Itoa(p.rank), "--job-id=" + p.jobID}
	if files.Token != "" {
		args = append(args, "--token-file", files.Token)
	}
	if p.jobDir != "" {
		args = append(args, "--job-dir", p.jobDir)
	}
	if c.Foreground {
		args = append(args, "--foreground")
	}
	return append(args, c.NodeSettingsFlags()...)
}

// execNode starts copper-node, which daemonizes and exits once its node is
// mounted and tree-ready (or failed), and returns its exit status.
func execNode(ctx context.Context, bin string, args []string, p plan, lock *ctl.Lock, env Env, log *slog.Logger) int {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
	// copper-node adopts the mount's lock as its fd 3 and hands it to its
	// daemon, which holds it until it exits.
	cmd.ExtraFiles = []*os.File{lock.File()}
	cmd.Env = ctl.WithLockFD(os.Environ(), 3)
	// Its own process group: a terminal's Ctrl-C reaches the launcher,
	// which winds the start down, instead of killing copper-node's waiting
	// half and leaving its daemon to finish starting unsupervised.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.hold.Release()
	if err := cmd.Start(); err != nil {
		return fail(env.Stderr, p.rank, fmt.Errorf("start %s: %w", bin, err))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-ctx.Done():
		log.Warn("copper-launch: interrupted; stopping the node being started", "cause", context.Cause(ctx))
		abandon(p.mount, cmd.Process.Pid, exited, log)
		return fail(env.Stderr, p.rank, fmt.Errorf("interrupted before the node was ready: %v", context.Cause(ctx)))
	}
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() > 0 {
			return exit.ExitCode()
		}
		return fail(env.Stderr, p.rank, fmt.Errorf("%s: %w", bin, err))
	}
	return exitOK
}

// abandonBound bounds winding down an interrupted start.
const abandonBound = 30 * time.Second

// abandon winds down a start that was interrupted. The daemon learns its
// pid only through its control socket (up before the mount), so it polls
// that and sends the daemon SIGTERM, which ends its wait for the tree and
// makes it unmount and exit; copper-node's waiting half then exits too.
// A node that became ready meanwhile is stopped through its socket.
func abandon(mount string, parent int, exited <-chan error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), abandonBound)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	signalled := false
	for {
		select {
		case err := <-exited:
			if err == nil { // it reported ready: stop it
				// This launch holds the mount's lock: whatever serves it is ours.
				if _, err := stopNode(ctx, mount, true); err != nil {
					log.Warn("copper-launch: stopping the node after the interruption", "mount", mount, "err", err)
				}
			}
			return
		case <-tick.C:
			if signalled {
				continue
			}
			// Only our daemon, a child of our copper-node (the lock we hold
			// already keeps other jobs' nodes off this mount).
			if pid, err := ctl.CallPID(ctx, mount, ctl.Request{Cmd: "stats"}, nil); err == nil && osutil.ParentOf(pid) == parent {
				signalled = syscall.Kill(pid, syscall.SIGTERM) == nil
			}
		case <-ctx.Done():
			log.Warn("copper-launch: the node being started did not wind down; it may still come up", "mount", mount, "bound", abandonBound)
			return
		}
	}
}
