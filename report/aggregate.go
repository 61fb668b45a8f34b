package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
	TTLStores       uint64 // metadata_enoent_ttl_stores
	TTLServes       uint64
	TTLExpires      uint64
	TTLClears       uint64 // metadata_enoent_ttl_clears_on_success_or_non_enoent
	IoctlExternal   uint64
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
		{"total_counted_fuse_operations", &t.Operations},
		{"total_cache_hits", &t.CacheHits},
		{"total_cache_misses", &t.CacheMisses},
		{"total_negative_results", &t.NegativeResults},
		{"total_coalesced_waits", &t.CoalescedWaits},
		{"total_forwarded", &t.Forwarded},
		{"total_backend_ops", &t.BackendOps},
		{"total_bytes_served", &t.BytesServed},
		{"metadata_enoent_ttl_stores", &t.TTLStores},
		{"metadata_enoent_ttl_serves", &t.TTLServes},
		{"metadata_enoent_ttl_expires", &t.TTLExpires},
		{"metadata_enoent_ttl_clears_on_success_or_non_enoent", &t.TTLClears},
		{"ioctl_external_count", &t.IoctlExternal},
		{"cache_bytes", &t.CacheBytes},
	}
}

// metricPathsDropped counts the paths a node's paths_full left out.
const metricPathsDropped = "profile_paths_dropped"

// HotPath is a top_paths row summed over the nodes that reported it.
type HotPath struct {
	PathStats
	Nodes int // nodes whose top_paths file lists it in this category
}

// Path classes of the cluster summary.
const (
	ClassEnvironmentPrefix = "environment_prefix"
	ClassNegativeProbe     = "negative_probe_path"
	ClassSharedLibrary     = "shared_library"
	ClassPythonBytecode    = "python_bytecode"
	ClassPythonSource      = "python_source"
	ClassOther             = "other"
)

// PathClass counts the observed paths of one class.
type PathClass struct {
	Name    string
	Paths   int
	Events  uint64
	Example string // the class's path with most events; for environment_prefix the prefix itself
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
	c := &Cluster{Source: job.Source, Nodes: job.Nodes}
	ops := map[string]*OperationStats{}
	type errKey struct {
		op    string
		errno int64
		name  string
	}
	errs := map[errKey]uint64{}
	type pathKey struct{ category, path string }
	hot := map[pathKey]*HotPath{}
	for _, n := range job.Nodes {
		if n.Metrics == nil {
			c.Warnings = append(c.Warnings, fmt.Sprintf("node %s: no profiling_aggregate file; its counters are missing from the totals", n.Prefix))
		} else {
			c.RanksWithAggregate++
			for _, f := range c.Totals.countFields() {
				*f.v += n.Metrics.Counts[f.metric]
			}
			c.Totals.LatencyS += n.Metrics.Seconds["total_measured_latency_seconds"]
			if d := n.Metrics.Counts[metricPathsDropped]; d > 0 {
				c.Warnings = append(c.Warnings, fmt.Sprintf("node %s: paths_full dropped %d paths (memory bound); its path list is incomplete", n.Prefix, d))
			}
		}
		if n.Operations == nil {
			c.Warnings = append(c.Warnings, fmt.Sprintf("node %s: no profiling_operations file", n.Prefix))
		}
		for _, o := range n.Operations {
			sum := ops[o.Operation]
			if sum == nil {
				sum = &OperationStats{Operation: o.Operation}
				ops[o.Operation] = sum
			}
			addOperation(sum, o)
		}
		for _, e := range n.Errors {
			errs[errKey{e.Operation, e.Errno, e.Name}] += e.Count
		}
		for _, p := range n.TopPaths {
			k := pathKey{p.Category, p.Path}
			h := hot[k]
			if h == nil {
				h = &HotPath{PathStats: PathStats{Category: p.Category, Path: p.Path}}
				hot[k] = h
			}
			addPathStats(&h.PathStats, p)
			h.Nodes++
		}
	}
	for _, o := range ops {
		if o.TotalCalls > 0 {
			o.AvgLatencyUs = o.TotalLatencyS * 1e6 / float64(o.TotalCalls)
		}
		c.Operations = append(c.Operations, *o)
	}
	sort.Slice(c.Operations, func(i, j int) bool {
		return lessByOrder(operationOrder, c.Operations[i].Operation, c.Operations[j].Operation)
	})
	for k, n := range errs {
		c.Errors = append(c.Errors, ErrorCount{Operation: k.op, Errno: k.errno, Name: k.name, Count: n})
	}
	sort.Slice(c.Errors, func(i, j int) bool {
		a, b := c.Errors[i], c.Errors[j]
		if a.Operation != b.Operation {
			return lessByOrder(operationOrder, a.Operation, b.Operation)
		}
		return a.Errno < b.Errno || (a.Errno == b.Errno && a.Name < b.Name)
	})
	for _, h := range hot {
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
	obs, from := observePaths(job.Nodes)
	c.ObservedPaths, c.ObservedFrom = len(obs), from.String()
	c.Classes = classify(obs)
	return c
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
	operationOrder = []string{"getattr", "lookup", "readdir", "readlink", "open", "read", "statfs", "getxattr", "ioctl", "dirplus", "dirplus_next"}
	categoryOrder  = []string{"metadata", "data", "tree", "link", "metadata_ttl"}
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

// ClassifyPath puts a view path into one exclusive class; the first match
// wins: negative probe, shared library, Python bytecode, Python source.
func ClassifyPath(p string, negative bool) string {
	base := path.Base(p)
	switch {
	case negative:
		return ClassNegativeProbe
	case isSharedLibrary(base):
		return ClassSharedLibrary
	case strings.HasSuffix(base, ".pyc") || base == "__pycache__" || strings.Contains(p, "/__pycache__/"):
		return ClassPythonBytecode
	case strings.HasSuffix(base, ".py"):
		return ClassPythonSource
	}
	return ClassOther
}

// isSharedLibrary matches "x.so" and versioned "x.so.6", "x.so.1.2.3".
func isSharedLibrary(base string) bool {
	i := strings.LastIndex(base, ".so")
	if i <= 0 {
		return false
	}
	rest := base[i+len(".so"):]
	if rest == "" {
		return true
	}
	if rest[0] != '.' || len(rest) == 1 {
		return false
	}
	return strings.Trim(rest, "0123456789.") == ""
}

// environmentShare is the share of observed paths the environment prefix
// must hold: below 100% so that a few probes of /etc or /usr/lib64 do not
// collapse it to "/".
const environmentShare = 0.9

// classify counts the observed paths per class. environment_prefix is the
// deepest directory holding at least environmentShare of them.
func classify(obs map[string]observation) []PathClass {
	if len(obs) == 0 {
		return nil
	}
	paths := make([]string, 0, len(obs))
	for p := range obs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	under := map[string]int{}
	for _, p := range paths {
		for d := path.Dir(p); ; d = path.Dir(d) {
			under[d]++
			if d == "/" {
				break
			}
		}
	}
	// A path that is itself a directory of other observed paths counts too.
	for _, p := range paths {
		if _, isDir := under[p]; isDir {
			under[p]++
		}
	}
	prefix := "/"
	for d, n := range under {
		if float64(n) < environmentShare*float64(len(paths)) {
			continue
		}
		if dd, dp := depth(d), depth(prefix); dd > dp || (dd == dp && d < prefix) {
			prefix = d
		}
	}
	classes := []PathClass{{Name: ClassEnvironmentPrefix, Example: prefix},
		{Name: ClassNegativeProbe}, {Name: ClassSharedLibrary}, {Name: ClassPythonBytecode},
		{Name: ClassPythonSource}, {Name: ClassOther}}
	exampleEvents := make([]uint64, len(classes))
	for _, p := range paths {
		o := obs[p]
		if within(p, prefix) {
			classes[0].Paths++
			classes[0].Events += o.events
		}
		name := ClassifyPath(p, o.negative)
		i := 1
		for classes[i].Name != name {
			i++
		}
		k := &classes[i]
		k.Paths++
		k.Events += o.events
		// paths is sorted, so ties keep the smallest path.
		if k.Example == "" || o.events > exampleEvents[i] {
			k.Example, exampleEvents[i] = p, o.events
		}
	}
	return classes
}

func depth(dir string) int {
	if dir == "/" {
		return 0
	}
	return strings.Count(dir, "/")
}

// AggregateOptions select what Aggregate reads and how it names its output.
type AggregateOptions struct {
	Source string // FinalSource (default) or a snapshot tag
	Prefix string // output name prefix; default "cluster", or "cluster-<tag>" for a snapshot
	TopN   int    // hottest paths listed per category in the summary; default 20
}

// AggregateResult is what Aggregate wrote.
type AggregateResult struct {
	Cluster     *Cluster
	Files       []string // aggregate CSV, operations CSV, summary, chart
	SummaryPath string
}

// Aggregate merges <jobDir>/profiling/<source>/ into
// <jobDir>/profiling/cluster/<prefix>-profiling_{aggregate.csv,
// operations.csv,summary.md,chart.svg}.
func Aggregate(ctx context.Context, jobDir string, opts AggregateOptions) (*AggregateResult, error) {
	source, err := checkSource(opts.Source)
	if err != nil {
		return nil, err
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = "cluster"
		if source != FinalSource {
			prefix += "-" + source
		}
	}
	if strings.ContainsAny(prefix, `/\`) || strings.HasPrefix(prefix, ".") {
		return nil, fmt.Errorf("--prefix %q: want a plain file name prefix", prefix)
	}
	if opts.TopN <= 0 {
		opts.TopN = 20
	}
	job, err := LoadProfiles(ctx, jobDir, source)
	if err != nil {
		return nil, err
	}
	c := Combine(job)
	files, err := writeAll(filepath.Join(jobDir, "profiling", clusterDir), []outputFile{
		{prefix + "-profiling_aggregate.csv", c.aggregateCSV()},
		{prefix + "-profiling_operations.csv", c.operationsCSV()},
		{prefix + "-profiling_summary.md", c.summaryMarkdown(job.Dir(), opts.TopN)},
		{prefix + "-profiling_chart.svg", c.chartSVG()},
	})
	if err != nil {
		return nil, err
	}
	return &AggregateResult{Cluster: c, Files: files, SummaryPath: files[2]}, nil
}

// Text is a few lines for a terminal.
func (r *AggregateResult) Text() string {
	c, t := r.Cluster, r.Cluster.Totals
	var b strings.Builder
	fmt.Fprintf(&b, "summary: %s\n", r.SummaryPath)
	fmt.Fprintf(&b, "ranks with aggregate files: %d (nodes: %d)\n", c.RanksWithAggregate, len(c.Nodes))
	fmt.Fprintf(&b, "operations: %d, cache hits: %d, misses: %d (hit rate %s), negative: %d\n",
		t.Operations, t.CacheHits, t.CacheMisses, percent(t.CacheHits, t.CacheHits+t.CacheMisses), t.NegativeResults)
	fmt.Fprintf(&b, "measured latency: %s s, forwarded: %d, backend ops: %d\n", seconds(t.LatencyS), t.Forwarded, t.BackendOps)
	for _, k := range c.Classes {
		if k.Name == ClassEnvironmentPrefix {
			fmt.Fprintf(&b, "environment prefix: %s (%d of %d observed paths)\n", k.Example, k.Paths, c.ObservedPaths)
		}
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

func (c *Cluster) aggregateCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"metric", "value"})
	w.Write([]string{"ranks_with_aggregate_files", strconv.Itoa(c.RanksWithAggregate)})
	w.Write([]string{"nodes", strconv.Itoa(len(c.Nodes))})
	w.Write([]string{"snapshot_tag", c.Source})
	for _, f := range c.Totals.countFields() {
		w.Write([]string{f.metric, strconv.FormatUint(*f.v, 10)})
	}
	w.Write([]string{"total_measured_latency_seconds", seconds(c.Totals.LatencyS)})
	w.Flush()
	return b.Bytes()
}

func (c *Cluster) operationsCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(operationsSchema.columns)
	for _, o := range c.Operations {
		w.Write([]string{o.Operation, u64(o.TotalCalls), u64(o.CacheHits), u64(o.CacheMisses),
			u64(o.NegativeResults), micros(o.AvgLatencyUs), seconds(o.TotalLatencyS), u64(o.Errors),
			u64(o.CoalescedWaits), u64(o.Forwarded), u64(o.BackendOps), u64(o.BytesServed),
			micros(o.P50Us), micros(o.P90Us), micros(o.P99Us), micros(o.MaxUs)})
	}
	w.Flush()
	return b.Bytes()
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

func (c *Cluster) summaryMarkdown(sourceDir string, topN int) []byte {
	var b bytes.Buffer
	t := c.Totals
	fmt.Fprintf(&b, "# Copper cluster profiling summary\n\n")
	fmt.Fprintf(&b, "- Source: %s\n", sourceDir)
	fmt.Fprintf(&b, "- Ranks with aggregate files: %d\n", c.RanksWithAggregate)
	fmt.Fprintf(&b, "- Nodes with profiling files: %d\n", len(c.Nodes))
	fmt.Fprintf(&b, "\n## Totals\n\n| metric | value |\n|---|---:|\n")
	for _, f := range t.countFields() {
		fmt.Fprintf(&b, "| %s | %d |\n", f.metric, *f.v)
	}
	fmt.Fprintf(&b, "| total_measured_latency_seconds | %s |\n", seconds(t.LatencyS))
	fmt.Fprintf(&b, "\n- Cache hit rate: %s (hits / (hits + misses))\n", percent(t.CacheHits, t.CacheHits+t.CacheMisses))
	fmt.Fprintf(&b, "- Negative results: %s of operations\n", percent(t.NegativeResults, t.Operations))
	fmt.Fprintf(&b, "- ENOENT TTL serves per store: %s\n", ratio(t.TTLServes, t.TTLStores))
	fmt.Fprintf(&b, "- Coalesced waits per backend op: %s\n", ratio(t.CoalescedWaits, t.BackendOps))
	if t.Operations > 0 {
		fmt.Fprintf(&b, "- Mean measured latency: %s µs per operation\n", micros(t.LatencyS*1e6/float64(t.Operations)))
	}

	fmt.Fprintf(&b, "\n## Nodes\n\n| rank | node | role | operations | hits | misses | negative | forwarded | backend ops | cache | uptime s |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range c.Nodes {
		m := n.Metrics
		if m == nil {
			fmt.Fprintf(&b, "| ? | %s | – | – | – | – | – | – | – | – | – |\n", mdCell(n.Prefix))
			continue
		}
		rank := "?"
		if m.Rank >= 0 {
			rank = strconv.FormatInt(m.Rank, 10)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", rank, mdCell(n.Prefix), mdCell(m.Role),
			m.Counts["total_counted_fuse_operations"], m.Counts["total_cache_hits"], m.Counts["total_cache_misses"],
			m.Counts["total_negative_results"], m.Counts["total_forwarded"], m.Counts["total_backend_ops"],
			humanBytes(m.Counts["cache_bytes"]), strconv.FormatFloat(m.Seconds["uptime_s"], 'f', 1, 64))
	}

	fmt.Fprintf(&b, "\n## Operations\n\nSummed over nodes; avg µs = total latency / calls. The p99 and max columns are the\n")
	fmt.Fprintf(&b, "**maximum of the nodes' values** (an upper bound, not a cluster-wide quantile: node histograms are not in the files).\n\n")
	fmt.Fprintf(&b, "| operation | calls | hits | misses | negative | errors | coalesced | forwarded | backend ops | bytes served | avg µs | p99 µs (max of nodes) | max µs |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, o := range c.Operations {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n", mdCell(o.Operation),
			o.TotalCalls, o.CacheHits, o.CacheMisses, o.NegativeResults, o.Errors, o.CoalescedWaits, o.Forwarded,
			o.BackendOps, o.BytesServed, micros(o.AvgLatencyUs), micros(o.P99Us), micros(o.MaxUs))
	}

	if len(c.Errors) > 0 {
		fmt.Fprintf(&b, "\n## Errors\n\n| operation | errno | name | count |\n|---|---:|---|---:|\n")
		for _, e := range c.Errors {
			fmt.Fprintf(&b, "| %s | %d | %s | %d |\n", mdCell(e.Operation), e.Errno, mdCell(e.Name), e.Count)
		}
	}

	fmt.Fprintf(&b, "\n## Hottest paths\n\n")
	if len(c.HotPaths) == 0 {
		fmt.Fprintf(&b, "No top_paths files (profile_top_n / -N was 0).\n")
	} else {
		fmt.Fprintf(&b, "Sum of `total_events` over the nodes' top_paths files, top %d per category. Each node keeps\n", topN)
		fmt.Fprintf(&b, "only its own top N, so a path hot on few nodes can be undercounted.\n")
	}
	for i := 0; i < len(c.HotPaths); {
		cat := c.HotPaths[i].Category
		fmt.Fprintf(&b, "\n### %s\n\n| path | events | hits | misses | negative | nodes |\n|---|---:|---:|---:|---:|---:|\n", mdCell(cat))
		shown := 0
		for ; i < len(c.HotPaths) && c.HotPaths[i].Category == cat; i++ {
			if shown < topN {
				h := c.HotPaths[i]
				fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", mdCell(h.Path), h.TotalEvents, h.CacheHits, h.CacheMisses, h.NegativeResults, h.Nodes)
				shown++
			}
		}
	}

	fmt.Fprintf(&b, "\n## Path classes\n\n")
	if c.ObservedPaths == 0 {
		fmt.Fprintf(&b, "No observed paths (neither paths_full nor top_paths files).\n")
	} else {
		fmt.Fprintf(&b, "Observed paths: %d (%s). Each path is in one class, first match of\n", c.ObservedPaths, c.ObservedFrom)
		fmt.Fprintf(&b, "negative_probe_path (answered ENOENT), shared_library (*.so, *.so.N), python_bytecode (*.pyc, __pycache__),\n")
		fmt.Fprintf(&b, "python_source (*.py), other. environment_prefix is the deepest directory holding at least %.0f%% of the\n", environmentShare*100)
		fmt.Fprintf(&b, "observed paths.\n\n| class | paths | share | events | example |\n|---|---:|---:|---:|---|\n")
		for _, k := range c.Classes {
			fmt.Fprintf(&b, "| %s | %d | %s | %d | %s |\n", k.Name, k.Paths, percent(uint64(k.Paths), uint64(c.ObservedPaths)), k.Events, mdCell(k.Example))
		}
	}

	if len(c.Warnings) > 0 {
		fmt.Fprintf(&b, "\n## Warnings\n\n")
		for _, w := range c.Warnings {
			fmt.Fprintf(&b, "- %s\n", mdCell(w))
		}
	}
	return b.Bytes()
}

func ratio(a, b uint64) string {
	if b == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(a)/float64(b), 'f', 2, 64)
}
