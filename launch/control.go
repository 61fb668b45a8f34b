package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	ctl "github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/stalemount"
	"github.com/hpc-copper/copper/rank"
)

// rankMount is one node's mount on this host.
type rankMount struct {
	rank  int // -1 when the mount does not depend on it
	mount string
}

// localMounts resolves the mounts a wait, stop or stats acts on: all N
// of --local N, else this rank's (rank from --rank or the environment,
// needed only when the mount contains {rank}).
func localMounts(ctx context.Context, c Command, getenv func(string) string, log *slog.Logger) ([]rankMount, error) {
	var ranks []int
	switch {
	case c.Local > 0 && c.Rank < 0:
		for r := range c.Local {
			ranks = append(ranks, r)
		}
	case c.Rank >= 0:
		ranks = []int{c.Rank}
	case strings.Contains(c.Settings.Mount, "{rank}"):
		id, sess, err := identityOrPMI(ctx, c, getenv, log)
		sess.finish(log) // only the rank was wanted
		if err != nil {
			return nil, fmt.Errorf("mount %s depends on the rank: %w (or pass --rank R, or --local N for all ranks on this host)", c.Settings.Mount, err)
		}
		ranks = []int{id.Rank}
	default:
		ranks = []int{-1}
	}
	out := make([]rankMount, len(ranks))
	for i, r := range ranks {
		s := c.Settings
		if err := s.Expand(r); err != nil {
			return nil, err
		}
		out[i] = rankMount{rank: r, mount: s.Mount}
	}
	return out, nil
}

// controlNodes runs wait, stop or stats through copper-node for each mount.
func controlNodes(ctx context.Context, c Command, env Env, log *slog.Logger) int {
	mounts, err := localMounts(ctx, c, env.Getenv, log)
	if err != nil {
		return fail(env.Stderr, -1, err)
	}
	var bin string
	if c.Name != "stop" {
		if bin, err = findNode(env.Self); err != nil {
			return fail(env.Stderr, -1, err)
		}
	}
	timeout := c.Timeout.String()
	if c.Name == "stats" {
		return statsNodes(ctx, c, env, bin, mounts, log)
	}
	errs := make([]error, len(mounts))
	var wg sync.WaitGroup
	for i, m := range mounts {
		wg.Go(func() {
			if c.Name == "wait" {
				args := []string{"wait", "--mount", m.mount, "--timeout", timeout}
				// A start that failed leaves a record naming its job: one left
				// by another job on this mount does not fail this wait.
				if jobID := jobIDOf(c, env.Getenv); jobID != "" {
					args = append(args, "--job-id", jobID)
				}
				if c.Prefetched {
					args = append(args, "--prefetched")
				}
				errs[i] = runTool(ctx, bin, args, env)
			} else {
				sctx, cancel := context.WithTimeout(ctx, c.Timeout)
				defer cancel()
				errs[i] = stopMount(sctx, m.mount, false, env, log)
			}
		})
	}
	wg.Wait()
	code := exitOK
	for i, err := range errs {
		if err != nil {
			code = fail(env.Stderr, mounts[i].rank, err)
		}
	}
	return code
}

// stopMount stops the node serving mount. With no node there, a dead
// copper mount left behind is detached and the stop succeeds: after it,
// nothing is served or mounted at mount either way. ownLock says the
// caller holds the mount's lock (a failed launch cleaning up after
// itself): then any node serving mount is the caller's own.
func stopMount(ctx context.Context, mount string, ownLock bool, env Env, log *slog.Logger) error {
	stopped, err := stopNode(ctx, mount, ownLock)
	if err != nil {
		return err
	}
	if stopped {
		if ownLock { // a failed launch winding down keeps its record for wait
			return nil
		}
		return ctl.ClearStartFailure(mount)
	}
	if !ownLock {
		// No socket answers, yet something may hold the mount: a start in
		// progress, or a node whose socket was removed. Not stopped.
		switch pid, held, err := ctl.Holder(mount); {
		case err != nil:
			return err
		case held:
			return fmt.Errorf("mount %s: no node answers on its control socket, but pid %d claims the mount (still starting, or its socket was removed); not stopped", mount, pid)
		}
	}
	cleaned, err := stalemount.Clean(mount, log)
	if err == nil && !ownLock {
		// The job is done with the mount: a failed start's record goes too.
		err = ctl.ClearStartFailure(mount)
	}
	switch {
	case errors.Is(err, stalemount.ErrLive):
		return fmt.Errorf("a FUSE mount at %s still answers but no copper node's control socket was found (another XDG_RUNTIME_DIR?): %w", mount, err)
	case err != nil:
		return err
	case cleaned:
		fmt.Fprintf(env.Stderr, "copper-launch: no node served %s; detached the stale mount\n", mount)
	default:
		log.Info("copper-launch: no copper node serves this mount; nothing to stop", "mount", mount)
	}
	return nil
}

// stopNode asks the node serving mount to stop and waits until its
// process is gone (it unmounts before exiting) and, unless ownLock, the
// mount is no longer claimed; then it removes the book and token copies
// a foreground node leaves. The pid waited for is the one the kernel
// names for the socket (a stranger on it cannot fake one that is gone).
// stopped is false when no node answers at mount.
func stopNode(ctx context.Context, mount string, ownLock bool) (stopped bool, err error) {
	pid, err := ctl.ServingPID(ctx, mount)
	if errors.Is(err, ctl.ErrNoNode) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	leftovers := privateFilesOf(pid)
	if err := ctl.Stop(ctx, mount, pid, ownLock); err != nil {
		return false, err
	}
	leftovers.Remove()
	return true, nil
}

// privateFilesOf finds the book and token copies a node started with
// --foreground still has in the runtime directory (a daemonized node's
// launcher removed them once the node was ready), from its command line.
func privateFilesOf(pid int) privateFiles {
	var p privateFiles
	// The pid may be gone and reused by then: only a process of ours
	// names files to remove, and only files right in the runtime
	// directory ("run/../x" starts with its name too).
	if pid <= 0 || !osutil.ProcessOwnedBy(pid, os.Geteuid()) {
		return p
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return p
	}
	dir := ctl.RuntimeDir()
	args := strings.Split(string(raw), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if v := args[i+1]; !filepath.IsAbs(v) || filepath.Dir(filepath.Clean(v)) != dir {
			continue
		}
		switch args[i] {
		case "--book":
			p.Book = args[i+1]
		case "--token-file":
			p.Token = args[i+1]
		}
	}
	return p
}

// jobIDOf is the job a command acts for: --job-id, else the batch
// system's.
func jobIDOf(c Command, getenv func(string) string) string {
	if c.Settings.JobID != "" {
		return c.Settings.JobID
	}
	return rank.JobID(getenv)
}

// runTool runs a copper-node control command with the launcher's output.
func runTool(ctx context.Context, bin string, args []string, env Env) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("copper-node %s --mount %s: %w", args[0], args[2], err)
	}
	return nil
}
