package cache

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

func samplePlus() []op.PlusEntry {
	return []op.PlusEntry{
		{Name: "a.py", Attr: fileAttr(3)},
		{Name: "lib", Attr: op.Attr{Ino: 8, Mode: syscall.S_IFLNK | 0o777}, Target: "../lib64", HasTarget: true},
		{Name: "sub", Attr: op.Attr{Ino: 9, Mode: syscall.S_IFDIR | 0o755}},
	}
}

// A stored dirplus answers getattr, readlink and readdir in the directory,
// and ENOENT for any other name there, with no expiry, even with no
// negative TTL at all.
func TestDirPlusAnswersTheDirectory(t *testing.T) {
	c, clock := newTestCache(t, 1<<20, 0)
	c.Store(op.DirPlus, "/d", op.Result{Plus: samplePlus()})
	clock.Advance(24 * time.Hour)
	tests := []struct {
		name  string
		o     op.Op
		path  string
		hit   bool
		errno syscall.Errno
		check func(t *testing.T, r op.Result)
	}{
		{"getattr of an entry", op.Getattr, "/d/a.py", true, 0, func(t *testing.T, r op.Result) { assert.Equal(t, fileAttr(3), r.Attr) }},
		{"getattr of a link", op.Getattr, "/d/lib", true, 0, func(t *testing.T, r op.Result) { assert.True(t, r.Attr.IsSymlink()) }},
		{"readlink", op.Readlink, "/d/lib", true, 0, func(t *testing.T, r op.Result) { assert.Equal(t, "../lib64", r.Target) }},
		{"readdir", op.Readdir, "/d", true, 0, func(t *testing.T, r op.Result) {
			assert.Equal(t, []op.DirEntry{{Name: "a.py", Mode: syscall.S_IFREG, Ino: 42}, {Name: "lib", Mode: syscall.S_IFLNK, Ino: 8},
				{Name: "sub", Mode: syscall.S_IFDIR, Ino: 9}}, r.Entries)
		}},
		{"dirplus", op.DirPlus, "/d", true, 0, func(t *testing.T, r op.Result) { assert.Equal(t, samplePlus(), r.Plus) }},
		{"absent name: getattr", op.Getattr, "/d/a.so", true, syscall.ENOENT, nil},
		{"absent name: read", op.Read, "/d/a.pyc", true, syscall.ENOENT, nil},
		{"absent name: readdir", op.Readdir, "/d/__pycache__", true, syscall.ENOENT, nil},
		{"absent name: dirplus", op.DirPlus, "/d/x", true, syscall.ENOENT, nil},
		{"listed name, data not held", op.Read, "/d/a.py", false, 0, nil},
		{"below an entry: not listed", op.Getattr, "/d/sub/x", false, 0, nil},
		{"another directory", op.Getattr, "/e/a.py", false, 0, nil},
		{"the directory itself", op.Getattr, "/d", false, 0, nil},
		{"dirplus_next is never cached", op.DirPlusNext, "/d/a.py", false, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := c.Lookup(tc.o, tc.path)
			require.Equal(t, tc.hit, ok)
			assert.Equal(t, tc.errno, r.Errno)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	s := c.Stats()
	assert.EqualValues(t, 4, s.ListingServes)
	assert.Zero(t, s.NegativeServes, "no TTL entry involved")
	checkInvariants(t, c)
}

// A listing from readdir is complete too; it is sorted once stored, so
// the absent-name search works whatever order the source gave.
func TestReaddirListingAnswersAbsentNames(t *testing.T) {
	c, _ := newTestCache(t, 1<<20, 0)
	unsorted := []op.DirEntry{{Name: "z"}, {Name: "b"}, {Name: "m"}}
	c.Store(op.Readdir, "/", op.Result{Entries: unsorted})
	assert.Equal(t, []op.DirEntry{{Name: "z"}, {Name: "b"}, {Name: "m"}}, unsorted, "the caller's slice is not touched")
	for _, tc := range []struct {
		path string
		hit  bool
	}{{"/a", true}, {"/c", true}, {"/zz", true}, {"/b", false}, {"/m", false}, {"/z", false}} {
		r, ok := c.Lookup(op.Getattr, tc.path)
		assert.Equal(t, tc.hit, ok, tc.path)
		if ok {
			assert.Equal(t, syscall.ENOENT, r.Errno, tc.path)
		}
	}
	assert.True(t, c.Listed("/"))
	assert.False(t, c.Listed("/b"))
}

// An entry's attributes dropped or evicted: the dirplus misses (the node
// fetches it again), and the name, still listed, is not ENOENT.
func TestDirPlusMissesWithoutEveryAttr(t *testing.T) {
	c, _ := newTestCache(t, 1<<20, testTTL)
	c.Store(op.DirPlus, "/d", op.Result{Plus: samplePlus()})
	c.Drop("/d/a.py")
	_, ok := c.Lookup(op.DirPlus, "/d")
	assert.False(t, ok)
	_, ok = c.Lookup(op.Getattr, "/d/a.py")
	assert.False(t, ok)
	r, ok := c.Lookup(op.Readdir, "/d")
	assert.True(t, ok)
	assert.Len(t, r.Entries, 3)
}

// A dirplus is charged like the getattrs, readlinks and readdir it
// replaces, and a big one in a small budget keeps the budget.
func TestDirPlusAccounting(t *testing.T) {
	c, _ := newTestCache(t, 1<<20, testTTL)
	c.Store(op.DirPlus, "/d", op.Result{Plus: samplePlus()})
	s := c.Stats()
	assert.Equal(t, 3, s.Metadata.Entries)
	assert.Equal(t, 1, s.Links.Entries)
	assert.Equal(t, 1, s.Tree.Entries)
	want := metaSize("/d/a.py") + metaSize("/d/lib") + metaSize("/d/sub") + linkBytes("/d/lib", "../lib64")
	entries, _ := plusEntries("/d", samplePlus())
	want += treeBytes("/d", entries)
	assert.Equal(t, want, s.Bytes)
	checkInvariants(t, c)

	small, _ := newTestCache(t, 4000, testTTL)
	var big []op.PlusEntry
	for i := range 500 {
		big = append(big, op.PlusEntry{Name: fmt.Sprintf("m%04d.py", i), Attr: fileAttr(int64(i))})
	}
	small.Store(op.DirPlus, "/big", op.Result{Plus: big})
	checkInvariants(t, small)
	assert.NotZero(t, small.Stats().Metadata.Evictions+small.Stats().Rejected)
}
