package prefetch_test

// The setting end to end: copper-launch --local 2 --prefetch FILE, built
// from this tree, must reach both copper-node daemons.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/service"
)

// buildCommands builds copper-launch and copper-node into a temporary
// directory and returns it.
func buildCommands(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err, "go env GOMOD")
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", bin+"/", "./cmd/copper-launch", "./cmd/copper-node")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build in %s:\n%s", root, out)
	return bin
}

func TestLaunchLocalPassesPrefetch(t *testing.T) {
	requireMountable(t)
	bin := buildCommands(t)
	work := t.TempDir()
	target := filepath.Join(work, "env")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "pkg"), 0o755))
	lines := []string{filepath.Join(target, "pkg")}
	for i := range 10 {
		p := filepath.Join(target, "pkg", fmt.Sprintf("m%d.py", i))
		writeFile(t, p, 100+i)
		lines = append(lines, p)
	}
	lines = append(lines, filepath.Join(target, "pkg", "gone.py"))
	// Relative, as a user would write it in the job's directory: each
	// copper-node resolves it in the directory copper-launch ran in.
	require.NoError(t, os.WriteFile(filepath.Join(work, "manifest.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644))

	// HOME: the default key_file (~/.copper/key) is created there.
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir(), "HOME="+t.TempDir())
	tmpl := filepath.Join(work, "m{rank}")
	run := func(name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := run("copper-launch", "stop", "--local", "2", "--mount", tmpl); err != nil {
			t.Logf("copper-launch stop: %v\n%s", err, out)
		}
		for r := range 2 {
			m := filepath.Join(work, fmt.Sprintf("m%d", r))
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				t.Logf("lazy unmount of %s: %v", m, err)
			}
		}
	})

	out, err := run("copper-launch", "--local", "2", "--mount", tmpl, "--log-dir", filepath.Join(work, "logs"),
		"--target", target, "--max-cacheable-bytes", "65536", "--ready-timeout-s", "30", "--prefetch", "manifest.txt")
	require.NoError(t, err, "copper-launch --local 2:\n%s", out)

	for r := range 2 {
		mount := filepath.Join(work, fmt.Sprintf("m%d", r))
		out, err := run("copper-node", "wait", "--mount", mount, "--prefetched", "--timeout", "60s")
		require.NoError(t, err, "copper-node wait --prefetched, rank %d:\n%s", r, out)
		assert.Contains(t, out, "prefetch manifest.txt: done, 12/12 paths", "rank %d", r)

		out, err = run("copper-node", "stats", "--mount", mount, "--json")
		require.NoError(t, err, "copper-node stats, rank %d:\n%s", r, out)
		var st service.Status
		require.NoError(t, json.Unmarshal([]byte(out), &st), out)
		require.NotNil(t, st.Prefetch, "rank %d: no prefetch in the status: the setting did not reach copper-node", r)
		assert.Equal(t, "manifest.txt", st.Prefetch.Manifest)
		assert.Equal(t, int64(10), st.Prefetch.Files, "rank %d", r)
		assert.Equal(t, int64(1), st.Prefetch.Dirs, "rank %d", r)
		assert.Equal(t, int64(1), st.Prefetch.Missing, "rank %d", r)
		assert.True(t, st.Prefetch.Finished, "rank %d", r)

		out, err = run("copper-node", "stats", "--mount", mount)
		require.NoError(t, err, "copper-node stats, rank %d:\n%s", r, out)
		assert.Contains(t, out, "prefetch manifest.txt: done, 12/12 paths")
	}
}
