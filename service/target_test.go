package service_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/service"
	"github.com/hpc-copper/copper/tree"
)

// A root whose target is not a directory refuses to start, naming the
// path, instead of reporting tree-ready and mounting an unusable view.
func TestStartRefusesTargetThatIsNotADirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	require.NoError(t, os.Symlink(file, filepath.Join(dir, "tofile")))
	cases := []struct{ name, target, want string }{
		{"regular file", file, "rank 0: target " + file + ": not a directory"},
		{"missing", filepath.Join(dir, "nope"), "rank 0: target " + dir + "/nope: no such file or directory"},
		{"symlink to a file", filepath.Join(dir, "tofile"), "rank 0: target " + dir + "/tofile (a symlink to " + file + "): not a directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := config.Load("local")
			require.NoError(t, err)
			s.Target = tc.target
			s.Mount = filepath.Join(t.TempDir(), "mnt")
			s.CacheMemoryBytes = 1 << 20
			svc, err := service.Start(t.Context(), s,
				service.Identity{Book: []tree.Entry{{Host: "localhost", Endpoint: "127.0.0.1:0"}}, Token: []byte("a job token of 32 bytes, for tests")}, service.Options{})
			if svc != nil {
				_ = svc.Stop(t.Context())
			}
			assert.EqualError(t, err, tc.want)
			assert.NoDirExists(t, s.Mount, "nothing was mounted")
		})
	}
}
