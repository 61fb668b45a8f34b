// Package launch is copper-launch: the SPMD launcher run once per node by
// mpiexec or srun. Each rank learns who it is (rank package), builds the
// job's address map (discover: bootstrap all-gather; facility: the site
// book filtered to the allocation; prepared: a job book as is), writes
// the job's records, pins itself to the service cores and hands over to
// copper-node. It also runs N ranks on one host (--local N) and forwards
// wait, stop and stats to the local node(s).
package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/logging"
	"github.com/hpc-copper/copper/rank"
)

// Env is what the launcher takes from its process, passed in so that
// tests decide it.
type Env struct {
	Getenv   func(string) string
	Hostname string
	Stdout   io.Writer
	Stderr   io.Writer
	// Self is the copper-launch executable: copper-node is looked for
	// beside it, and --local starts its ranks with it.
	Self string
}

// ProcessEnv is the Env of the running process.
func ProcessEnv() (Env, error) {
	host, err := os.Hostname()
	if err != nil {
		return Env{}, fmt.Errorf("hostname: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return Env{}, fmt.Errorf("finding copper-launch's own executable: %w", err)
	}
	return Env{Getenv: os.Getenv, Hostname: host, Stdout: os.Stdout, Stderr: os.Stderr, Self: self}, nil
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// Main runs one copper-launch command line and returns the exit status.
func Main(ctx context.Context, env Env, args []string) int {
	c, err := Parse(args, func(text string) { fmt.Fprint(env.Stdout, text) })
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "copper-launch: %v\nRun 'copper-launch --help' for usage.\n", err)
		return exitUsage
	}
	log := newLogger(env.Stderr, c.Settings.LogLevel)
	for _, note := range c.Notes {
		log.Warn("copper-launch: Copper 1.0 option: " + note)
	}
	switch c.Name {
	case "start":
		if c.Local > 0 && c.Rank < 0 {
			return runLocal(ctx, c, env, log)
		}
		return startRank(ctx, c, env, log)
	case "wait", "stop", "stats":
		return controlNodes(ctx, c, env, log)
	case "keygen":
		return keygen(c, env)
	}
	fmt.Fprintf(env.Stderr, "copper-launch: unknown command %q\n", c.Name)
	return exitUsage
}

// newLogger writes the launcher's own messages to stderr, where mpiexec
// and srun collect them, at the configured level (0 = silent). Errors
// that end the launch are printed whatever the level.
func newLogger(w io.Writer, level int) *slog.Logger {
	lvl, on := logging.SlogLevel(level)
	if !on {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// identity resolves this process's rank and the job size: --rank/--size,
// else the launcher environment.
func identity(c Command, getenv func(string) string) (rank.Identity, error) {
	if c.Rank >= 0 && c.Size > 0 {
		src := "--rank/--size"
		if c.Local > 0 {
			src = "--rank/--local"
		}
		return rank.Identity{Rank: c.Rank, Size: c.Size, Source: src}, nil
	}
	return rank.FromEnv(getenv)
}

// fail prints err as this rank's reason for exiting and returns the
// failure status.
func fail(w io.Writer, r int, err error) int {
	who := "copper-launch"
	if r >= 0 {
		who = fmt.Sprintf("copper-launch rank %d", r)
	}
	fmt.Fprintf(w, "%s: %s\n", who, strings.TrimSpace(err.Error()))
	return exitFail
}
