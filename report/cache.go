package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hpc-copper/copper/cache"
)

// CacheOptions configure Cache.
type CacheOptions struct {
	Source string // FinalSource (default) or a snapshot tag
}

// CacheRow is one line of the cache usage table.
type CacheRow struct {
	Table      string // data, tree, metadata, negative, links, ..., combined
	FilesFound int    // node files with a row for this table
	Bytes      uint64
	Entries    uint64
}

// NodeTables is one node's <P>-cache_tables.csv.
type NodeTables struct {
	Prefix string
	Tables []TableUsage
}

// CacheResult is what Cache wrote.
type CacheResult struct {
	Source string
	Nodes  []NodeTables // by prefix
	Rows   []CacheRow   // the known tables in file order, others by name, then combined
	Files  []string     // .txt, .csv
}

// TableCombined is the row summing every table.
const TableCombined = "combined"

// Cache sums <jobDir>/tables/<source>/*-cache_tables.csv into
// <jobDir>/profiling/cluster/cache_usage_summary.{txt,csv} (prefixed
// "<tag>-" for a snapshot source, so the final summary is not replaced).
func Cache(ctx context.Context, jobDir string, opts CacheOptions) (*CacheResult, error) {
	source, err := checkSource(opts.Source)
	if err != nil {
		return nil, err
	}
	dir, files, err := nodeFiles(jobDir, "tables", source, []string{suffixCacheTables})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no cache table CSV (<host>-<pid>%s) under %s — has copper been stopped?%s",
			suffixCacheTables, dir, otherSources(filepath.Dir(dir), source))
	}
	res := &CacheResult{Source: source}
	sums := map[string]*CacheRow{}
	combined := CacheRow{Table: TableCombined, FilesFound: len(files)}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tables, err := readCacheTables(f.path)
		if err != nil {
			return nil, err
		}
		res.Nodes = append(res.Nodes, NodeTables{Prefix: f.prefix, Tables: tables})
		for _, t := range tables {
			row := sums[t.Table]
			if row == nil {
				row = &CacheRow{Table: t.Table}
				sums[t.Table] = row
			}
			row.FilesFound++
			row.Bytes += t.Bytes
			row.Entries += t.Entries
			combined.Bytes += t.Bytes
			combined.Entries += t.Entries
		}
	}
	tableOrder := cache.TableNames()
	for _, name := range tableOrder {
		if sums[name] == nil { // keep the five rows even when no node wrote one
			sums[name] = &CacheRow{Table: name}
		}
	}
	for _, row := range sums {
		res.Rows = append(res.Rows, *row)
	}
	sort.Slice(res.Rows, func(i, j int) bool { return lessByOrder(tableOrder, res.Rows[i].Table, res.Rows[j].Table) })
	res.Rows = append(res.Rows, combined)

	name := "cache_usage_summary"
	if source != FinalSource {
		name = source + "-" + name
	}
	res.Files, err = writeAll(filepath.Join(jobDir, "profiling", clusterDir), []outputFile{
		{name + ".txt", res.text(filepath.Join("tables", source))},
		{name + ".csv", res.csv()},
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func readCacheTables(path string) ([]TableUsage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseCacheTables(f, path)
}

func (r *CacheResult) text(sourceDir string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Copper cache usage (%s, %d node %s)\n\n", sourceDir, len(r.Nodes), plural(len(r.Nodes), "file"))
	fmt.Fprintf(&b, "| Table | Files Found | Used Bytes | Used Human | Entries |\n|---|---:|---:|---:|---:|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %d |\n", mdCell(row.Table), row.FilesFound, row.Bytes, humanBytes(row.Bytes), row.Entries)
	}
	fmt.Fprintf(&b, "\nPer node:\n\n| Node | Entries | Used Bytes | Used Human |\n|---|---:|---:|---:|\n")
	for _, n := range r.Nodes {
		var entries, used uint64
		for _, t := range n.Tables {
			entries += t.Entries
			used += t.Bytes
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", mdCell(n.Prefix), entries, used, humanBytes(used))
	}
	return b.Bytes()
}

func (r *CacheResult) csv() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"table", "files_found", "used_bytes", "used_human", "entries"})
	for _, row := range r.Rows {
		w.Write([]string{row.Table, strconv.Itoa(row.FilesFound), u64(row.Bytes), humanBytes(row.Bytes), u64(row.Entries)})
	}
	w.Flush()
	return b.Bytes()
}

// Text is a few lines for a terminal.
func (r *CacheResult) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "summary: %s\n", r.Files[0])
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "%-9s %10s  %d entries\n", row.Table, humanBytes(row.Bytes), row.Entries)
	}
	return b.String()
}
