package logging

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
)

func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		user  int
		shown []string
	}{
		{0, nil},
		{1, []string{"FATAL"}},
		{2, []string{"FATAL", "ERROR"}},
		{3, []string{"FATAL", "ERROR", "WARN"}},
		{4, []string{"FATAL", "ERROR", "WARN", "INFO"}},
		{5, []string{"FATAL", "ERROR", "WARN", "INFO", "DEBUG"}},
	} {
		file := filepath.Join(t.TempDir(), "logs", "h-1-output.log")
		l, closeFn, err := New(Options{Level: tc.user, Type: "file", File: file})
		require.NoError(t, err)
		Fatal(l, "m-fatal")
		l.Error("m-error")
		l.Warn("m-warn")
		l.Info("m-info")
		l.Debug("m-debug")
		require.NoError(t, closeFn())
		data, _ := os.ReadFile(file)
		for _, lvl := range []string{"FATAL", "ERROR", "WARN", "INFO", "DEBUG"} {
			if contains(tc.shown, lvl) {
				assert.Contains(t, string(data), "level="+lvl, "user level %d", tc.user)
			} else {
				assert.NotContains(t, string(data), "level="+lvl, "user level %d", tc.user)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestBadType(t *testing.T) {
	_, _, err := New(Options{Level: 4, Type: "syslog"})
	require.ErrorContains(t, err, `log_type "syslog"`)
}

// TestLogFileRefusesPlantedLinks: log_dir may be under /tmp (the local
// site's /tmp/copper-$USER/logs), where another user can create the
// directory first, or plant a link at a log file's name so that the node
// appends its log to a file of the link's choosing.
func TestLogFileRefusesPlantedLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another uid")
	}
	top := t.TempDir()
	_, taken := testkit.ForeignDirInSharedTmp(t, top, "copper-user")
	victim := filepath.Join(top, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("mine\n"), 0o644))
	linked := filepath.Join(top, "mine", "node.log")
	require.NoError(t, os.Mkdir(filepath.Dir(linked), 0o755))
	require.NoError(t, os.Symlink(victim, linked))

	tests := []struct{ name, file, want string }{
		{"directory of another user in a shared one", filepath.Join(taken, "logs", "node.log"), "belongs to uid 2000"},
		{"link at the log file's name", linked, "too many levels of symbolic links"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, closeFn, err := New(Options{Level: 4, Type: "file", File: tt.file})
			if err == nil {
				log.Info("appended")
				_ = closeFn()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "mine\n", string(b), "the linked file is untouched")
}
