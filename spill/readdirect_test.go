package spill

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadFile: reads of a chunk file, direct or (a file system without
// O_DIRECT) buffered, return exactly the file's bytes at any offset and
// length, into page-aligned buffers or not, short only at its end.
func TestReadFile(t *testing.T) {
	const size = 3*directPiece + 3*directAlign + 123
	want := pattern("f", 1, size)
	name := filepath.Join(t.TempDir(), "chunk")
	require.NoError(t, os.WriteFile(name, want, 0o600))
	cases := []struct{ pos, n int }{
		{0, size}, {0, directAlign}, {0, 1}, {1, directAlign}, {directAlign, directPiece},
		{directAlign - 1, directPiece + 2}, {directPiece, 2*directPiece + 5}, {size - 10, 10},
		{size - 10, 100}, {size, 10}, {size - directAlign, directAlign}, {123, size},
	}
	for _, buffered := range []bool{false, true} {
		s := Open(Config{})
		s.direct.off.Store(buffered)
		for _, shift := range []int{0, 7} {
			for _, c := range cases {
				t.Run(fmt.Sprintf("buffered=%v/shift=%d/%d+%d", buffered, shift, c.pos, c.n), func(t *testing.T) {
					raw := make([]byte, c.n+2*directAlign)
					start := (directAlign-int(uintptrOf(raw)%directAlign))%directAlign + shift
					dest := raw[start : start+c.n]
					n, err := s.readFile(name, dest, int64(c.pos))
					end := min(c.pos+c.n, size)
					require.Equal(t, end-c.pos, n)
					if end-c.pos < c.n {
						assert.True(t, errors.Is(err, io.EOF), "short at the end: %v", err)
					} else {
						assert.NoError(t, err)
					}
					assert.True(t, bytes.Equal(want[c.pos:end], dest[:n]), "bytes %d+%d", c.pos, c.n)
				})
			}
		}
	}
	_, err := Open(Config{}).readFile(filepath.Join(t.TempDir(), "missing"), make([]byte, 1), 0)
	assert.True(t, errors.Is(err, os.ErrNotExist))
}
