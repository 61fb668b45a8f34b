package fuse

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// A file read directly that a writer rewrites in place: a read that lands
// between the truncate and the write finds the file empty, and the view
// then shows this host's stat of the file instead of the tree's. That
// stat is taken when the view answers, not kept from the failed read:
// kept, the empty file would stand for the rewritten one for good (a file
// of size 0 sends no READ that could find it changed again). make test
// once caught the kept one: the next open read 0 bytes of a 267144-byte
// file.
func TestHostStatIsNotKeptFromMidWrite(t *testing.T) {
	target := t.TempDir()
	host := filepath.Join(target, "f.bin")
	v1 := pattern(1, versionSize)
	require.NoError(t, os.WriteFile(host, v1, 0o644))
	v := mountVersionView(t, target, versionLargeMax, 64<<10, true, false)
	readPrefix(t, v.at("f.bin"), v1)
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(host, &st))
	tree := op.Result{Attr: op.AttrFromStat(&st)} // what the tree keeps answering

	// The writer has truncated and not yet written when a read finds the
	// file changed.
	require.NoError(t, os.Truncate(host, 0))
	f := v.m.fsys
	f.noteHostNewer(&node{path: "/f.bin", attr: tree.Attr})
	assert.Zero(t, f.hostAdjusted("/f.bin", tree).Attr.Size, "midway: the file is empty on this host")

	// The writer finishes: the view shows the rewritten file.
	v2 := pattern(3, versionSize+5000)
	writeInPlace(t, host, v2, 0)
	got := f.hostAdjusted("/f.bin", tree)
	require.Zero(t, got.Errno)
	assert.EqualValues(t, len(v2), got.Attr.Size, "this host's stat now, not the one of the failed read")
	assert.Equal(t, tree.Attr.Dev, got.Attr.Dev, "the view's inode numbers stay the tree's")

	// Gone on this host: the view says so.
	require.NoError(t, os.Remove(host))
	assert.Equal(t, syscall.ENOENT, f.hostAdjusted("/f.bin", tree).Errno)
}
