package nodecmd

import (
	"compress/gzip"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A node started with --cpu-profile writes a gzipped pprof profile, named
// for its rank, once it has stopped.
func TestCPUProfileFlagWritesAProfileAtStop(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	out := t.TempDir()
	d := startDaemon(t, src, "--cpu-profile", filepath.Join(out, "cpu-{rank}.out"))
	require.NoError(t, within(t, "read", func() error { _, err := os.ReadFile(filepath.Join(d.mnt, "f")); return err }))
	_, stderr, code := d.copperNode(t, "stop", "--mount", d.mnt, "--timeout", "15s")
	require.Zero(t, code, stderr)

	f, err := os.Open(filepath.Join(out, "cpu-0.out"))
	require.NoError(t, err, "the profile, {rank} replaced")
	defer f.Close()
	z, err := gzip.NewReader(f)
	require.NoError(t, err, "a pprof profile is gzipped")
	b, err := io.ReadAll(z)
	require.NoError(t, err)
	assert.NotEmpty(t, b, "a profile with its header at least")
}

func TestStartCPUProfile(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Setenv(cpuProfileEnv, "")
	stop, err := startCPUProfile("", 3, log)
	require.NoError(t, err, "off: no path, no environment")
	stop()

	_, err = startCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.out"), 3, log)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--cpu-profile")
	assert.Contains(t, err.Error(), filepath.Join("missing", "cpu.out"), "the error names the file")

	path := filepath.Join(t.TempDir(), "cpu-{rank}.out")
	t.Setenv(cpuProfileEnv, path)
	stop, err = startCPUProfile("", 3, log)
	require.NoError(t, err)
	stop()
	assert.FileExists(t, filepath.Join(filepath.Dir(path), "cpu-3.out"), "$"+cpuProfileEnv+" when no flag")
}
