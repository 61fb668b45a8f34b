package launch

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

// statsToFile runs copper-node stats into path: written to a temporary
// file beside it and renamed, so that a reader never sees half of it and a
// failure leaves nothing.
func statsToFile(ctx context.Context, bin string, args []string, path string, env Env) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("stats --output: %w", err)
	}
	defer func() {
		if f != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	toFile := env
	toFile.Stdout = f
	if err := runTool(ctx, bin, args, toFile); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("stats --output: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		f = nil
		return fmt.Errorf("stats --output: %w", err)
	}
	f = nil
	return nil
}
