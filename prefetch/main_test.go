package prefetch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/prefetch"
)

// The test binary, re-executed with one of these variables set, runs a
// helper instead of the tests: a child process can drop root or walk a
// mount without putting the test process at risk.
const (
	// unprivilegedEnv holds a JSON unprivilegedJob: prefetch it as uid
	// 65534 and print the Stats as JSON.
	unprivilegedEnv = "COPPER_PREFETCH_UNPRIVILEGED"
	// walkEnv holds a JSON walkJob: walk the paths on every mount and
	// print a walkResult as JSON.
	walkEnv = "COPPER_PREFETCH_WALK"
)

func TestMain(m *testing.M) {
	if job := os.Getenv(unprivilegedEnv); job != "" {
		os.Exit(helper(job, runUnprivileged))
	}
	if job := os.Getenv(walkEnv); job != "" {
		os.Exit(helper(job, runWalk))
	}
	os.Exit(m.Run())
}

func helper[J any, R any](jobJSON string, run func(J) (R, error)) int {
	var job J
	if err := json.Unmarshal([]byte(jobJSON), &job); err != nil {
		fmt.Fprintf(os.Stderr, "helper: bad job: %v\n", err)
		return 2
	}
	res, err := run(job)
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "helper: encode: %v\n", err)
		return 1
	}
	return 0
}

// unprivilegedJob prefetches Manifest through a root node on Target.
type unprivilegedJob struct {
	Target, Manifest string
}

// nobody is the uid and gid the unprivileged helper runs as.
const nobody = 65534

func runUnprivileged(job unprivilegedJob) (prefetch.Stats, error) {
	// Root reads everything (CAP_DAC_OVERRIDE); permission errors are
	// real only without it. Go applies these to every thread.
	if err := syscall.Setgroups(nil); err != nil {
		return prefetch.Stats{}, fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(nobody); err != nil {
		return prefetch.Stats{}, fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(nobody); err != nil {
		return prefetch.Stats{}, fmt.Errorf("setuid: %w", err)
	}
	be, err := backend.New(backend.Config{Target: job.Target, Parallel: 4, MaxCacheable: 1 << 20})
	if err != nil {
		return prefetch.Stats{}, err
	}
	defer be.Close()
	n, err := node.New(node.Config{
		Cache:   cache.New(cache.Config{BudgetBytes: 64 << 20, NegativeTTL: time.Hour}),
		Backend: be,
	})
	if err != nil {
		return prefetch.Stats{}, err
	}
	n.MarkRegistered()
	p, err := prefetch.New(n, prefetch.Config{Manifest: job.Manifest, Target: job.Target, MaxCacheable: 1 << 20})
	if err != nil {
		return prefetch.Stats{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		return prefetch.Stats{}, err
	}
	return p.Stats(), nil
}

// walkJob lists the view paths to visit on each mount; Read lists the
// regular files whose content to read (no larger than max_cacheable).
type walkJob struct {
	Mounts []string
	Paths  []string
	Read   map[string]bool
}

type walkResult struct {
	Visited, Dirs, Links, FilesRead int
	Bytes                           int64
}

// runWalk does what a first import does on a cold mount: look every path
// up, list directories, read links and read files whole.
func runWalk(job walkJob) (walkResult, error) {
	var res walkResult
	for _, mnt := range job.Mounts {
		for _, p := range job.Paths {
			host := filepath.Join(mnt, p)
			fi, err := os.Lstat(host)
			if err != nil {
				return res, err
			}
			res.Visited++
			switch {
			case fi.IsDir():
				if _, err := os.ReadDir(host); err != nil {
					return res, err
				}
				res.Dirs++
			case fi.Mode()&fs.ModeSymlink != 0:
				if _, err := os.Readlink(host); err != nil {
					return res, err
				}
				res.Links++
			case job.Read[p]:
				data, err := os.ReadFile(host)
				if err != nil {
					return res, err
				}
				if int64(len(data)) != fi.Size() {
					return res, errors.New(host + ": short read")
				}
				res.FilesRead++
				res.Bytes += int64(len(data))
			}
		}
	}
	return res, nil
}

// runHelper is helper's other half: it runs the test binary again with
// env set to job as JSON, bounded, and decodes what the helper prints.
func runHelper[R any](t *testing.T, env string, job any) R {
	t.Helper()
	raw, err := json.Marshal(job)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+string(raw))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s helper: %s", env, stderr.String())
	var res R
	require.NoError(t, json.Unmarshal(out, &res), string(out))
	return res
}
