package logging

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
