package node

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// shippingParent answers a dirplus of /d, held until release closes,
// with /d/f's bytes shipped in it, and a read of /d/f at once; it counts
// the reads it answers.
type shippingParent struct {
	release chan struct{}
	reads   atomic.Int64
	listing atomic.Bool // a dirplus is being answered
}

var shipped = []byte("shipped bytes")

func (p *shippingParent) Call(_ context.Context, o op.Op, path string) (op.Result, error) {
	attr := op.Attr{Mode: 0o100644, Ino: 9, Size: int64(len(shipped)), MtimeNs: 1, CtimeNs: 1}
	switch o {
	case op.DirPlus:
		p.listing.Store(true)
		<-p.release
		return op.Result{Attr: op.Attr{Mode: 0o40755, Ino: 8}, Plus: []op.PlusEntry{
			{Name: "f", Attr: attr, Data: shipped, HasData: true}}}, nil
	case op.Read:
		p.reads.Add(1)
		return op.Result{Attr: attr, Data: shipped}, nil
	case op.IsReady:
		return op.Result{Ready: true}, nil
	}
	return op.Fail(2), nil
}

// TestReadWaitsForItsDirectorysListing: a read that misses while its
// directory's listing is on its way waits for it and is answered from the
// bytes the listing ships, not fetched a second time.
func TestReadWaitsForItsDirectorysListing(t *testing.T) {
	parent := &shippingParent{release: make(chan struct{})}
	n, err := New(Config{Rank: 1, Cache: newCache(), Parent: parent})
	require.NoError(t, err)
	n.MarkRegistered()
	n.setTreeReady()

	listed := make(chan op.Result, 1)
	go func() { listed <- n.Get(t.Context(), op.DirPlus, "/d") }()
	require.Eventually(t, parent.listing.Load, 10*time.Second, time.Millisecond, "the listing is in flight")

	read := make(chan op.Result, 1)
	go func() { read <- n.Get(t.Context(), op.Read, "/d/f") }()
	time.Sleep(20 * time.Millisecond) // the read reaches the wait (or, without it, the parent)
	close(parent.release)

	require.Zero(t, (<-listed).Errno)
	got := <-read
	require.Zero(t, got.Errno)
	assert.Equal(t, shipped, got.Data)
	assert.Zero(t, parent.reads.Load(), "the read waited for the listing that shipped the file")
}
