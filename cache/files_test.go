package cache

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

func shippedPlus() []op.PlusEntry {
	return []op.PlusEntry{
		{Name: "a.pyc", Attr: op.Attr{Ino: 1, Mode: syscall.S_IFREG | 0o644, Size: 3}, Data: []byte("abc"), HasData: true},
		{Name: "big.so", Attr: op.Attr{Ino: 2, Mode: syscall.S_IFREG | 0o755, Size: 1 << 20}},
		{Name: "empty", Attr: op.Attr{Ino: 3, Mode: syscall.S_IFREG | 0o644}, Data: []byte{}, HasData: true},
	}
}

// Files that come with a dirplus answer Read from the cache, are counted
// (stored, bytes, read once, never read), and go on with the dirplus this
// cache assembles for a child; a file only a Read fetched does not.
func TestDirPlusShipsFiles(t *testing.T) {
	c, _ := newTestCache(t, 1<<20, 0)
	c.Store(op.DirPlus, "/d", op.Result{Plus: shippedPlus()})
	assert.Equal(t, DirFileStats{Stored: 2, Bytes: 3, Unread: 2}, c.Stats().DirFiles)

	r, ok := c.Lookup(op.Read, "/d/a.pyc")
	require.True(t, ok, "a shipped file is read from the cache")
	assert.Equal(t, []byte("abc"), r.Data)
	assert.Equal(t, shippedPlus()[0].Attr, r.Attr)
	_, ok = c.Lookup(op.Read, "/d/a.pyc")
	require.True(t, ok)
	_, ok = c.Lookup(op.Read, "/d/big.so")
	assert.False(t, ok, "a file that did not come with the listing is not held")
	assert.Equal(t, DirFileStats{Stored: 2, Bytes: 3, Read: 1, Unread: 1}, c.Stats().DirFiles, "a second read counts nothing")

	got, ok := c.Lookup(op.DirPlus, "/d")
	require.True(t, ok)
	assert.Equal(t, shippedPlus(), got.Plus, "the child's dirplus carries the shipped files")

	// A file a Read fetched is the child's own Read to make.
	c.Store(op.Read, "/d/big.so", op.Result{Attr: shippedPlus()[1].Attr, Data: bytes.Repeat([]byte{1}, 1<<20)})
	got, ok = c.Lookup(op.DirPlus, "/d")
	require.True(t, ok)
	assert.False(t, got.Plus[1].HasData)

	// Evicted or dropped content leaves the entry without it.
	c.Drop("/d/a.pyc")
	c.Store(op.Getattr, "/d/a.pyc", op.Result{Attr: shippedPlus()[0].Attr})
	got, ok = c.Lookup(op.DirPlus, "/d")
	require.True(t, ok)
	assert.False(t, got.Plus[0].HasData)
	assert.True(t, got.Plus[2].HasData)
}

// Shipped content is charged to the budget like a Read's and evicted
// first: a directory whose files exceed the budget keeps its listing.
func TestDirPlusFilesWithinBudget(t *testing.T) {
	const budget = 64 << 10
	c, _ := newTestCache(t, budget, 0)
	var plus []op.PlusEntry
	for i := range 20 {
		data := bytes.Repeat([]byte{byte(i)}, 8<<10)
		plus = append(plus, op.PlusEntry{Name: string(rune('a' + i)), Attr: op.Attr{Ino: uint64(i + 1), Mode: syscall.S_IFREG, Size: int64(len(data))}, Data: data, HasData: true})
	}
	c.Store(op.DirPlus, "/d", op.Result{Plus: plus})
	st := c.Stats()
	assert.LessOrEqual(t, st.Bytes, int64(budget))
	assert.Less(t, st.Data.Entries, 20, "some content was evicted")
	assert.Positive(t, st.Data.Evictions)
	assert.True(t, c.Listed("/d"), "the listing stays")
	_, ok := c.Lookup(op.Getattr, "/d/t")
	assert.True(t, ok)
}

// Held answers a held file's bytes and stat without counting a hit, a
// miss or a read of a shipped file, and nothing for a file not held
// (whatever else is cached about it).
func TestHeldCountsNothing(t *testing.T) {
	c, _ := newTestCache(t, 1<<20, 0)
	c.Store(op.DirPlus, "/d", op.Result{Plus: shippedPlus()})
	before := c.Stats()

	r, ok := c.Held("/d/a.pyc")
	require.True(t, ok)
	assert.Equal(t, []byte("abc"), r.Data)
	assert.Equal(t, shippedPlus()[0].Attr, r.Attr)
	_, ok = c.Held("/d/big.so")
	assert.False(t, ok, "listed, not held")
	_, ok = c.Held("/d/missing")
	assert.False(t, ok, "absent from the listing")
	assert.Equal(t, before, c.Stats(), "Held counts nothing")
}

// A stat of another version than a held file's bytes, stored by a
// Getattr or with a listing, drops the bytes: a Read never answers with
// another version than a Getattr. A stat of the same version (atime
// moved, another st_dev) keeps them.
func TestNewerStatDropsOtherVersionsBytes(t *testing.T) {
	v1 := op.Attr{Ino: 1, Mode: syscall.S_IFREG | 0o644, Size: 3, MtimeNs: 10, CtimeNs: 10}
	v2 := v1
	v2.Ino, v2.CtimeNs = 2, 20
	same := v1
	same.AtimeNs, same.Dev = 99, 7
	for _, tc := range []struct {
		name  string
		store func(c *Cache, a op.Attr)
	}{
		{"getattr", func(c *Cache, a op.Attr) { c.Store(op.Getattr, "/d/f", op.Result{Attr: a}) }},
		{"dirplus", func(c *Cache, a op.Attr) {
			c.Store(op.DirPlus, "/d", op.Result{Plus: []op.PlusEntry{{Name: "f", Attr: a}}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCache(t, 1<<20, 0)
			c.Store(op.Read, "/d/f", op.Result{Attr: v1, Data: []byte("old")})
			tc.store(c, same)
			r, ok := c.Lookup(op.Read, "/d/f")
			require.True(t, ok, "the same version keeps its bytes")
			assert.Equal(t, "old", string(r.Data))
			tc.store(c, v2)
			_, ok = c.Lookup(op.Read, "/d/f")
			assert.False(t, ok, "another version's bytes are gone")
			r, ok = c.Lookup(op.Getattr, "/d/f")
			require.True(t, ok)
			assert.Equal(t, v2, r.Attr)
		})
	}
}
