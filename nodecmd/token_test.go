package nodecmd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
)

// TestServeRequiresToken: copper-node refuses to start without a usable
// job token, naming the flag or the file, before it listens or mounts.
func TestServeRequiresToken(t *testing.T) {
	dir := t.TempDir()
	book := filepath.Join(dir, "book")
	require.NoError(t, os.WriteFile(book, []byte("localhost "+testkit.FreeAddr(t)+"\n"), 0o644))
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	short := write("short", "fifteen bytes..\n", 0o600)
	open := write("open", "a-long-enough-job-token\n", 0o644)
	tests := []struct {
		name     string
		flags    []string
		wantCode int
		want     string
	}{
		{name: "no token file", wantCode: 2, want: "--token-file is required"},
		{name: "missing file", flags: []string{"--token-file", filepath.Join(dir, "absent")}, wantCode: 1, want: filepath.Join(dir, "absent")},
		{name: "short token", flags: []string{"--token-file", short}, wantCode: 1, want: "token file " + short + ": token of 15 bytes, want at least 16"},
		{name: "readable by others", flags: []string{"--token-file", open}, wantCode: 1, want: "token file " + open + " has mode 0644: others may read it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &daemon{runtime: t.TempDir()}
			args := append([]string{"serve", "--book", book, "--rank", "0", "--foreground",
				"--mount", filepath.Join(dir, "mnt"), "--log-dir", filepath.Join(dir, "logs"), "--job-id", "job"}, tc.flags...)
			_, stderr, code := d.copperNode(t, args...)
			assert.Equal(t, tc.wantCode, code, "stderr: %s", stderr)
			assert.Contains(t, stderr, tc.want)
			assert.NoDirExists(t, filepath.Join(dir, "mnt"), "nothing mounted")
		})
	}
}
