package scalemodel

import (
	"path"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/bench/replay"
)

// actKind is what one step of a process needs beyond its own CPU.
type actKind uint8

const (
	aCPU      actKind = iota // n trace operations of client CPU
	aLookup                  // a kernel path-walk lookup of path (first time in the trace)
	aOpen                    // a successful open of path (dir: opendir), every time: PFS opens reach the server
	aData                    // the first read or mapping of file path (size bytes)
	aReaddir                 // the first getdents on a descriptor of directory path (pages server pages)
	aReadlink                // the first readlink of path
)

// action is one compiled step of the trace. Lookups, data, listings and
// links are per node in the kernel (the first process to ask waits, the
// others find it), so each appears once per process, at its first use;
// opens and a descriptor's listing are per process on a PFS client.
type action struct {
	kind  actKind
	n     int // aCPU: trace operations
	path  string
	dir   bool  // aOpen: a directory
	size  int64 // aData: file size
	first int64 // aData: bytes of the first access if a read at offset 0, else 0 (readRequests)
	pages int   // aReaddir: server readdir pages
	found bool  // aLookup: the path exists
}

// compile turns the trace into the steps one process takes.
func (w *Workload) compile(entriesPerPage int) []action {
	var acts []action
	cpu := func() {
		if n := len(acts); n > 0 && acts[n-1].kind == aCPU {
			acts[n-1].n++
			return
		}
		acts = append(acts, action{kind: aCPU, n: 1})
	}
	looked := map[string]bool{}
	walk := func(p string) {
		for _, c := range components(p) {
			e, ok := w.entry(c)
			if !looked[c] {
				looked[c] = true
				acts = append(acts, action{kind: aLookup, path: c, found: ok})
			}
			if !ok || !e.Dir && c != p {
				return // the walk stops at a missing name or a non-directory
			}
		}
	}
	data, links := map[string]bool{}, map[string]bool{}
	fdListed := map[int]bool{}
	for _, o := range w.Ops {
		cpu()
		switch o.Kind {
		case replay.Stat, replay.Access, replay.Readlink:
			walk(o.Path)
			if o.Kind == replay.Readlink && o.Errno == 0 && !links[o.Path] {
				links[o.Path] = true
				acts = append(acts, action{kind: aReadlink, path: o.Path})
			}
		case replay.Open:
			walk(o.Path)
			if o.Errno == 0 {
				e, _ := w.entry(o.Path)
				acts = append(acts, action{kind: aOpen, path: o.Path, dir: e.Dir || o.Flags&unix.O_DIRECTORY != 0})
				delete(fdListed, o.FD)
			}
		case replay.Read, replay.Pread, replay.Mmap:
			if !data[o.Path] {
				data[o.Path] = true
				e, _ := w.entry(o.Path)
				var first int64
				if o.Kind != replay.Mmap && o.Offset == 0 {
					first = max(o.Size, 1)
				}
				acts = append(acts, action{kind: aData, path: o.Path, size: e.Size, first: first})
			}
		case replay.Getdents:
			if !fdListed[o.FD] {
				fdListed[o.FD] = true
				acts = append(acts, action{kind: aReaddir, path: o.Path, pages: pages(len(w.Dirs[o.Path]), entriesPerPage)})
			}
		}
	}
	return acts
}

// pages is the server readdir operations of a listing of n entries.
func pages(n, perPage int) int {
	if perPage < 1 {
		perPage = 128
	}
	return max(1, (n+perPage-1)/perPage)
}

// parent is the directory holding p.
func parent(p string) string { return path.Dir(p) }
