package cache

import (
	"github.com/hpc-copper/copper/op"
)

// OpCounts counts events per operation, indexed by op.Op.
type OpCounts [len(op.All) + 1]uint64

// Total sums the counts of every operation.
func (oc OpCounts) Total() uint64 {
	var n uint64
	for _, v := range oc {
		n += v
	}
	return n
}

// TableNames lists the tables' names in Stats.Tables order.
func TableNames() []string {
	return []string{TableData, TableTree, TableMetadata, TableNegative, TableLinks}
}

// TableStat describes one table.
type TableStat struct {
	Name      string `json:"name"` // data, tree, metadata, negative, links
	Entries   int    `json:"entries"`
	Bytes     int64  `json:"bytes"`     // estimated
	Evictions uint64 `json:"evictions"` // entries dropped to keep the budget
}

// Stats is a snapshot of a cache's tables and counters.
//
// Its JSON is part of `copper-node stats --json`: snake_case, like the
// rest of it.
type Stats struct {
	BudgetBytes int64 `json:"budget_bytes"`
	Bytes       int64 `json:"bytes"` // across all tables, never above BudgetBytes

	Data     TableStat `json:"data"`
	Tree     TableStat `json:"tree"`
	Metadata TableStat `json:"metadata"`
	Negative TableStat `json:"negative"`
	Links    TableStat `json:"links"`

	// Per operation, indexed by op.Op; an ENOENT served from the negative
	// table is a hit.
	Hits   OpCounts `json:"hits"`
	Misses OpCounts `json:"misses"`

	NegativeStores  uint64 `json:"negative_stores"`  // ENOENT results stored
	NegativeServes  uint64 `json:"negative_serves"`  // lookups answered ENOENT from a live entry
	NegativeExpires uint64 `json:"negative_expires"` // entries found expired (on lookup or when making room)
	NegativeClears  uint64 `json:"negative_clears"`  // entries cleared by a success or a non-ENOENT error
	// ListingServes counts lookups answered ENOENT because the name is
	// absent from the held listing of its directory (no TTL).
	ListingServes uint64 `json:"listing_serves"`
	Rejected      uint64 `json:"rejected"` // results larger than the whole budget, not stored
	// DirFiles counts small files that came with their directory's
	// dirplus (dir_files_max_bytes).
	DirFiles DirFileStats `json:"dir_files"`
}

// Tables lists the tables in a stable order: data, tree, metadata,
// negative, links (Copper 1.0's reports name data, tree and metadata).
func (s Stats) Tables() []TableStat {
	return []TableStat{s.Data, s.Tree, s.Metadata, s.Negative, s.Links}
}

// Stats returns a snapshot.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		BudgetBytes:     c.budget,
		Bytes:           c.total,
		Data:            c.data.stat(),
		Tree:            c.tree.stat(),
		Metadata:        c.metadata.stat(),
		Negative:        c.negative.stat(),
		Links:           c.links.stat(),
		Hits:            c.count.hits,
		Misses:          c.count.misses,
		NegativeStores:  c.count.negStores,
		NegativeServes:  c.count.negServes,
		NegativeExpires: c.count.negExpires,
		NegativeClears:  c.count.negClear,
		ListingServes:   c.count.listingServes,
		Rejected:        c.count.rejected,
		DirFiles: DirFileStats{
			Stored: c.count.dirFiles, Bytes: c.count.dirFileBytes,
			Read: c.count.dirFilesRead, Unread: c.count.dirFiles - c.count.dirFilesRead,
		},
	}
}
