package tree

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAutoFanoutBoundaries(t *testing.T) {
	tests := []struct {
		size, want int
	}{
		{-5, 2}, {0, 2}, {1, 2}, {2, 2}, {31, 2},
		{32, 3}, {121, 3},
		{122, 4}, {341, 4},
		{342, 5}, {781, 5},
		{782, 6}, {1555, 6},
		{1556, 7}, {2801, 7}, // 1+7+49+343+2401 = 2801
		{2802, 8}, {4681, 8},
		{4682, 9},
		{10000, 10}, // 1+9+81+729+6561 = 7381 < 10000 <= 11111
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			assert.Equal(t, tc.want, AutoFanout(tc.size))
		})
	}
}

// capacity is 1+k+k²+k³+k⁴ in exact arithmetic.
func capacity(k int) *big.Int {
	sum, pow, bk := big.NewInt(1), big.NewInt(1), big.NewInt(int64(k))
	for range MaxAutoDepth {
		pow.Mul(pow, bk)
		sum.Add(sum, pow)
	}
	return sum
}

// Near the top of int the capacity sum would overflow int64; AutoFanout
// must still return the minimal k, checked here in exact arithmetic.
func TestAutoFanoutHugeSizes(t *testing.T) {
	for _, size := range []int{1 << 40, 1<<62 + 12345, math.MaxInt - 1, math.MaxInt} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			k := AutoFanout(size)
			s := big.NewInt(int64(size))
			assert.GreaterOrEqual(t, capacity(k).Cmp(s), 0, "k=%d must hold %d", k, size)
			assert.Negative(t, capacity(k-1).Cmp(s), "k-1=%d must not hold %d", k-1, size)
		})
	}
}

func TestSegments(t *testing.T) {
	tests := []struct {
		n, trees int
		want     [][2]int
	}{
		{1, 1, [][2]int{{0, 1}}},
		{10, 1, [][2]int{{0, 10}}},
		{10, 3, [][2]int{{0, 4}, {4, 7}, {7, 10}}},
		{11, 3, [][2]int{{0, 4}, {4, 8}, {8, 11}}},
		{12, 3, [][2]int{{0, 4}, {4, 8}, {8, 12}}},
		{5, 5, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("n%d_t%d", tc.n, tc.trees), func(t *testing.T) {
			got, err := segments(tc.n, tc.trees)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLocateExamples(t *testing.T) {
	tests := []struct {
		name                 string
		n, trees, fanout, rk int
		want                 Position
	}{
		{
			name: "single node", n: 1, trees: 1, rk: 0,
			want: Position{Rank: 0, Parent: -1, Fanout: 2, First: 0, End: 1},
		},
		{
			name: "binary root", n: 10, trees: 1, rk: 0,
			want: Position{Rank: 0, Parent: -1, Children: []int{1, 2}, Fanout: 2, First: 0, End: 10},
		},
		{
			name: "binary inner", n: 10, trees: 1, rk: 4,
			want: Position{Rank: 4, Index: 4, Parent: 1, Ancestors: []int{1, 0}, Children: []int{9},
				Depth: 2, Fanout: 2, First: 0, End: 10},
		},
		{
			name: "binary leaf", n: 10, trees: 1, rk: 9,
			want: Position{Rank: 9, Index: 9, Parent: 4, Ancestors: []int{4, 1, 0}, Depth: 3,
				Fanout: 2, First: 0, End: 10},
		},
		{
			// Segments [0,4) [4,7) [7,10); rank 8 is index 1 of tree 2.
			name: "three trees", n: 10, trees: 3, rk: 8,
			want: Position{Rank: 8, Tree: 2, Index: 1, Parent: 7, Ancestors: []int{7}, Depth: 1,
				Fanout: 2, First: 7, End: 10},
		},
		{
			name: "second tree root", n: 10, trees: 3, rk: 4,
			want: Position{Rank: 4, Tree: 1, Parent: -1, Children: []int{5, 6}, Fanout: 2, First: 4, End: 7},
		},
		{
			name: "explicit fanout 3", n: 20, trees: 1, fanout: 3, rk: 2,
			want: Position{Rank: 2, Index: 2, Parent: 0, Ancestors: []int{0}, Children: []int{7, 8, 9},
				Depth: 1, Fanout: 3, First: 0, End: 20},
		},
		{
			name: "fanout clipped at segment end", n: 20, trees: 1, fanout: 3, rk: 6,
			want: Position{Rank: 6, Index: 6, Parent: 1, Ancestors: []int{1, 0}, Children: []int{19},
				Depth: 2, Fanout: 3, First: 0, End: 20},
		},
		{
			name: "fanout larger than segment is a star", n: 5, trees: 1, fanout: math.MaxInt, rk: 0,
			want: Position{Rank: 0, Parent: -1, Children: []int{1, 2, 3, 4}, Fanout: math.MaxInt, First: 0, End: 5},
		},
		{
			name: "star leaf", n: 5, trees: 1, fanout: math.MaxInt, rk: 4,
			want: Position{Rank: 4, Index: 4, Parent: 0, Ancestors: []int{0}, Depth: 1,
				Fanout: math.MaxInt, First: 0, End: 5},
		},
		{
			name: "auto fanout 3 at 32 nodes", n: 32, trees: 1, rk: 31,
			want: Position{Rank: 31, Index: 31, Parent: 10, Ancestors: []int{10, 3, 0}, Depth: 3,
				Fanout: 3, First: 0, End: 32},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Locate(tc.n, tc.trees, tc.fanout, tc.rk)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.want.Parent < 0, got.IsRoot())
		})
	}
}

// Locate on a huge rank space must not overflow while finding segments
// and children.
func TestLocateHugeN(t *testing.T) {
	n := math.MaxInt
	got, err := Locate(n, 3, 0, n-1)
	require.NoError(t, err)
	assert.Equal(t, 2, got.Tree)
	assert.Equal(t, n, got.End)
	assert.LessOrEqual(t, got.Depth, MaxAutoDepth)
	assert.Equal(t, got.First, got.Ancestors[len(got.Ancestors)-1])
	assert.Empty(t, got.Children)

	root, err := Locate(n, 3, 0, got.First)
	require.NoError(t, err)
	require.Len(t, root.Children, got.Fanout)
	assert.Equal(t, got.First+got.Fanout, root.Children[len(root.Children)-1])
}

func TestLocateErrors(t *testing.T) {
	tests := []struct {
		name                 string
		n, trees, fanout, rk int
		want                 string
	}{
		{"no ranks", 0, 1, 0, 0, "n = 0"},
		{"negative ranks", -3, 1, 0, 0, "n = -3"},
		{"no trees", 4, 0, 0, 0, "trees = 0"},
		{"negative trees", 4, -1, 0, 0, "trees = -1"},
		{"more trees than ranks", 4, 5, 0, 0, "trees = 5 exceeds n = 4"},
		{"rank too large", 4, 1, 0, 4, "rank 4 outside [0, 4)"},
		{"negative rank", 4, 1, 0, -1, "rank -1 outside [0, 4)"},
		{"fanout one", 4, 1, 1, 0, "fanout = 1"},
		{"negative fanout", 4, 1, -2, 0, "fanout = -2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Locate(tc.n, tc.trees, tc.fanout, tc.rk)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSegmentsErrors(t *testing.T) {
	for _, tc := range []struct{ n, trees int }{{0, 1}, {3, 0}, {3, 4}} {
		_, err := segments(tc.n, tc.trees)
		assert.Error(t, err, "n=%d trees=%d", tc.n, tc.trees)
	}
}

func TestValidateBook(t *testing.T) {
	ok := []Entry{{"a", "a:1"}, {"b", "b:1"}, {"a", "a:2"}}
	tests := []struct {
		name    string
		entries []Entry
		want    string // "" = valid
	}{
		{"valid, repeated host", ok, ""},
		{"nil", nil, "empty"},
		{"empty slice", []Entry{}, "empty"},
		{"empty host", []Entry{{"a", "a:1"}, {"", "b:1"}}, "rank 1"},
		{"empty endpoint", []Entry{{"a", "a:1"}, {"b", ""}}, `rank 1 (host "b"): empty endpoint`},
		{"duplicate endpoint", []Entry{{"a", "x:1"}, {"b", "y:1"}, {"c", "x:1"}},
			`ranks 0 (host "a") and 2 (host "c") share endpoint "x:1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateBook(tc.entries)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// refFanout finds the automatic fan-out by a different route than
// AutoFanout: the smallest k >= 2 whose heap puts the segment's last
// position at depth <= MaxAutoDepth.
func refFanout(size int) int {
	for k := 2; ; k++ {
		if heapDepth(size-1, k) <= MaxAutoDepth {
			return k
		}
	}
}

func heapDepth(i, k int) int {
	d := 0
	for ; i > 0; i = (i - 1) / k {
		d++
	}
	return d
}

// TestLocateReference checks Locate against a brute-force model for every
// N in 1..2000 and T in 1..8: segments partition the ranks, every non-root
// has one parent inside its segment, parents and children agree, ancestor
// walks end at the segment root, and automatic fan-out keeps depth <= 4
// with the smallest such k.
func TestLocateReference(t *testing.T) {
	const maxN, maxTrees = 2000, 8
	if testing.Short() {
		t.Skip("brute force over 16k tree shapes")
	}
	for trees := 1; trees <= maxTrees; trees++ {
		t.Run(fmt.Sprintf("T%d", trees), func(t *testing.T) {
			t.Parallel()
			for n := trees; n <= maxN; n++ {
				if err := checkShapeAgainstReference(n, trees); err != nil {
					t.Fatalf("N=%d T=%d: %v", n, trees, err)
				}
			}
		})
	}
}

// checkShapeAgainstReference returns the first disagreement for one
// (n, trees); plain errors rather than testify keep 16M checks fast.
func checkShapeAgainstReference(n, trees int) error {
	// Reference segments: sizes n/T, the first n%T one larger.
	type seg struct{ first, end, k int }
	refSegs := make([]seg, 0, trees)
	for first, t := 0, 0; t < trees; t++ {
		size := n / trees
		if t < n%trees {
			size++
		}
		refSegs = append(refSegs, seg{first, first + size, refFanout(size)})
		first += size
	}
	if last := refSegs[len(refSegs)-1]; last.end != n {
		return fmt.Errorf("reference segments end at %d", last.end)
	}
	segs, err := segments(n, trees)
	if err != nil {
		return err
	}
	for t, s := range refSegs {
		if segs[t] != [2]int{s.first, s.end} {
			return fmt.Errorf("segment %d = %v, want [%d %d]", t, segs[t], s.first, s.end)
		}
	}

	pos := make([]Position, n)
	covered := make([]int, n)
	for r := range n {
		p, err := Locate(n, trees, 0, r)
		if err != nil {
			return fmt.Errorf("rank %d: %w", r, err)
		}
		pos[r] = p
		covered[r]++
	}
	for r, c := range covered {
		if c != 1 {
			return fmt.Errorf("rank %d appears in %d segments", r, c)
		}
	}

	// Children must be exactly the inverse of the parent relation: strictly
	// ascending ranks whose parent is r, as many as name r their parent.
	// Counting instead of building lists keeps 16M checks allocation-free.
	childCount := make([]int, n)
	for _, p := range pos {
		if p.Parent >= 0 {
			childCount[p.Parent]++
		}
	}
	var walk []int

	for r, p := range pos {
		s := refSegs[p.Tree]
		switch {
		case p.Rank != r:
			return fmt.Errorf("rank %d: Rank = %d", r, p.Rank)
		case r < s.first || r >= s.end || p.First != s.first || p.End != s.end:
			return fmt.Errorf("rank %d: tree %d [%d,%d), reference [%d,%d)", r, p.Tree, p.First, p.End, s.first, s.end)
		case p.Index != r-s.first:
			return fmt.Errorf("rank %d: Index = %d, want %d", r, p.Index, r-s.first)
		case p.Fanout != s.k:
			return fmt.Errorf("rank %d: Fanout = %d, want %d", r, p.Fanout, s.k)
		case p.Depth > MaxAutoDepth:
			return fmt.Errorf("rank %d: depth %d > %d", r, p.Depth, MaxAutoDepth)
		case p.Depth != len(p.Ancestors):
			return fmt.Errorf("rank %d: Depth %d but %d ancestors", r, p.Depth, len(p.Ancestors))
		case len(p.Children) != childCount[r]:
			return fmt.Errorf("rank %d: %d children %v, but %d ranks name it parent", r, len(p.Children), p.Children, childCount[r])
		}
		for i, c := range p.Children {
			if c < 0 || c >= n || pos[c].Parent != r || (i > 0 && c <= p.Children[i-1]) {
				return fmt.Errorf("rank %d: Children %v not ascending ranks whose parent is %d", r, p.Children, r)
			}
		}
		if p.Index == 0 {
			if p.Parent != -1 || len(p.Ancestors) != 0 {
				return fmt.Errorf("root rank %d: Parent = %d, Ancestors = %v", r, p.Parent, p.Ancestors)
			}
			continue
		}
		if want := s.first + (p.Index-1)/s.k; p.Parent != want {
			return fmt.Errorf("rank %d: Parent = %d, want %d", r, p.Parent, want)
		}
		if p.Parent < s.first || p.Parent >= s.end || p.Parent == r {
			return fmt.Errorf("rank %d: parent %d outside its segment [%d,%d)", r, p.Parent, s.first, s.end)
		}
		// Walk the parent chain through the other ranks' positions; it must
		// match Ancestors and end at the segment root within n steps.
		walk = walk[:0]
		for a := p.Parent; a >= 0; a = pos[a].Parent {
			walk = append(walk, a)
			if len(walk) > n {
				return fmt.Errorf("rank %d: parent chain cycles: %v", r, walk[:10])
			}
		}
		if !slices.Equal(walk, p.Ancestors) {
			return fmt.Errorf("rank %d: Ancestors = %v, parent chain %v", r, p.Ancestors, walk)
		}
		if walk[len(walk)-1] != s.first {
			return fmt.Errorf("rank %d: ancestors end at %d, not segment root %d", r, walk[len(walk)-1], s.first)
		}
	}
	return nil
}

func BenchmarkLocate(b *testing.B) {
	const n = 10_000
	for _, trees := range []int{1, 8} {
		b.Run(fmt.Sprintf("N%d_T%d", n, trees), func(b *testing.B) {
			r := 0
			for b.Loop() {
				if _, err := Locate(n, trees, 0, r); err != nil {
					b.Fatal(err)
				}
				r = (r + 7919) % n // stride through ranks at every depth
			}
		})
	}
}

// segments splits ranks 0..n-1 into trees contiguous [first, end) ranges of
// near-equal size; the first n mod trees segments are one rank larger:
// the tests' view of segmentSize, which Locate uses.
func segments(n, trees int) ([][2]int, error) {
	if err := checkShape(n, trees); err != nil {
		return nil, err
	}
	segs := make([][2]int, trees)
	first := 0
	for t := range segs {
		end := first + segmentSize(n, trees, t)
		segs[t] = [2]int{first, end}
		first = end
	}
	return segs, nil
}
