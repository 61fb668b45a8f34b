package service

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"

	"github.com/hpc-copper/copper/config"
)

// TestMountRefusesADirectoryAnotherUserControls: the default mount
// /tmp/$USER/copper sits in a sticky shared directory where another user
// can create /tmp/$USER first. Its owner could then rename it away (a
// mount point's parent can be renamed) and put a directory of their own
// files in its place, which the job would import and run. The node must
// refuse such a mount directory before it mounts anything.
func TestMountRefusesADirectoryAnotherUserControls(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another uid")
	}
	_, taken := testkit.ForeignDirInSharedTmp(t, t.TempDir(), "user")

	svc := &Service{log: slog.New(slog.DiscardHandler)}
	s := config.Default()
	s.Mount = filepath.Join(taken, "copper")
	err := svc.mount(s, 3, nil)
	if svc.mounted != nil { // without the check, a view with no source
		_ = svc.mounted.Unmount()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rank 3: mount directory "+s.Mount)
	assert.Contains(t, err.Error(), "belongs to uid 2000")
	assert.Nil(t, svc.mounted)
}
