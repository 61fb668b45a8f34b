package cache

import "github.com/hpc-copper/copper/op"

// countMode says which outcomes of a lookup count in the stats.
type countMode uint8

const (
	countNone countMode = iota // Recheck: part of a request already counted
	countAll                   // Lookup: a request's first look
	countHits                  // Peek: a hit is the request's answer; a miss is counted by the Lookup that follows
)

// counter adds 1 to *n when counting: hits and misses count only a
// request's first lookup.
func counter(n *uint64, counting bool) {
	if counting {
		*n++
	}
}

// Peek is Lookup for a first look that is tried again with Lookup when
// it misses (a server answering from memory on a connection's reader
// before handing the request to a worker): it counts a hit as Lookup
// does, but not a miss, and it leaves an expired ENOENT entry for that
// Lookup to drop, so that the request is counted and answered as one
// Lookup would.
func (c *Cache) Peek(o op.Op, path string) (op.Result, bool) {
	return c.lookup(o, path, countHits)
}
