package node

import (
	"github.com/hpc-copper/copper/op"
)

// knownFile is the root's backend.Known: a dirplus ships the small files
// this node already holds from its cache, and leaves out a file whose
// read is in flight (its readers get it from that read), so that the
// backing filesystem reads each file once whichever of a Read and its
// directory's dirplus comes first.
//
// The flight is looked for first: a read's flight stores its answer
// before it leaves, so a read that ends between the two looks is held at
// the second, while the other order would miss it at both and read the
// file again.
func (n *Node) knownFile(path string, attr op.Attr) (data []byte, held, reading bool) {
	reading = n.flight.pending(flightKey(op.Read, path)) != nil
	if r, ok := n.cfg.Cache.Held(path); ok && op.VersionOf(r.Attr).SameBytes(op.VersionOf(attr)) && int64(len(r.Data)) == attr.Size {
		return r.Data, true, false
	}
	return nil, false, reading
}
