package backend

import (
	"sync/atomic"

	"github.com/hpc-copper/copper/op"
)

// DirFilesTotal bounds the file bytes one dirplus answer carries: a
// directory of many small files does not make one answer (and the
// listing every hop holds while it forwards it) arbitrarily large. The
// wire pages it by MaxPlusPage all the same.
const DirFilesTotal = 4 << 20

// shipBudget is what is left of DirFilesTotal for one dirplus; its
// workers take from it concurrently.
type shipBudget struct{ left atomic.Int64 }

func newShipBudget() *shipBudget {
	s := &shipBudget{}
	s.left.Store(DirFilesTotal)
	return s
}

// take reserves n bytes, or reports that they do not fit.
func (s *shipBudget) take(n int64) bool {
	if s.left.Add(-n) >= 0 {
		return true
	}
	s.left.Add(n)
	return false
}

// Known tells a dirplus about a file of the listing that its caller
// already has: its bytes in the version attr stats (held), or a read of
// it under way (reading). Either way the backend does not read the file
// again: one read per file per tree, whichever of a Read and its
// directory's dirplus comes first. A file being read is listed without
// content; its reader gets it from that read.
type Known func(path string, attr op.Attr) (data []byte, held, reading bool)

// shipFile puts the content of e, a regular file of dir just stat'ed, in
// e when it is small enough and the answer has room: read as Read reads
// it (opened without following links, stat'ed before and after), so a
// file that changed meanwhile is not shipped (its Read then reads it on
// its own) and the entry's attributes become the stat the bytes were read
// under. A file that cannot be read (EACCES) is listed without content:
// its Read answers the errno. What known holds is shipped from there.
func (b *Backend) shipFile(dir int, path string, e *op.PlusEntry, budget *shipBudget, known Known) {
	if !e.Attr.IsRegular() || e.Attr.Size > b.dirFiles {
		return
	}
	var data []byte
	var held, reading bool
	if known != nil {
		data, held, reading = known(path, e.Attr)
	}
	if reading || !budget.take(e.Attr.Size) {
		return
	}
	if held {
		b.shippedKnown.Add(1)
		e.Data, e.HasData = data, true
		return
	}
	r, stable := readOpen(dir, e.Name, b.dirFiles)
	if !stable || !r.OK() || !sameVersion(r.Attr, e.Attr) {
		budget.left.Add(e.Attr.Size)
		return
	}
	b.ops[op.Read].Add(1)
	b.shipped.Add(1)
	b.shippedBytes.Add(int64(len(r.Data)))
	e.Attr, e.Data, e.HasData = r.Attr, r.Data, true
}

// sameVersion: a and b stat one file in one state (the open found the
// file the directory's stat saw, unchanged).
func sameVersion(a, b op.Attr) bool {
	return a.Ino == b.Ino && a.Dev == b.Dev && a.Size == b.Size && a.MtimeNs == b.MtimeNs && a.CtimeNs == b.CtimeNs
}

// Shipped returns how many files dirplus answers carried that it read,
// and their bytes.
func (b *Backend) Shipped() (files, bytes int64) {
	return b.shipped.Load(), b.shippedBytes.Load()
}

// ShippedKnown returns how many files dirplus answers carried from what
// their caller held (Known), not read again.
func (b *Backend) ShippedKnown() int64 { return b.shippedKnown.Load() }
