package nodecmd

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/service"
)

// TestMemoryCommand asks a real node where its memory went, as JSON and
// as text, and for its heap profile; bad invocations fail naming the
// problem.
func TestMemoryCommand(t *testing.T) {
	src := t.TempDir()
	data := bytes.Repeat([]byte("copper"), 200_000) // 1.2 MB, cached whole
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), data, 0o644))
	d := startDaemon(t, src)
	require.NoError(t, within(t, "read", func() error {
		got, err := os.ReadFile(filepath.Join(d.mnt, "f"))
		if err == nil && !bytes.Equal(got, data) {
			t.Errorf("read %d bytes through the mount, want %d", len(got), len(data))
		}
		return err
	}))

	stdout, stderr, code := d.copperNode(t, "memory", "--mount", d.mnt, "--json")
	require.Zero(t, code, stderr)
	var m service.MemoryResult
	require.NoError(t, json.Unmarshal([]byte(stdout), &m), stdout)
	assert.Equal(t, d.pid, m.PID)
	assert.Empty(t, m.HeapProfile, "no profile unless asked")
	assert.GreaterOrEqual(t, m.CacheBytes, int64(len(data)), "the cache holds the file")
	assert.Greater(t, m.RSSBytes, int64(0))
	assert.GreaterOrEqual(t, m.PeakRSSBytes, m.RSSBytes)
	assert.GreaterOrEqual(t, m.ObjectsBytes, int64(len(data)), "the cached file is a heap object")
	assert.Greater(t, m.StacksBytes, int64(0))
	assert.Greater(t, m.RuntimeBytes, int64(0))
	assert.Equal(t, m.TotalBytes, m.ObjectsBytes+m.UnusedBytes+m.FreeBytes+m.ReleasedBytes+m.StacksBytes+m.RuntimeBytes,
		"the classes add up to what the runtime mapped")
	assert.Greater(t, m.Goroutines, int64(1))
	if os.Getenv("GOMEMLIMIT") == "" {
		assert.Equal(t, memoryLimit(64<<20), m.MemoryLimitBytes, "the limit copper-node set from its cache budget")
	}

	profile := filepath.Join(t.TempDir(), "heap.pprof")
	stdout, stderr, code = d.copperNode(t, "memory", "--mount", d.mnt, "--gc", "--heap-profile", profile)
	require.Zero(t, code, stderr)
	assert.Regexp(t, `copper node pid \d+: resident .* cache 1\.\d MiB`, stdout)
	assert.Regexp(t, `(?m)^\s*heap objects \(live and not yet swept\)\s+\d+`, stdout)
	assert.Regexp(t, `GOGC \S+, memory limit \S+ \S+, \d+ goroutines`, stdout)
	assert.Contains(t, stdout, "heap profile: "+profile)
	raw, err := os.ReadFile(profile)
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err, "pprof's format is gzipped")
	body, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Contains(t, string(body), "inuse_space", "a heap profile's sample types")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"memory"}, "--mount is required"},
		{[]string{"memory", "--mount", d.mnt, "extra"}, `unexpected argument "extra"`},
		{[]string{"memory", "--mount", d.mnt, "--heap-profile", filepath.Join(d.dir, "no", "such", "dir", "p")}, "heap profile: open " + filepath.Join(d.dir, "no")},
		{[]string{"memory", "--mount", filepath.Join(d.dir, "not-a-mount")}, "no copper node serves this mount"},
	} {
		_, stderr, code := d.copperNode(t, c.args...)
		assert.Equal(t, 1, code, "%v", c.args)
		assert.Contains(t, stderr, c.want, "%v", c.args)
	}
}
