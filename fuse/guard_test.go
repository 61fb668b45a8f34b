package fuse

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

func TestGuardedViews(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	require.NoError(t, os.Symlink(real, link))

	tests := []struct {
		name     string
		target   string
		prefixes []string
		want     []string
		wantErr  string
	}{
		{"root target sees the mount", "/", []string{"/tmp/cu"}, []string{"/tmp/cu"}, ""},
		{"mount outside target", "/data", []string{"/tmp/cu"}, nil, ""},
		{"mount below target", "/data", []string{"/data/sub/cu"}, []string{"/sub/cu"}, ""},
		{"sibling with common prefix", "/data", []string{"/database/cu"}, nil, ""},
		{"several and duplicates", "/", []string{"/b", "/a", "/b"}, []string{"/a", "/b"}, ""},
		{"target is the mount", "/data", []string{"/data"}, nil, "inside guarded"},
		{"target below the mount", "/data/x", []string{"/data"}, nil, "inside guarded"},
		{"relative guard", "/", []string{"cu"}, nil, "not an absolute path"},
		{"target spelled through a symlink", link, []string{filepath.Join(real, "cu")}, []string{"/cu"}, ""},
		{"guard spelled through a symlink", real, []string{filepath.Join(link, "cu")}, []string{"/cu"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := guardedViews(tt.target, tt.prefixes)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestGuardedAndHidden(t *testing.T) {
	f := &filesystem{guards: []string{"/tmp/cu", "/scratch/other"}}
	tests := []struct {
		view    string
		guarded bool
	}{
		{"/tmp/cu", true},
		{"/tmp/cu/usr/lib", true},
		{"/tmp/cu2", false},
		{"/tmp", false},
		{"/", false},
		{"/scratch/other", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.guarded, f.guarded(tt.view), tt.view)
	}
	assert.True(t, f.hiddenIn("/tmp", "cu"))
	assert.False(t, f.hiddenIn("/tmp", "cu2"))
	assert.False(t, f.hiddenIn("/", "cu"))
	assert.True(t, f.hiddenIn("/scratch", "other"))
}

func TestInodeNumbers(t *testing.T) {
	assert.Equal(t, inodeNumber(5, 42), inodeNumber(5, 42), "stable")
	assert.NotEqual(t, inodeNumber(5, 42), inodeNumber(6, 42), "devices differ")
	assert.NotEqual(t, inodeNumber(5, 42), inodeNumber(5, 43))
	for _, taken := range []uint64{0, rootIno, ^uint64(0)} {
		assert.NotEqual(t, taken, usableIno(taken), "hash %d must be moved", taken)
	}
	assert.Equal(t, uint64(12345), usableIno(12345))
	assert.Equal(t, pathInode("/a/b"), inodeFor(opAttr(0, 0), "/a/b"), "no identity: path hash")
	assert.Equal(t, inodeNumber(1, 2), inodeFor(opAttr(1, 2), "/a/b"))
}

func opAttr(dev, ino uint64) op.Attr { return op.Attr{Dev: dev, Ino: ino} }
