package pfsbench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bench/replay"
	"github.com/hpc-copper/copper/prefetch"
)

func TestManifestViews(t *testing.T) {
	tests := []struct {
		name string
		ops  []replay.Op
		want []string
	}{
		{"no paths", []replay.Op{{Kind: replay.Close, FD: 3}}, []string{}},
		{"prefix itself is not listed", []replay.Op{{Kind: replay.Stat, Path: "/"}}, []string{}},
		{"directories above a path, each once, sorted",
			[]replay.Op{
				{Kind: replay.Open, Path: "/site/pkg/mod.py"},
				{Kind: replay.Stat, Path: "/site/pkg/mod.py"},
				{Kind: replay.Stat, Path: "/site/a.py"},
				{Kind: replay.Read, FD: 3},
			},
			[]string{"/site", "/site/a.py", "/site/pkg", "/site/pkg/mod.py"}},
		{"missing paths stay: prefetching caches the miss",
			[]replay.Op{{Kind: replay.Stat, Path: "/site/absent.so", Errno: 2}},
			[]string{"/site", "/site/absent.so"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, manifestViews(&replay.Trace{Prefix: "/pfs", Ops: tt.ops}))
		})
	}
}

// TestWriteManifest checks that prefetch's own parser reads back every
// host path, odd names included.
func TestWriteManifest(t *testing.T) {
	views := []string{"/site", "/site/a b.py", "/site/new\nline", "/site/#hash", "/site/\"quoted", "/site/bad\xff"}
	file := filepath.Join(t.TempDir(), manifestFile)
	require.NoError(t, writeManifest(file, "/mnt/pfs0", views))
	f, err := os.Open(file)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	var got []string
	sc := prefetch.NewScanner(f, file)
	for sc.Scan() {
		e := sc.Entry()
		require.NoError(t, e.Err)
		got = append(got, e.Path)
	}
	require.NoError(t, sc.Err())
	want := make([]string, len(views))
	for i, v := range views {
		want[i] = "/mnt/pfs0" + v
	}
	assert.Equal(t, want, got)
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Contains(t, string(raw), "\n/mnt/pfs0/site/a b.py\n", "plain names stay unquoted")
}
