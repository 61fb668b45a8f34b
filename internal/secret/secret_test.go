package secret

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	good := write("good", []byte("a secret of some length"), 0o600)
	tests := []struct {
		name, path, want string
	}{
		{"ok", good, ""},
		{"group readable", write("g", []byte("x"), 0o640), "has mode 0640: others may read it; FIX"},
		{"world readable", write("w", []byte("x"), 0o604), "has mode 0604"},
		{"too large", write("big", make([]byte, 65), 0o600), "larger than 64 bytes"},
		{"a directory", dir, "is not a regular file"},
		{"missing", filepath.Join(dir, "absent"), "no such file or directory"},
		{"a FIFO fails at once", func() string {
			p := filepath.Join(dir, "fifo")
			require.NoError(t, syscall.Mkfifo(p, 0o600))
			return p
		}(), "is not a regular file"},
		{"a symlink to ours is read through", func() string {
			p := filepath.Join(dir, "link")
			require.NoError(t, os.Symlink(good, p))
			return p
		}(), ""},
	}
	if os.Geteuid() == 0 {
		theirs := write("theirs", []byte("x"), 0o600)
		require.NoError(t, os.Chown(theirs, 65534, 65534))
		tests = append(tests, struct{ name, path, want string }{"owned by another user", theirs, "is owned by uid 65534, not by this user"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Read(tt.path, "test file", 64, "FIX")
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, "a secret of some length", string(b))
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "test file")
		})
	}
}
