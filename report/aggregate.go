package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

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
	fmt.Fprintf(&b, "read directly from the target (over max_cacheable_bytes, outside the tree): %d files, %d opens, %s\n",
		t.LargeFiles, t.LargeOpens, humanBytes(t.LargeBytes))
	fmt.Fprintf(&b, "terminal ioctls (isatty probes answered ENOTTY, not errors): %d\n", t.IoctlTerminal)
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
	c.summaryTotals(&b, sourceDir)
	c.summaryNodes(&b)
	c.summaryOperations(&b)
	c.summaryHotPaths(&b, topN)
	c.summaryClasses(&b)
	return b.Bytes()
}

// summaryTotals writes the title and the cluster totals.
func (c *Cluster) summaryTotals(b *bytes.Buffer, sourceDir string) {
	t := c.Totals
	fmt.Fprintf(b, "# Copper cluster profiling summary\n\n")
	fmt.Fprintf(b, "- Source: %s\n", sourceDir)
	fmt.Fprintf(b, "- Ranks with aggregate files: %d\n", c.RanksWithAggregate)
	fmt.Fprintf(b, "- Nodes with profiling files: %d\n", len(c.Nodes))
	fmt.Fprintf(b, "\n## Totals\n\n| metric | value |\n|---|---:|\n")
	for _, f := range t.countFields() {
		fmt.Fprintf(b, "| %s | %d |\n", f.metric, *f.v)
	}
	fmt.Fprintf(b, "| total_measured_latency_seconds | %s |\n", seconds(t.LatencyS))
	fmt.Fprintf(b, "\n- Cache hit rate: %s (hits / (hits + misses))\n", percent(t.CacheHits, t.CacheHits+t.CacheMisses))
	fmt.Fprintf(b, "- Negative results: %s of operations\n", percent(t.NegativeResults, t.Operations))
	fmt.Fprintf(b, "- ENOENT TTL serves per store: %s\n", ratio(t.TTLServes, t.TTLStores))
	fmt.Fprintf(b, "- Coalesced waits per backend op: %s\n", ratio(t.CoalescedWaits, t.BackendOps))
	fmt.Fprintf(b, "- Read directly from the target (files over max_cacheable_bytes, each node on its own): %d files, %d opens, %s\n",
		t.LargeFiles, t.LargeOpens, humanBytes(t.LargeBytes))
	fmt.Fprintf(b, "- Terminal ioctls (isatty probes answered ENOTTY; not errors): %d\n", t.IoctlTerminal)
	if t.Operations > 0 {
		fmt.Fprintf(b, "- Mean measured latency: %s µs per operation\n", micros(t.LatencyS*1e6/float64(t.Operations)))
	}
}

// summaryNodes writes one row per node.
func (c *Cluster) summaryNodes(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n## Nodes\n\n| rank | node | role | operations | hits | misses | negative | forwarded | backend ops | cache | uptime s |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range c.Nodes {
		m := n.Metrics
		if m == nil {
			fmt.Fprintf(b, "| ? | %s | – | – | – | – | – | – | – | – | – |\n", mdCell(n.Prefix))
			continue
		}
		rank := "?"
		if m.Rank >= 0 {
			rank = strconv.FormatInt(m.Rank, 10)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", rank, mdCell(n.Prefix), mdCell(m.Role),
			m.Counts["total_counted_fuse_operations"], m.Counts["total_cache_hits"], m.Counts["total_cache_misses"],
			m.Counts["total_negative_results"], m.Counts["total_forwarded"], m.Counts["total_backend_ops"],
			humanBytes(m.Counts["cache_bytes"]), strconv.FormatFloat(m.Seconds["uptime_s"], 'f', 1, 64))
	}
}

// summaryOperations writes the summed operations and errors.
func (c *Cluster) summaryOperations(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n## Operations\n\nSummed over nodes; avg µs = total latency / calls. The p99 and max columns are the\n")
	fmt.Fprintf(b, "**maximum of the nodes' values** (an upper bound, not a cluster-wide quantile: node histograms are not in the files).\n\n")
	fmt.Fprintf(b, "| operation | calls | hits | misses | negative | errors | coalesced | forwarded | backend ops | bytes served | avg µs | p99 µs (max of nodes) | max µs |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, o := range c.Operations {
		fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n", mdCell(o.Operation),
			o.TotalCalls, o.CacheHits, o.CacheMisses, o.NegativeResults, o.Errors, o.CoalescedWaits, o.Forwarded,
			o.BackendOps, o.BytesServed, micros(o.AvgLatencyUs), micros(o.P99Us), micros(o.MaxUs))
	}

	if len(c.Errors) > 0 {
		fmt.Fprintf(b, "\n## Errors\n\n| operation | errno | name | count |\n|---|---:|---|---:|\n")
		for _, e := range c.Errors {
			fmt.Fprintf(b, "| %s | %d | %s | %d |\n", mdCell(e.Operation), e.Errno, mdCell(e.Name), e.Count)
		}
	}
}

// summaryHotPaths writes the hottest paths per category.
func (c *Cluster) summaryHotPaths(b *bytes.Buffer, topN int) {
	fmt.Fprintf(b, "\n## Hottest paths\n\n")
	if len(c.HotPaths) == 0 {
		fmt.Fprintf(b, "No top_paths files (profile_top_n / -N was 0).\n")
	} else {
		fmt.Fprintf(b, "Sum of `total_events` over the nodes' top_paths files, top %d per category. Each node keeps\n", topN)
		fmt.Fprintf(b, "only its own top N, so a path hot on few nodes can be undercounted.\n")
	}
	for i := 0; i < len(c.HotPaths); {
		cat := c.HotPaths[i].Category
		fmt.Fprintf(b, "\n### %s\n\n| path | events | hits | misses | negative | nodes |\n|---|---:|---:|---:|---:|---:|\n", mdCell(cat))
		shown := 0
		for ; i < len(c.HotPaths) && c.HotPaths[i].Category == cat; i++ {
			if shown < topN {
				h := c.HotPaths[i]
				fmt.Fprintf(b, "| %s | %d | %d | %d | %d | %d |\n", mdCell(h.Path), h.TotalEvents, h.CacheHits, h.CacheMisses, h.NegativeResults, h.Nodes)
				shown++
			}
		}
	}
}

// summaryClasses writes the path classes and the warnings.
func (c *Cluster) summaryClasses(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n## Path classes\n\n")
	if c.ObservedPaths == 0 {
		fmt.Fprintf(b, "No observed paths (neither paths_full nor top_paths files).\n")
	} else {
		fmt.Fprintf(b, "Observed paths: %d (%s). Each path is in one class, first match of\n", c.ObservedPaths, c.ObservedFrom)
		fmt.Fprintf(b, "negative_probe_path (answered ENOENT), shared_library (*.so, *.so.N), python_bytecode (*.pyc, __pycache__),\n")
		fmt.Fprintf(b, "python_source (*.py), other. environment_prefix is the deepest directory holding at least %.0f%% of the\n", environmentShare*100)
		fmt.Fprintf(b, "observed paths.\n\n| class | paths | share | events | example |\n|---|---:|---:|---:|---|\n")
		for _, k := range c.Classes {
			fmt.Fprintf(b, "| %s | %d | %s | %d | %s |\n", k.Name, k.Paths, percent(uint64(k.Paths), uint64(c.ObservedPaths)), k.Events, mdCell(k.Example))
		}
	}

	if len(c.Warnings) > 0 {
		fmt.Fprintf(b, "\n## Warnings\n\n")
		for _, w := range c.Warnings {
			fmt.Fprintf(b, "- %s\n", mdCell(w))
		}
	}
}

func ratio(a, b uint64) string {
	if b == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(a)/float64(b), 'f', 2, 64)
}
