package osutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckPath lays out directories of "you" (uid 1000), another user
// (uid 2000) and root, and checks which paths each trust level accepts.
func TestCheckPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to other uids")
	}
	const you, other = 1000, 2000
	top := t.TempDir()
	mk := func(rel string, mode os.FileMode, uid int) string {
		p := filepath.Join(top, rel)
		require.NoError(t, os.Mkdir(p, 0o700))
		require.NoError(t, os.Chmod(p, mode))
		require.NoError(t, os.Lchown(p, uid, uid))
		return p
	}
	link := func(rel, target string, uid int) string {
		p := filepath.Join(top, rel)
		require.NoError(t, os.Symlink(target, p))
		require.NoError(t, os.Lchown(p, uid, uid))
		return p
	}
	mk("tmp", 0o777|os.ModeSticky, 0)  // like /tmp
	mk("tmp/you", 0o755, you)          // yours, in /tmp
	mk("tmp/you/mnt", 0o755, you)      //
	mk("tmp/taken", 0o777, other)      // /tmp/$USER created first by another user
	mk("tmp/taken/mnt", 0o755, you)    //
	mk("open", 0o777, 0)               // everyone may write, no sticky bit
	mk("open/mnt", 0o755, you)         //
	mk("proj", 0o2770, other)          // a project directory of another user
	mk("proj/logs", 0o755, you)        //
	mk("tmp/you/theirs", 0o755, other) // last component of another user
	link("tmp/you/good", "mnt", you)   // relative, stays in yours
	link("tmp/you/bad", "../taken/mnt", you)
	link("tmp/hers", filepath.Join(top, "tmp/you/mnt"), other) // planted in /tmp

	tests := []struct {
		path       string
		group, own string // "" when accepted, else part of the error
	}{
		{"tmp/you/mnt", "", ""},
		{"tmp/you/good", "", ""},
		{"tmp/you/mnt/../mnt", "", ""},
		{"tmp/taken/mnt", "another user created it first", "not to you"},
		{"tmp/you/bad", "another user created it first", "not to you"},
		{"tmp/hers", "another user created it first", "another user created it first"},
		{"open/mnt", "without the sticky bit", "without the sticky bit"},
		{"proj/logs", "", "belongs to uid 2000"},
		{"tmp/you/theirs", "", "belongs to uid 2000"},
	}
	for _, tt := range tests {
		p := filepath.Join(top, tt.path)
		for _, c := range []struct {
			trust PathTrust
			want  string
		}{{TrustGroup, tt.group}, {TrustSelf, tt.own}} {
			err := CheckPath(p, you, c.trust)
			if c.want == "" {
				assert.NoError(t, err, "%s trust %d", tt.path, c.trust)
			} else if assert.Error(t, err, "%s trust %d", tt.path, c.trust) {
				assert.Contains(t, err.Error(), c.want, "%s trust %d", tt.path, c.trust)
			}
		}
	}
	assert.ErrorIs(t, CheckPath(filepath.Join(top, "missing"), you, TrustSelf), fs.ErrNotExist)
	assert.ErrorContains(t, CheckPath("rel/path", you, TrustSelf), "not an absolute path")
	loop := link("loop", "loop", 0)
	assert.ErrorContains(t, CheckPath(loop, you, TrustSelf), "too many symbolic links")
}
