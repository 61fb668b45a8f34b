package op

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFuseOpTable(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range FuseOps {
		assert.False(t, seen[name], "%s listed twice", name)
		seen[name] = true
	}
	for name, want := range map[string]Op{
		FuseGetattr: Getattr, FuseReaddir: Readdir, FuseReadlink: Readlink, FuseRead: Read,
		"dirplus": DirPlus, "dirplus_next": DirPlusNext, "chunk": Chunk, FuseLookup: 0, FuseOpen: 0, "nonsense": 0,
	} {
		assert.Equal(t, want, FuseOpOf(name), name)
	}
	order := ProfileRowOrder()
	assert.Equal(t, FuseOps[:], order[:len(FuseOps)])
	assert.Equal(t, []string{"dirplus", "dirplus_next", "chunk"}, order[len(FuseOps):])
	order[0] = "changed"
	assert.Equal(t, FuseGetattr, FuseOps[0], "a fresh slice")
}
