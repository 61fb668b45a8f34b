package testkit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// ForeignUID is the uid tests give what "another user" made.
const ForeignUID = 2000

// ForeignDirInSharedTmp makes, under top, a shared sticky directory like
// /tmp (shared, mode 1777) holding a directory name that another user
// (ForeignUID) created first, mode 0777 (taken): the predictable name a
// copper path may have to refuse. Needs root, for the chown.
func ForeignDirInSharedTmp(t *testing.T, top, name string) (shared, taken string) {
	t.Helper()
	shared = filepath.Join(top, "tmp")
	require.NoError(t, os.Mkdir(shared, 0o700))
	require.NoError(t, os.Chmod(shared, 0o777|os.ModeSticky))
	taken = filepath.Join(shared, name)
	require.NoError(t, os.Mkdir(taken, 0o777))
	require.NoError(t, os.Chmod(taken, 0o777))
	require.NoError(t, os.Chown(taken, ForeignUID, ForeignUID))
	return shared, taken
}
