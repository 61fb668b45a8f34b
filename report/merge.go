package report

import (
	"fmt"
	"sort"

	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/profile/schema"
)

// Totals are the cluster sums of the nodes' profiling_aggregate.csv.
type Totals struct {
	Operations      uint64 // total_counted_fuse_operations
	CacheHits       uint64
	CacheMisses     uint64
	NegativeResults uint64
	CoalescedWaits  uint64
	Forwarded       uint64
	BackendOps      uint64
	BytesServed     uint64
	LargeFiles      uint64 // large_direct_files, summed: a file read on 4 nodes counts 4
	LargeOpens      uint64
	LargeBytes      uint64
	TTLStores       uint64 // metadata_enoent_ttl_stores
	TTLServes       uint64
	TTLExpires      uint64
	TTLClears       uint64 // metadata_enoent_ttl_clears_on_success_or_non_enoent
	IoctlExternal   uint64
	IoctlTerminal   uint64
	CacheBytes      uint64
	LatencyS        float64 // total_measured_latency_seconds
}

// countFields pairs each counter with its metric name, in the node file's
// order, so summing and printing cannot drift apart.
func (t *Totals) countFields() []struct {
	metric string
	v      *uint64
} {
	return []struct {
		metric string
		v      *uint64
	}{
		{schema.MetricOperations, &t.Operations},
		{schema.MetricCacheHits, &t.CacheHits},
		{schema.MetricCacheMisses, &t.CacheMisses},
		{schema.MetricNegative, &t.NegativeResults},
		{schema.MetricCoalesced, &t.CoalescedWaits},
		{schema.MetricForwarded, &t.Forwarded},
		{schema.MetricBackendOps, &t.BackendOps},
		{schema.MetricBytesServed, &t.BytesServed},
		{schema.MetricLargeFiles, &t.LargeFiles},
		{schema.MetricLargeOpens, &t.LargeOpens},
		{schema.MetricLargeBytes, &t.LargeBytes},
		{schema.MetricTTLStores, &t.TTLStores},
		{schema.MetricTTLServes, &t.TTLServes},
		{schema.MetricTTLExpires, &t.TTLExpires},
		{schema.MetricTTLClears, &t.TTLClears},
		{schema.MetricIoctlExternal, &t.IoctlExternal},
		{schema.MetricIoctlTerminal, &t.IoctlTerminal},
		{schema.MetricCacheBytes, &t.CacheBytes},
	}
}

// metricPathsDropped counts the paths a node's paths_full left out.
const metricPathsDropped = schema.MetricPathsDropped

// HotPath is a top_paths row summed over the nodes that reported it.
type HotPath struct {
	PathStats
	Nodes int // nodes whose top_paths file lists it in this category
}

// Cluster is the merged view of every node's profiling files.
type Cluster struct {
	Source             string
	Nodes              []*NodeProfile
	RanksWithAggregate int
	Totals             Totals
	Operations         []OperationStats // summed; quantiles are the maximum over nodes
	Errors             []ErrorCount     // summed by operation and errno
	HotPaths           []HotPath        // by category, then events (most first), then path
	ObservedPaths      int              // distinct view paths in paths_full (or top_paths)
	ObservedFrom       string           // which files the observed paths came from
	Classes            []PathClass      // environment_prefix first, then the exclusive classes
	Warnings           []string
}

// Combine merges a job's node files.
func Combine(job *JobProfile) *Cluster {
	m := merger{c: &Cluster{Source: job.Source, Nodes: job.Nodes},
		ops: map[string]*OperationStats{}, errs: map[errKey]uint64{}, hot: map[pathKey]*HotPath{}}
	for _, n := range job.Nodes {
		m.addTotals(n)
		m.addRows(n)
	}
	m.finish()
	obs, from := observePaths(job.Nodes)
	m.c.ObservedPaths, m.c.ObservedFrom = len(obs), from.String()
	m.c.Classes = classify(obs)
	return m.c
}

type errKey struct {
	op    string
	errno int64
	name  string
}

type pathKey struct{ category, path string }

// merger sums the nodes' rows by operation, errno and path.
type merger struct {
	c    *Cluster
	ops  map[string]*OperationStats
	errs map[errKey]uint64
	hot  map[pathKey]*HotPath
}

// addTotals adds a node's aggregate file to the cluster totals.
func (m *merger) addTotals(n *NodeProfile) {
	c := m.c
	if n.Metrics == nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("node %s: no profiling_aggregate file; its counters are missing from the totals", n.Prefix))
		return
	}
	c.RanksWithAggregate++
	for _, f := range c.Totals.countFields() {
		*f.v += n.Metrics.Counts[f.metric]
	}
	c.Totals.LatencyS += n.Metrics.Seconds[schema.MetricLatency]
	if d := n.Metrics.Counts[metricPathsDropped]; d > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("node %s: paths_full dropped %d paths (memory bound); its path list is incomplete", n.Prefix, d))
	}
}

// addRows adds a node's operation, error and top-path rows.
func (m *merger) addRows(n *NodeProfile) {
	if n.Operations == nil {
		m.c.Warnings = append(m.c.Warnings, fmt.Sprintf("node %s: no profiling_operations file", n.Prefix))
	}
	for _, o := range n.Operations {
		sum := m.ops[o.Operation]
		if sum == nil {
			sum = &OperationStats{Operation: o.Operation}
			m.ops[o.Operation] = sum
		}
		addOperation(sum, o)
	}
	for _, e := range n.Errors {
		m.errs[errKey{e.Operation, e.Errno, e.Name}] += e.Count
	}
	for _, p := range n.TopPaths {
		k := pathKey{p.Category, p.Path}
		h := m.hot[k]
		if h == nil {
			h = &HotPath{PathStats: PathStats{Category: p.Category, Path: p.Path}}
			m.hot[k] = h
		}
		addPathStats(&h.PathStats, p)
		h.Nodes++
	}
}

// finish turns the sums into the cluster's sorted rows.
func (m *merger) finish() {
	c := m.c
	for _, o := range m.ops {
		if o.TotalCalls > 0 {
			o.AvgLatencyUs = o.TotalLatencyS * 1e6 / float64(o.TotalCalls)
		}
		c.Operations = append(c.Operations, *o)
	}
	sort.Slice(c.Operations, func(i, j int) bool {
		return lessByOrder(operationOrder, c.Operations[i].Operation, c.Operations[j].Operation)
	})
	for k, n := range m.errs {
		c.Errors = append(c.Errors, ErrorCount{Operation: k.op, Errno: k.errno, Name: k.name, Count: n})
	}
	sort.Slice(c.Errors, func(i, j int) bool {
		a, b := c.Errors[i], c.Errors[j]
		if a.Operation != b.Operation {
			return lessByOrder(operationOrder, a.Operation, b.Operation)
		}
		return a.Errno < b.Errno || (a.Errno == b.Errno && a.Name < b.Name)
	})
	for _, h := range m.hot {
		c.HotPaths = append(c.HotPaths, *h)
	}
	sort.Slice(c.HotPaths, func(i, j int) bool {
		a, b := c.HotPaths[i], c.HotPaths[j]
		if a.Category != b.Category {
			return lessByOrder(categoryOrder, a.Category, b.Category)
		}
		if a.TotalEvents != b.TotalEvents {
			return a.TotalEvents > b.TotalEvents
		}
		return a.Path < b.Path
	})
}

func addOperation(sum *OperationStats, o OperationStats) {
	sum.TotalCalls += o.TotalCalls
	sum.CacheHits += o.CacheHits
	sum.CacheMisses += o.CacheMisses
	sum.NegativeResults += o.NegativeResults
	sum.TotalLatencyS += o.TotalLatencyS
	sum.Errors += o.Errors
	sum.CoalescedWaits += o.CoalescedWaits
	sum.Forwarded += o.Forwarded
	sum.BackendOps += o.BackendOps
	sum.BytesServed += o.BytesServed
	// Node histograms are not in the files, so a cluster quantile cannot
	// be computed; the maximum of the nodes' values bounds it from above.
	sum.P50Us = max(sum.P50Us, o.P50Us)
	sum.P90Us = max(sum.P90Us, o.P90Us)
	sum.P99Us = max(sum.P99Us, o.P99Us)
	sum.MaxUs = max(sum.MaxUs, o.MaxUs)
}

func addPathStats(sum *PathStats, p PathStats) {
	sum.TotalEvents += p.TotalEvents
	sum.CacheHits += p.CacheHits
	sum.CacheMisses += p.CacheMisses
	sum.NegativeResults += p.NegativeResults
	sum.TTLStores += p.TTLStores
	sum.TTLServes += p.TTLServes
	sum.TTLExpires += p.TTLExpires
	sum.TTLClears += p.TTLClears
}

// The node files' row orders; names not listed sort after, alphabetically.
var (
	operationOrder = op.ProfileRowOrder()
	categoryOrder  = schema.Categories()
)

func lessByOrder(order []string, a, b string) bool {
	ia, ib := indexOr(order, a), indexOr(order, b)
	if ia != ib {
		return ia < ib
	}
	return a < b
}

func indexOr(order []string, s string) int {
	for i, o := range order {
		if o == s {
			return i
		}
	}
	return len(order)
}

// observation is what the cluster saw of one view path.
type observation struct {
	events   uint64
	negative bool // answered ENOENT at least once
}

// pathSources counts the nodes whose observed paths came from each file kind.
type pathSources struct{ full, top int }

func (s pathSources) String() string {
	return fmt.Sprintf("paths_full on %d %s, top_paths on %d %s", s.full, plural(s.full, "node"), s.top, plural(s.top, "node"))
}

// observePaths merges the paths each node saw: its paths_full file when it
// wrote one (every path), else its top_paths file (the hottest only).
func observePaths(nodes []*NodeProfile) (map[string]observation, pathSources) {
	obs := map[string]observation{}
	var src pathSources
	for _, n := range nodes {
		switch {
		case n.PathsFull != nil:
			src.full++
			for _, u := range n.PathsFull {
				o := obs[u.Path]
				o.events += u.Events()
				o.negative = o.negative || u.ENOENT > 0 || u.Result == ResultENOENT
				obs[u.Path] = o
			}
		case n.TopPaths != nil:
			src.top++
			for _, p := range n.TopPaths {
				o := obs[p.Path]
				o.events += p.TotalEvents
				o.negative = o.negative || p.NegativeResults > 0
				obs[p.Path] = o
			}
		}
	}
	return obs, src
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
