package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/op"
)

// The root's dirplus does not read a file again that the root holds or is
// reading: the backing filesystem reads each small file once per tree
// whichever of a Read and its directory's listing comes first.
func TestRootDirPlusReadsEachFileOnce(t *testing.T) {
	tests := []struct {
		name     string
		before   func(t *testing.T, n *Node) (release func())
		wantData bool  // x ships with the listing
		wantRead int64 // backend reads by the end, x's read included
	}{
		{"nothing held: x read by the dirplus", func(*testing.T, *Node) func() { return func() {} }, true, 2},
		{"x read before: shipped from the cache", func(t *testing.T, n *Node) func() {
			require.True(t, n.Get(context.Background(), op.Read, "/d/x").OK())
			return func() {}
		}, true, 2},
		{"x being read: listed without content", func(t *testing.T, n *Node) func() {
			// A read of x in the air at the root, held until the listing is
			// answered, then stored as the node's own reads are.
			gate := make(chan struct{})
			f, _ := n.flight.do(flightKey(op.Read, "/d/x"), func() op.Result {
				<-gate
				r := n.fetch(context.Background(), time.Time{}, op.Read, "/d/x")
				n.cfg.Cache.Store(op.Read, "/d/x", r)
				return r
			})
			return func() { close(gate); <-f.done }
		}, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, be, _ := rootShippingDir(t)

			release := tt.before(t, n)
			r := n.Get(context.Background(), op.DirPlus, "/d")
			release()
			require.True(t, r.OK(), "%v", r.Errno)
			require.Len(t, r.Plus, 2)
			assert.Equal(t, tt.wantData, r.Plus[0].HasData, "x")
			if tt.wantData {
				assert.Equal(t, "content of x", string(r.Plus[0].Data))
			}
			assert.True(t, r.Plus[1].HasData, "y")
			read := n.Get(context.Background(), op.Read, "/d/x")
			require.True(t, read.OK())
			assert.Equal(t, "content of x", string(read.Data))
			assert.Equal(t, tt.wantRead, be.Ops(op.Read), "backend reads: x once, y once")
		})
	}
}

// A read of x that passed its awaitListing just before x's directory's
// listing began (nothing to wait for then) and reaches its flight once
// the listing has read x, but not stored it yet, waits for that listing
// instead of reading x a second time at the root.
func TestRootReadAfterListingBeganReadsOnce(t *testing.T) {
	n, be, _ := rootShippingDir(t)

	// The listing's flight, as dirPlusFlight runs it, held between the
	// backend's answer (x and y read) and the store.
	gate, fetched := make(chan struct{}), make(chan struct{})
	listing, _ := n.flight.do(flightKey(op.DirPlus, "/d"), func() op.Result {
		r := n.fetch(context.Background(), time.Time{}, op.DirPlus, "/d")
		close(fetched)
		<-gate
		n.cfg.Cache.Store(op.DirPlus, "/d", r)
		return r
	})
	<-fetched
	require.EqualValues(t, 2, be.Ops(op.Read), "the listing read x and y")

	read := make(chan op.Result, 1)
	go func() { read <- n.getFlight(context.Background(), op.Read, "/d/x") }()
	time.Sleep(20 * time.Millisecond) // the read reaches its flight (and, without the wait, the backend)
	close(gate)
	<-listing.done

	got := <-read
	require.Zero(t, got.Errno)
	assert.Equal(t, "content of x", string(got.Data))
	assert.EqualValues(t, 2, be.Ops(op.Read), "x read once, by the listing")
}

// A file replaced while the root reads it, and listed meanwhile: the
// listing (the new version's stat, no content, the read being in flight)
// is stored after the read (the old version's bytes). The root must not
// then answer a Getattr with the new version and a Read with the old
// one: every node below would find the bytes of another version than the
// stat and fail the read with EIO, for as long as the root kept them.
func TestRootListingAfterReplaceDropsTheOldBytes(t *testing.T) {
	n, _, dir := rootShippingDir(t)
	x := filepath.Join(dir, "d", "x")
	require.NoError(t, os.WriteFile(x, []byte("old content"), 0o644))

	// held runs a flight as the node does (fetch, store), held between
	// the two until its gate closes.
	held := func(o op.Op, path string) (chan struct{}, chan struct{}, *flight) {
		fetched, gate := make(chan struct{}), make(chan struct{})
		f, _ := n.flight.do(flightKey(o, path), func() op.Result {
			r := n.fetch(context.Background(), time.Time{}, o, path)
			close(fetched)
			<-gate
			n.cfg.Cache.Store(o, path, r)
			return r
		})
		return fetched, gate, f
	}
	readFetched, readGate, read := held(op.Read, "/d/x")
	<-readFetched // the old version read
	tmp := filepath.Join(dir, "d", ".x.new")
	require.NoError(t, os.WriteFile(tmp, []byte("new content"), 0o644))
	require.NoError(t, os.Rename(tmp, x))
	listFetched, listGate, listing := held(op.DirPlus, "/d")
	<-listFetched // the new version listed, without content: x is being read
	close(readGate)
	<-read.done
	close(listGate)
	<-listing.done

	attr := n.Get(context.Background(), op.Getattr, "/d/x")
	require.True(t, attr.OK())
	got := n.Get(context.Background(), op.Read, "/d/x")
	require.True(t, got.OK())
	assert.True(t, op.VersionOf(got.Attr).SameBytes(op.VersionOf(attr.Attr)),
		"read answers %+v, getattr %+v", op.VersionOf(got.Attr), op.VersionOf(attr.Attr))
	assert.Equal(t, "new content", string(got.Data))
}

// rootShippingDir is a root over a directory d of two small files, x and
// y, whose dirplus ships files of up to 4 KiB.
func rootShippingDir(t *testing.T) (n *Node, be *backend.Backend, dir string) {
	t.Helper()
	dir = t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	for _, name := range []string{"x", "y"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "d", name), []byte("content of "+name), 0o644))
	}
	n, be = rootOver(t, backend.Config{Target: dir, Parallel: 4, MaxCacheable: 1 << 20, DirFiles: 4096}, nil)
	return n, be, dir
}
