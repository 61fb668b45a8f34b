package testkit

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(root, "go.mod"))
	assert.DirExists(t, filepath.Join(root, "internal", "testkit"))
}

func TestBuildBinaries(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, BuildBinaries(dir, "./internal/testkit/testdata/hello"))
	r, err := RunBounded(exec.Command(filepath.Join(dir, "hello")), time.Minute)
	require.NoError(t, err)
	assert.Equal(t, Result{Stdout: "hello from testkit\n"}, r)

	err = BuildBinaries(dir, "./internal/testkit/testdata/no-such-command")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "go build ./internal/testkit/testdata/no-such-command in ")
}
