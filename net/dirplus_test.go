package net

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// bigListing is n sorted entries of about 100-byte names.
func bigListing(n int) []op.PlusEntry {
	out := make([]op.PlusEntry, n)
	for i := range out {
		out[i] = op.PlusEntry{Name: fmt.Sprintf("%05d-%s", i, strings.Repeat("n", 94)), Attr: op.Attr{Ino: uint64(i), Mode: syscall.S_IFREG}}
	}
	return out
}

// listingHandler answers dirplus of "/d" with all, dirplus_next with what
// follows the name, as node.Get does; skipAfter makes it a broken peer
// that answers every page from the start.
func listingHandler(all []op.PlusEntry, skipAfter bool, nexts *atomic.Int64) Handler {
	return func(_ context.Context, o op.Op, path string) op.Result {
		switch o {
		case op.DirPlus:
			return op.Result{Plus: all}
		case op.DirPlusNext:
			nexts.Add(1)
			after := path[strings.LastIndexByte(path, '/')+1:]
			if skipAfter {
				return op.Result{Plus: all}
			}
			i, found := slices.BinarySearchFunc(all, after, func(e op.PlusEntry, n string) int { return strings.Compare(e.Name, n) })
			if found {
				i++
			}
			return op.Result{Plus: all[i:]}
		}
		return op.Fail(syscall.ENOSYS)
	}
}

// A listing larger than a frame arrives whole through Call, in pages that
// each fit the frame cap.
func TestDirPlusPagesReassemble(t *testing.T) {
	tests := []struct {
		name     string
		entries  int
		maxFrame int64
		pages    int64 // dirplus_next requests
	}{
		{"one page", 10, 68 << 10, 0},
		{"empty", 0, 68 << 10, 0},
		{"pages of an 8 KiB frame", 500, 8 << 10, -1},
		{"pages of a 64 KiB frame", 5000, 68 << 10, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			all := bigListing(tc.entries)
			var nexts atomic.Int64
			srv := startServer(t, listingHandler(all, false, &nexts), Config{MaxFrame: tc.maxFrame})
			c := dial(t, srv.Addr(), Config{MaxFrame: tc.maxFrame})
			got, err := c.Call(t.Context(), op.DirPlus, "/d")
			require.NoError(t, err)
			require.True(t, got.OK())
			assert.False(t, got.More)
			assert.Equal(t, all, append([]op.PlusEntry{}, got.Plus...))
			want := tc.pages
			if want < 0 { // entries of one size: pages of a fixed count
				perPage := (int(tc.maxFrame) - 4 - PlusPageSize(nil)) / PlusEntrySize(all[0])
				want = int64((tc.entries+perPage-1)/perPage - 1)
				require.Positive(t, want, "the test must page")
			}
			assert.Equal(t, want, nexts.Load(), "dirplus_next requests")
		})
	}
}

// A peer whose next page does not continue after the last name would loop
// a client forever: Call fails with a protocol violation instead.
func TestDirPlusPageThatDoesNotAdvanceFails(t *testing.T) {
	var nexts atomic.Int64
	srv := startServer(t, listingHandler(bigListing(500), true, &nexts), Config{MaxFrame: 8 << 10})
	c := dial(t, srv.Addr(), Config{MaxFrame: 8 << 10})
	_, err := c.Call(t.Context(), op.DirPlus, "/d")
	require.ErrorIs(t, err, ErrProtocol)
	assert.ErrorContains(t, err, "not after")
	assert.EqualValues(t, 1, nexts.Load())
}
