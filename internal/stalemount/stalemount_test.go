package stalemount

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Dead and hung FUSE servers are tested in package fuse, which can serve
// one; here, what Clean must leave alone.
func TestCleanLeavesNonFUSEAlone(t *testing.T) {
	dir := t.TempDir()
	tmpfs := filepath.Join(dir, "tmpfs")
	require.NoError(t, os.Mkdir(tmpfs, 0o755))
	require.NoError(t, syscall.Mount("tmpfs", tmpfs, "tmpfs", 0, "size=1m"), "mount tmpfs at %s", tmpfs)
	t.Cleanup(func() { _ = syscall.Unmount(tmpfs, syscall.MNT_DETACH) })

	tests := []struct {
		name, mount string
		wantErr     bool
	}{
		{"nothing mounted", dir, false},
		{"a tmpfs", tmpfs, false},
		{"relative path resolves", ".", false},
		{"missing directory", filepath.Join(dir, "missing"), false},
	}
	for _, tt := range tests {
		cleaned, err := Clean(tt.mount, nil)
		assert.False(t, cleaned, tt.name)
		assert.Equal(t, tt.wantErr, err != nil, "%s: %v", tt.name, err)
	}
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(tmpfs, &st))
	assert.EqualValues(t, 0x01021994, st.Type, "the tmpfs is still mounted")
}

func TestProbeStatfs(t *testing.T) {
	errno, answered := probeStatfs(t.TempDir(), 10e9)
	assert.True(t, answered)
	assert.Zero(t, errno)
	errno, answered = probeStatfs("/no/such/dir", 10e9)
	assert.True(t, answered)
	assert.Equal(t, syscall.ENOENT, errno)
}
