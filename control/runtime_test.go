package control

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRuntimeDirChecks(t *testing.T) {
	uid := strconv.Itoa(os.Getuid())
	tests := []struct {
		name string
		xdg  bool
		// prepare makes the directory bad and returns it.
		prepare func(t *testing.T, base string) string
		want    string // "" = accepted
	}{
		{"xdg fresh", true, func(t *testing.T, base string) string { return "" }, ""},
		{"tmp fresh", false, func(t *testing.T, base string) string { return "" }, ""},
		{"xdg existing 0700", true, func(t *testing.T, base string) string {
			return mkdir(t, filepath.Join(base, "copper"), 0o700)
		}, ""},
		{"xdg other owner", true, func(t *testing.T, base string) string {
			d := mkdir(t, filepath.Join(base, "copper"), 0o700)
			require.NoError(t, os.Chown(d, 65534, 65534))
			return d
		}, "is owned by uid 65534"},
		{"xdg group-writable", true, func(t *testing.T, base string) string {
			return mkdir(t, filepath.Join(base, "copper"), 0o770)
		}, "has mode 0770, writable by group or others"},
		{"xdg symlink", true, func(t *testing.T, base string) string {
			d := filepath.Join(base, "copper")
			require.NoError(t, os.Symlink(t.TempDir(), d))
			return d
		}, "is a symlink"},
		{"xdg a file", true, func(t *testing.T, base string) string {
			d := filepath.Join(base, "copper")
			require.NoError(t, os.WriteFile(d, nil, 0o600))
			return d
		}, "is not a directory"},
		{"tmp base world-writable", false, func(t *testing.T, base string) string {
			return mkdir(t, filepath.Join(base, "copper-"+uid), 0o777)
		}, "writable by group or others"},
		{"tmp base symlink", false, func(t *testing.T, base string) string {
			d := filepath.Join(base, "copper-"+uid)
			require.NoError(t, os.Symlink(t.TempDir(), d))
			return d
		}, "is a symlink"},
		{"xdg itself another user's in a shared directory", true, func(t *testing.T, base string) string {
			shared := mkdir(t, filepath.Join(base, "tmp"), 0o777|os.ModeSticky)
			xdg := mkdir(t, filepath.Join(shared, "xdg"), 0o777)
			require.NoError(t, os.Chown(xdg, 65534, 65534))
			t.Setenv("XDG_RUNTIME_DIR", xdg)
			return mkdir(t, filepath.Join(xdg, "copper"), 0o700) // ours, in theirs
		}, "belongs to uid 65534"},
		{"tmp run other owner", false, func(t *testing.T, base string) string {
			mkdir(t, filepath.Join(base, "copper-"+uid), 0o700)
			d := mkdir(t, filepath.Join(base, "copper-"+uid, "run"), 0o700)
			require.NoError(t, os.Chown(d, 65534, 65534))
			return d
		}, "is owned by uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			if tt.xdg {
				t.Setenv("XDG_RUNTIME_DIR", base)
			} else {
				t.Setenv("XDG_RUNTIME_DIR", "")
				t.Setenv("TMPDIR", base)
			}
			bad := tt.prepare(t, base)
			if tt.want != "" {
				require.ErrorContains(t, CheckRuntimeDir(), "runtime directory "+bad)
				_, err := MakeRuntimeDir()
				require.ErrorContains(t, err, "runtime directory "+bad)
				require.ErrorContains(t, err, tt.want)
				_, err = LockMount(t.TempDir())
				require.ErrorContains(t, err, tt.want, "no lock in a bad directory")
				_, err = Listen(t.TempDir(), nil)
				require.ErrorContains(t, err, tt.want, "no socket in a bad directory")
				require.ErrorContains(t, Call(t.Context(), t.TempDir(), Request{Cmd: "stats"}, nil), tt.want,
					"no call into a bad directory")
				return
			}
			require.NoError(t, CheckRuntimeDir())
			dir, err := MakeRuntimeDir()
			require.NoError(t, err)
			assert.Equal(t, RuntimeDir(), dir)
			fi, err := os.Stat(dir)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
		})
	}
}

func mkdir(t *testing.T, d string, mode os.FileMode) string {
	t.Helper()
	require.NoError(t, os.Mkdir(d, mode))
	require.NoError(t, os.Chmod(d, mode))
	return d
}
