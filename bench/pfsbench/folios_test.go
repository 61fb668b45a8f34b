package pfsbench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestFolioText(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes map[int]int // folio pages → pages
		want  string
	}{
		{"all small", map[int]int{1: 4096}, "100% in 4 KiB folios"},
		{"mixed", map[int]int{512: 9000, 16: 990, 1: 10}, "90% in 2 MiB folios, 10% in 64 KiB, 0.1% in other sizes"},
		{"cut by the end", map[int]int{3: 3}, "100% in 12 KiB folios"},
		{"none", map[int]int{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, folioText(folioShares(tc.sizes)))
		})
	}
}

// TestFolioCensusCoversTheMapping: the census of a touched mapping
// accounts for every page of it, whatever sizes the kernel chose.
func TestFolioCensusCoversTheMapping(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("page frames and their flags are root's to read")
	}
	const size = 8<<20 + 3*4096
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, make([]byte, size), 0o644))
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer func() { require.NoError(t, unix.Munmap(m)) }()
	var x byte
	for i := 0; i < len(m); i += 4096 {
		x ^= m[i]
	}
	require.Zero(t, x)
	shares, err := folioCensus(m)
	require.NoError(t, err)
	require.NotEmpty(t, shares)
	total := 0.0
	for i, s := range shares {
		assert.Positive(t, s.FolioBytes)
		if i > 0 {
			assert.Less(t, s.FolioBytes, shares[i-1].FolioBytes, "largest first")
		}
		total += s.Share
	}
	assert.InDelta(t, 1, total, 1e-9)
}
