package service_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/profile"
	"github.com/hpc-copper/copper/report"
)

// A root that loses its answers (here: ioctl 100 clears its caches) goes
// to the backend again; paths_full counts the refetches and doctor names
// the paths, while a second ask answered from the cache is no refetch.
func TestRefetchesNamedByDoctor(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "hot.so"), []byte("elf"), 0o644))
	p := startProfiledNode(t, src, nil)
	n := p.svc.Node()
	ask := func() {
		require.Zero(t, n.Get(t.Context(), op.Getattr, "/hot.so").Errno)
		// Answered by the listing the fetch of hot.so brought: never a fetch.
		require.Equal(t, syscall.ENOENT, n.Get(t.Context(), op.Getattr, "/gone.py").Errno)
	}
	ask()
	ask() // from the cache
	require.NoError(t, p.svc.Profile().Ioctl(profile.IoctlClearCaches, "/"))
	ask() // from the backend again

	require.NoError(t, p.svc.Profile().Snapshot("refetch"))
	full := testkit.ReadCSV(t, p.file("refetch", "profiling_paths_full.csv"), profile.PathsFullHeader)
	refetches := map[string]string{}
	for _, r := range full {
		refetches[r[0]] = r[len(r)-1]
	}
	assert.Equal(t, "1", refetches["/hot.so"])
	assert.Equal(t, "0", refetches["/gone.py"])

	res, err := report.Doctor(t.Context(), p.jobDir, report.DoctorOptions{Source: "refetch"})
	require.NoError(t, err)
	require.Len(t, res.Findings, 1, res.Text())
	f := res.Findings[0]
	assert.Equal(t, report.CheckRefetch, f.Check)
	assert.Equal(t, []string{filepath.Join(src, "hot.so") + ": 1 extra fetch (existing)"}, f.Details)
}
