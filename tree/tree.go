// Package tree is the overlay-tree arithmetic: given N ranks split into T
// independent trees, where does a rank sit, who is its parent, who are its
// children and whom does it fail over to. It is pure math, with no I/O, so
// that every node computes the same tree from the same address book.
package tree

import "fmt"

// MaxAutoDepth is the depth the automatic fan-out keeps every tree within
// (root = depth 0): a request climbs at most this many hops to its root.
const MaxAutoDepth = 4

// Entry is one address-book line; a node's rank is its index in the book.
type Entry struct {
	Host     string // node hostname, for logs and humans
	Endpoint string // host:port the node's server listens on
}

// Position is where one rank sits in the overlay.
type Position struct {
	Rank  int
	Tree  int // which segment (tree) the rank belongs to, 0-based
	Index int // position inside its segment; 0 is the segment's root

	Parent    int   // rank of the parent; -1 for a root
	Ancestors []int // parent, grandparent, ..., root: the failover order; nil for a root
	Children  []int // ranks, ascending; nil for a leaf
	Depth     int   // hops to the root; root = 0
	Fanout    int   // k actually used (the automatic one when 0 was asked for)

	First, End int // the segment is ranks [First, End)
}

// IsRoot reports whether the rank roots its tree (and so reads the backend).
func (p Position) IsRoot() bool { return p.Parent < 0 }

// AutoFanout returns the smallest k >= 2 whose tree of depth <= MaxAutoDepth
// (1+k+k²+k³+k⁴ nodes) holds segmentSize nodes: 31 → 2, 121 → 3, 341 → 4,
// 781 → 5, 1,555 → 6 as in Copper 1.0, and k keeps growing beyond that
// rather than capping at 7, so no rank is ever pushed below depth 4.
// Sizes below 2 get the minimum, 2.
func AutoFanout(segmentSize int) int {
	k := 2
	for !holds(k, segmentSize) {
		k++
	}
	return k
}

// holds reports whether a k-ary tree of depth MaxAutoDepth has at least
// size nodes, without overflowing for any int size.
func holds(k, size int) bool {
	nodes, level := 1, 1
	for d := 1; d <= MaxAutoDepth; d++ {
		if nodes >= size {
			return true
		}
		if level > (size-nodes)/k {
			return true // this level alone already exceeds what is missing
		}
		level *= k
		nodes += level
	}
	return nodes >= size
}

// Locate returns rank's position among n ranks split into trees trees.
// fanout 0 picks AutoFanout of the rank's segment size; otherwise it must
// be at least 2 and the depth is whatever that fan-out gives.
func Locate(n, trees, fanout, rank int) (Position, error) {
	if err := checkShape(n, trees); err != nil {
		return Position{}, err
	}
	if rank < 0 || rank >= n {
		return Position{}, fmt.Errorf("tree: rank %d outside [0, %d)", rank, n)
	}
	if fanout < 0 || fanout == 1 {
		return Position{}, fmt.Errorf("tree: fanout = %d: must be 0 (automatic) or at least 2", fanout)
	}

	t, first := segmentOf(n, trees, rank)
	size := segmentSize(n, trees, t)
	k := fanout
	if k == 0 {
		k = AutoFanout(size)
	}
	p := Position{
		Rank: rank, Tree: t, Index: rank - first,
		Parent: -1, Fanout: k,
		First: first, End: first + size,
	}
	for i := p.Index; i > 0; i = (i - 1) / k {
		p.Depth++
	}
	if p.Depth > 0 {
		p.Ancestors = make([]int, 0, p.Depth)
		for i := p.Index; i > 0; {
			i = (i - 1) / k
			p.Ancestors = append(p.Ancestors, first+i)
		}
		p.Parent = p.Ancestors[0]
	}

	// Children of heap position i are k*i+1 ... k*i+k, clipped to the
	// segment. Written so that a huge k cannot overflow.
	if size >= 2 && p.Index <= (size-2)/k {
		lo := p.Index*k + 1
		count := min(k, size-lo)
		p.Children = make([]int, count)
		for c := range p.Children {
			p.Children[c] = first + lo + c
		}
	}
	return p, nil
}

// ValidateBook checks what the tree needs of an address book: at least one
// entry, a host and an endpoint on each, and no endpoint shared by two
// ranks (two ranks listening on one address would answer for each other).
// Hosts may repeat: several nodes can share a machine on different ports.
func ValidateBook(entries []Entry) error {
	if len(entries) == 0 {
		return fmt.Errorf("address book is empty")
	}
	seen := make(map[string]int, len(entries))
	for rank, e := range entries {
		if e.Host == "" {
			return fmt.Errorf("address book rank %d (endpoint %q): empty host", rank, e.Endpoint)
		}
		if e.Endpoint == "" {
			return fmt.Errorf("address book rank %d (host %q): empty endpoint", rank, e.Host)
		}
		if prev, dup := seen[e.Endpoint]; dup {
			return fmt.Errorf("address book ranks %d (host %q) and %d (host %q) share endpoint %q",
				prev, entries[prev].Host, rank, e.Host, e.Endpoint)
		}
		seen[e.Endpoint] = rank
	}
	return nil
}

func checkShape(n, trees int) error {
	switch {
	case n < 1:
		return fmt.Errorf("tree: n = %d ranks: need at least 1", n)
	case trees < 1:
		return fmt.Errorf("tree: trees = %d: need at least 1", trees)
	case trees > n:
		return fmt.Errorf("tree: trees = %d exceeds n = %d ranks: every tree needs a root", trees, n)
	}
	return nil
}

// segmentSize is the number of ranks in segment t.
func segmentSize(n, trees, t int) int {
	if t < n%trees {
		return n/trees + 1
	}
	return n / trees
}

// segmentOf returns the segment holding rank and that segment's first rank,
// in constant time: the first n mod trees segments have n/trees+1 ranks.
func segmentOf(n, trees, rank int) (t, first int) {
	base, extra := n/trees, n%trees
	big := extra * (base + 1) // ranks covered by the larger segments
	if rank < big {
		t = rank / (base + 1)
		return t, t * (base + 1)
	}
	t = extra + (rank-big)/base
	return t, big + (t-extra)*base
}
