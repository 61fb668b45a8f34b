package fuse

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Files over MaxCacheable are read straight from the host and never reach
// the Source: the mount counts them itself (files, opens, bytes), in both
// open modes, and leaves files the Source serves out.
func TestDirectReadsCounted(t *testing.T) {
	root := makeTree(t)
	big, err := os.ReadFile(filepath.Join(root, "big.bin"))
	require.NoError(t, err)
	for _, handleOpens := range []bool{false, true} {
		t.Run(fmt.Sprintf("handle_opens=%t", handleOpens), func(t *testing.T) {
			m, _ := mountView(t, root, treeMaxCacheable, func(o *Options) { o.HandleOpens = handleOpens })
			assert.Zero(t, m.DirectReads().Files, "nothing read yet")
			got, err := os.ReadFile(filepath.Join(m.Mountpoint(), "big.bin"))
			require.NoError(t, err)
			require.Equal(t, big, got)
			_, err = os.ReadFile(filepath.Join(m.Mountpoint(), "exactly.bin")) // at the limit: through the Source
			require.NoError(t, err)
			_, err = os.ReadFile(filepath.Join(m.Mountpoint(), "a/small.txt"))
			require.NoError(t, err)

			st := m.DirectReads()
			assert.EqualValues(t, 1, st.Files, "only big.bin is over max_cacheable_bytes")
			assert.GreaterOrEqual(t, st.Opens, int64(1))
			assert.GreaterOrEqual(t, st.Bytes, int64(len(big)), "every byte of big.bin came from the host")
			require.Len(t, st.List, 1)
			assert.Equal(t, "/big.bin", st.List[0].Path)
			assert.EqualValues(t, len(big), st.List[0].Size)
			assert.Equal(t, st.Bytes, st.List[0].Bytes)
			assert.Equal(t, st.Opens, st.List[0].Opens)
		})
	}
}

// The list of paths is bounded; the totals still count every file.
func TestDirectReadsBounded(t *testing.T) {
	var r DirectReads
	for i := range maxDirectPaths + 3 {
		f := r.opened(fmt.Sprintf("/f%d", i), 10)
		r.read(f, 10)
	}
	st := r.Stats()
	assert.EqualValues(t, maxDirectPaths+3, st.Files)
	assert.EqualValues(t, 3, st.Dropped)
	assert.EqualValues(t, 10*(maxDirectPaths+3), st.Bytes)
	assert.Len(t, st.List, maxDirectPaths)

	var none *DirectReads // a provider built without counters
	none.read(none.opened("/x", 1), 1)
	assert.Zero(t, none.Stats())
}
