package control

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartFailureRecord(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mount := filepath.Join(t.TempDir(), "mnt")
	_, ok, err := ReadStartFailure(mount)
	require.NoError(t, err)
	assert.False(t, ok, "no record before a failure")

	logs := t.TempDir()
	stderrLog := filepath.Join(logs, "h-rank2-stderr.log")
	require.NoError(t, os.WriteFile(stderrLog, []byte("boom\n"), 0o644))
	missing := filepath.Join(logs, "h-99-output.log")
	require.NoError(t, WriteStartFailure(StartFailure{Mount: mount, JobID: "42", Rank: 2, Host: "h", By: "copper-node",
		PID: 7, Error: "mount directory: not a directory", Logs: []string{missing, stderrLog}}))

	f, ok, err := ReadStartFailure(mount)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, []string{stderrLog}, f.Logs, "only logs that exist are named")
	msg := f.Message()
	for _, want := range []string{"mount " + mount, "rank 2 on host h", "job 42", "copper-node pid 7", "not a directory", "more in " + stderrLog} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "step that started it", "a daemon's stderr is its file")
	tmps, _ := filepath.Glob(filepath.Join(RuntimeDir(), "*.tmp"))
	assert.Empty(t, tmps, "written through a temporary file renamed over the record")

	// A log removed since is no longer named.
	require.NoError(t, os.Remove(stderrLog))
	f, _, err = ReadStartFailure(mount)
	require.NoError(t, err)
	assert.Empty(t, f.Logs)
	assert.Contains(t, f.Message(), "no log file was recorded for it")
	assert.Contains(t, f.Message(), "its stderr went to the output of the job step that started it")

	require.NoError(t, ClearStartFailure(mount))
	_, ok, err = ReadStartFailure(mount)
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, ClearStartFailure(mount), "clearing nothing is fine")
}

func TestStartFailureAppliesTo(t *testing.T) {
	for _, tc := range []struct {
		record, wait string
		applies      bool
	}{
		{"42", "42", true},
		{"42", "43", false}, // another job's leftover on the same mount
		{"", "43", true},    // failed before it knew its job
		{"42", "", true},    // a wait outside a batch job
	} {
		assert.Equal(t, tc.applies, StartFailure{JobID: tc.record}.AppliesTo(tc.wait), "record %q, wait %q", tc.record, tc.wait)
	}
}

func TestStartFailureBadRecord(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	mount := "/some/mount"
	path, err := failurePath(mount)
	require.NoError(t, err)
	_, err = MakeRuntimeDir()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, ok, err := ReadStartFailure(mount)
	assert.False(t, ok)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path, "the error names the record")
}

// FuzzReadStartFailure: whatever the record holds, reading it returns a
// record or an error naming it, never a panic.
func FuzzReadStartFailure(f *testing.F) {
	f.Add([]byte(`{"mount":"/m","job_id":"1","rank":0,"host":"h","by":"copper-node","pid":1,"time":"2026-01-01T00:00:00Z","error":"x","logs":["/etc/hostname"]}`))
	f.Add([]byte(`{"logs":[""]}`))
	f.Add([]byte("\x00"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		t.Setenv("XDG_RUNTIME_DIR", dir)
		path, err := failurePath("/m")
		require.NoError(t, err)
		_, err = MakeRuntimeDir()
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, raw, 0o600))
		rec, ok, err := ReadStartFailure("/m")
		if err != nil {
			assert.False(t, ok)
			assert.Contains(t, err.Error(), path, "the error names the record")
			return
		}
		require.True(t, ok)
		_ = rec.Message()
	})
}
