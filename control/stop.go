package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hpc-copper/copper/internal/osutil"
)

// pollEvery is how often AwaitStopped looks again.
const pollEvery = 20 * time.Millisecond

// ServingPID is the pid the kernel names for the process serving mount's
// control socket (a stranger on the socket cannot fake one that is gone);
// ErrNoNode when no node answers there.
func ServingPID(ctx context.Context, mount string) (int, error) {
	return CallPID(ctx, mount, Request{Cmd: "stats"}, nil)
}

// Stop asks pid, found by ServingPID, to stop and waits as AwaitStopped
// does. A node already on its way out may close its socket between
// ServingPID and the stop: that is no error, the wait decides.
func Stop(ctx context.Context, mount string, pid int, ownLock bool) error {
	if err := Call(ctx, mount, Request{Cmd: "stop"}, nil); err != nil && !errors.Is(err, ErrNoNode) {
		return err
	}
	return AwaitStopped(ctx, mount, pid, ownLock)
}

// AwaitStopped waits, bounded by ctx, until pid (the process that served
// mount's control socket and was asked to stop) is gone and, unless the
// caller holds the mount's lock itself, no process holds that lock any
// more: only then has no node been left serving mount. The error names
// the pid that still runs.
func AwaitStopped(ctx context.Context, mount string, pid int, ownLock bool) error {
	for osutil.ProcessRuns(pid) {
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("mount %s: node pid %d still running after stop", mount, pid)
			if holder, held, _ := Holder(mount); !ownLock && held && holder != pid {
				msg += fmt.Sprintf("; the mount is claimed by pid %d", holder)
			}
			return fmt.Errorf("%s: %w", msg, context.Cause(ctx))
		case <-time.After(pollEvery):
		}
	}
	if ownLock {
		return nil
	}
	for {
		holder, held, err := Holder(mount)
		if err != nil || !held {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mount %s: pid %d, which answered its control socket, is gone, but pid %d still claims the mount (a node still runs): %w",
				mount, pid, holder, context.Cause(ctx))
		case <-time.After(pollEvery):
		}
	}
}
