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

// shipFile puts the content of e, a regular file of dir just stat'ed, in
// e when it is small enough and the answer has room: read as Read reads
// it (opened without following links, stat'ed before and after), so a
// file that changed meanwhile is not shipped (its Read then reads it on
// its own) and the entry's attributes become the stat the bytes were read
// under. A file that cannot be read (EACCES) is listed without content:
// its Read answers the errno.
func (b *Backend) shipFile(dir int, e *op.PlusEntry, budget *shipBudget) {
	if !e.Attr.IsRegular() || e.Attr.Size > b.dirFiles || !budget.take(e.Attr.Size) {
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

// Shipped returns how many files dirplus answers carried, and their bytes.
func (b *Backend) Shipped() (files, bytes int64) {
	return b.shipped.Load(), b.shippedBytes.Load()
}
