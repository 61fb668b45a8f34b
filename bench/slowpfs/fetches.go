package slowpfs

import "github.com/hpc-copper/copper/op"

// Fetch classes group the operations that fetch the same thing from the
// server: a path's attributes (lookup or getattr), an open of it, a
// listing (opendir; its readdir pages are the same listing), a link
// target. A client that caches perfectly fetches each (path, class)
// once, so FetchSummary.PerKey is 1.00 for one perfect client and
// approaches the number of clients for clients that share nothing.
const (
	ClassStat = "stat"
	ClassOpen = "open"
	ClassList = "list"
	ClassLink = "link"
)

// Classes lists the fetch classes in report order.
var Classes = []string{ClassStat, ClassOpen, ClassList, ClassLink}

var classOf = map[string]string{
	OpLookup:   ClassStat,
	OpGetattr:  ClassStat,
	OpOpen:     ClassOpen,
	OpOpendir:  ClassList,
	OpReadlink: ClassLink,
}

// ClassSummary is one class's fetches.
type ClassSummary struct {
	Paths   int     `json:"paths"`   // distinct paths fetched in this class
	Fetches int64   `json:"fetches"` // fetches in this class
	PerPath float64 `json:"per_path"`
}

// FetchSummary says how often the server was asked for the same thing.
type FetchSummary struct {
	Paths   int                     `json:"paths"`    // distinct paths touched
	Keys    int                     `json:"keys"`     // distinct (path, class) pairs
	Fetches int64                   `json:"fetches"`  // metadata fetches
	PerKey  float64                 `json:"per_key"`  // Fetches / Keys
	ByClass map[string]ClassSummary `json:"by_class"` // per class

	Bytes         int64   `json:"bytes"`          // data read
	DistinctBytes int64   `json:"distinct_bytes"` // sum over files of the distinct bytes read
	DataRatio     float64 `json:"data_ratio"`     // Bytes / DistinctBytes
}

// Fetches summarises the paths at or below under ("/" for all).
func (s CounterSnapshot) Fetches(under string) FetchSummary {
	sum := FetchSummary{ByClass: map[string]ClassSummary{}}
	for p, pc := range s.Paths {
		if under != "" && !op.Within(p, under) {
			continue
		}
		sum.Paths++
		seen := map[string]bool{}
		for op, n := range pc.Ops {
			class, ok := classOf[op]
			if !ok || n == 0 {
				continue
			}
			cs := sum.ByClass[class]
			if !seen[class] {
				seen[class] = true
				cs.Paths++
				sum.Keys++
			}
			cs.Fetches += n
			sum.Fetches += n
			sum.ByClass[class] = cs
		}
		sum.Bytes += pc.Bytes
		sum.DistinctBytes += pc.Distinct
	}
	for class, cs := range sum.ByClass {
		cs.PerPath = ratio(cs.Fetches, int64(cs.Paths))
		sum.ByClass[class] = cs
	}
	sum.PerKey = ratio(sum.Fetches, int64(sum.Keys))
	sum.DataRatio = ratio(sum.Bytes, sum.DistinctBytes)
	return sum
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
