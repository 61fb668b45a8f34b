package launch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/hpc-copper/copper/internal/osutil"
)

// statsNodes prints each mount's stats, one after another so that this
// host's outputs do not interleave. Across ranks an MPI launcher may still
// interleave them mid-line (Open MPI reads each rank's pseudo-terminal in
// chunks), so --output writes each rank's whole stats to its own file.
func statsNodes(ctx context.Context, c Command, env Env, bin string, mounts []rankMount, log *slog.Logger) int {
	code := exitOK
	for _, m := range mounts {
		args := []string{"stats", "--mount", m.mount}
		if c.JSON {
			args = append(args, "--json")
		}
		var err error
		if c.Output == "" {
			err = runTool(ctx, bin, args, env)
		} else {
			err = statsToFile(ctx, bin, args, filepath.Join(c.Output, statsFileName(ctx, c, m, env, log)), env)
		}
		if err != nil {
			code = fail(env.Stderr, m.rank, err)
		}
	}
	return code
}

// statsFileName names a rank's stats file: by rank, else (a mount without
// {rank} and no rank in the environment) by host name.
func statsFileName(ctx context.Context, c Command, m rankMount, env Env, log *slog.Logger) string {
	ext := ".txt"
	if c.JSON {
		ext = ".json"
	}
	r := m.rank
	if r < 0 {
		id, sess, err := identityOrPMI(ctx, c, env.Getenv, log)
		sess.finish(log)
		if err == nil {
			r = id.Rank
		}
	}
	if r >= 0 {
		return fmt.Sprintf("copper-stats.rank%d%s", r, ext)
	}
	return "copper-stats." + env.Hostname + ext
}

// statsToFile runs copper-node stats into path, written whole or not at
// all (osutil.WriteFileFunc: a temporary file beside it, then a rename):
// a reader never sees half of it and a failure leaves nothing.
func statsToFile(ctx context.Context, bin string, args []string, path string, env Env) error {
	err := osutil.WriteFileFunc(path, 0o644, func(w io.Writer) error {
		toFile := env
		toFile.Stdout = w
		return runTool(ctx, bin, args, toFile)
	})
	if err != nil {
		return fmt.Errorf("stats --output: %w", err)
	}
	return nil
}
