package launch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hpc-copper/copper/backend"
	ctl "github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/rank"
)

// runLocal is `copper-launch --local N`: it starts N ranks of itself on
// this host, each with --rank i, an agreed job id and a loopback
// all-gather address, and returns 0 once all N are tree-ready. If any
// fails, it stops whatever did start and returns non-zero.
func runLocal(ctx context.Context, c Command, env Env, log *slog.Logger) int {
	n := c.Local
	if n > 1 && !strings.Contains(c.Settings.Mount, "{rank}") {
		return fail(env.Stderr, -1, fmt.Errorf("--local %d: mount %q must contain {rank}, or the ranks would share one mount", n, c.Settings.Mount))
	}
	// Before anything starts: every rank's target, then every rank's
	// mount claimed, all or none. The ranks inherit their claims, so
	// while this process holds them every node on these mounts is this
	// launch's own, and a failure stops only those.
	mounts, r, err := checkLocalMounts(c)
	if err != nil {
		return fail(env.Stderr, r, err)
	}
	var locks []*ctl.Lock
	if !c.DryRun {
		if locks, err = claimAll(mounts); err != nil {
			return fail(env.Stderr, -1, err)
		}
		defer closeLocks(locks)
	}
	jobID, source := localJobID(c, env.Getenv)
	if !c.DryRun {
		// Two live jobs must not share a job directory (records, logs,
		// profiles): refused before any rank starts, the other untouched.
		release, err := claimJobDirs(localJobDirs(c, jobID), jobID, source)
		if err != nil {
			return fail(env.Stderr, -1, err)
		}
		defer release()
	}
	addr := c.Bootstrap
	if addr == "" && c.Settings.AddressBookSource == "discover" {
		if addr, err = freeLoopbackAddr(); err != nil {
			return fail(env.Stderr, -1, err)
		}
	}
	log.Info("copper-launch: starting local ranks", "ranks", n, "job_id", jobID, "bootstrap", addr)

	// The first failure ends the others: in discover mode they would
	// otherwise wait out the all-gather timeout for a rank that is gone.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	codes, first := startLocalRanks(ctx, cancel, c, env, jobID, addr, locks)

	failed := 0
	for _, code := range codes {
		if code != 0 {
			failed++
		}
	}
	if failed == 0 {
		s := c.Settings
		_ = s.Expand(-1)
		fmt.Fprintf(env.Stdout, "copper-launch: %d local ranks tree-ready, job %s, mounts %s\n", n, jobID, s.Mount)
		return exitOK
	}
	stopLocalAfterFailure(ctx, c, env, mounts, jobID, first, log)
	return exitFail
}

// checkLocalMounts expands every local rank's mount, checking its target
// first. On an error it also returns the rank it is about.
func checkLocalMounts(c Command) ([]string, int, error) {
	mounts := make([]string, c.Local)
	for r := range c.Local {
		s := c.Settings
		if err := s.Expand(r); err != nil {
			return nil, r, err
		}
		if err := backend.CheckTarget(s.Target); err != nil {
			return nil, r, err
		}
		mounts[r] = s.Mount
	}
	return mounts, -1, nil
}

// localJobID is --job-id, else the environment's, else a fresh one, and
// where it came from (for messages).
func localJobID(c Command, getenv func(string) string) (jobID, source string) {
	if c.Settings.JobID != "" {
		return c.Settings.JobID, "--job-id or job_id"
	}
	if jobID = rank.JobID(getenv); jobID != "" {
		for _, name := range []string{"PBS_JOBID", "SLURM_JOB_ID", "COPPER_JOB_ID"} { // rank.JobID's order
			if strings.TrimSpace(getenv(name)) != "" {
				return jobID, name
			}
		}
	}
	// Chosen here rather than by the all-gather so that prepared books
	// work too and this process can name the job directory.
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "local-" + hex.EncodeToString(b), "generated"
}

// localJobDirs are the distinct job directories of the local ranks
// (log_dir may depend on the rank); none when log_dir is empty.
func localJobDirs(c Command, jobID string) []string {
	var dirs []string
	for r := range c.Local {
		s := c.Settings
		if s.Expand(r) != nil || s.LogDir == "" {
			continue
		}
		if d := filepath.Join(s.LogDir, jobID); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// startLocalRanks runs one copper-launch per rank, each inheriting its
// mount's lock, and waits for all of them. It returns each rank's exit
// status and the ranks that failed on their own (not by cancellation);
// a failure cancels ctx, which ends the others.
func startLocalRanks(ctx context.Context, cancel context.CancelCauseFunc, c Command, env Env, jobID, addr string, locks []*ctl.Lock) ([]int, []string) {
	codes := make([]int, c.Local)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first []string // ranks that failed on their own, not by cancellation
	)
	for r := range c.Local {
		args := append(slices.Clip(c.Args), "--rank", strconv.Itoa(r), "--job-id", jobID)
		if addr != "" {
			args = append(args, "--bootstrap", addr)
		}
		cmd := exec.Command(env.Self, args...)
		cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
		if locks != nil {
			cmd.ExtraFiles = []*os.File{locks[r].File()}
			cmd.Env = ctl.WithLockFD(os.Environ(), 3)
		}
		if err := cmd.Start(); err != nil {
			codes[r] = fail(env.Stderr, r, fmt.Errorf("start %s: %w", env.Self, err))
			mu.Lock()
			first = append(first, strconv.Itoa(r))
			mu.Unlock()
			cancel(err)
			continue
		}
		wg.Go(func() {
			if codes[r] = waitChild(ctx, cmd); codes[r] != 0 {
				mu.Lock()
				if ctx.Err() == nil {
					first = append(first, strconv.Itoa(r))
				}
				mu.Unlock()
				cancel(fmt.Errorf("local rank %d failed", r))
			}
		})
	}
	wg.Wait()
	return codes, first
}

// stopLocalAfterFailure says which ranks failed, stops every local node,
// and leaves a start-failure record for the ranks stopped here.
func stopLocalAfterFailure(ctx context.Context, c Command, env Env, mounts []string, jobID string, first []string, log *slog.Logger) {
	n := c.Local
	if len(first) == 0 {
		first = []string{"none (interrupted)"}
	}
	fmt.Fprintf(env.Stderr, "copper-launch: --local %d: failed: rank %s; stopping the others\n", n, strings.Join(first, ","))
	if err := stopOwn(context.WithoutCancel(ctx), mounts, c, env, log); err != nil {
		fmt.Fprintf(env.Stderr, "copper-launch: --local %d: stopping after the failure also failed: %v\n", n, err)
	}
	// A wait for a rank that was stopped or interrupted here must not wait
	// out its timeout either: its record names the rank that failed. (The
	// mounts are still claimed by this launch: the records are its own.)
	if c.DryRun {
		return
	}
	for r, m := range mounts {
		if !slices.Contains(first, strconv.Itoa(r)) {
			recordFailure(m, jobID, r, env.Hostname,
				fmt.Errorf("stopped because the --local %d start failed at rank %s", n, strings.Join(first, ",")), log)
		}
	}
}

// stopOwn stops the nodes this launch started on mounts, whose locks it
// holds: no other job's node can be serving them.
func stopOwn(ctx context.Context, mounts []string, c Command, env Env, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	errs := make([]error, len(mounts))
	var wg sync.WaitGroup
	for r, m := range mounts {
		wg.Go(func() {
			if err := stopMount(ctx, m, true, env, log); err != nil {
				errs[r] = fmt.Errorf("rank %d: %w", r, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitChild waits for one local rank, passing an interruption on to it.
func waitChild(ctx context.Context, cmd *exec.Cmd) int {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err = <-exited
		if err == nil {
			return exitFail // it may have finished starting; the caller stops it
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if code := exit.ExitCode(); code > 0 {
			return code
		}
		return exitFail // killed by a signal
	}
	if err != nil {
		return exitFail
	}
	return exitOK
}

// freeLoopbackAddr returns a loopback address whose port was free a
// moment ago, for the local ranks' all-gather. Rank 0 binds it within
// milliseconds; if another process takes it first, rank 0 fails naming
// the address and the launch fails as a whole.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("choosing a loopback port for the all-gather: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("choosing a loopback port for the all-gather: %w", err)
	}
	return addr, nil
}
