package profile

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/hpc-copper/copper/cache"
)

// Copper 1.0's ioctl commands, issued with ioctl(fd, cmd, 0) on any file
// or directory of the mount.
const (
	IoctlClearCaches         = 100
	IoctlLogCacheTables      = 200
	IoctlLogOpCounts         = 300
	IoctlLogOpTimes          = 400
	IoctlLogOpHits           = 500
	IoctlLogOpMisses         = 600
	IoctlClearOpCounts       = 700
	IoctlClearOpHits         = 800
	IoctlClearOpMisses       = 900
	IoctlClearOpTimes        = 1000
	IoctlLogDataEvents       = 1100
	IoctlLogTreeEvents       = 1200
	IoctlLogMetadataEvents   = 1300
	IoctlClearDataEvents     = 1400
	IoctlClearTreeEvents     = 1500
	IoctlClearMetadataEvents = 1600
	IoctlLogNegative         = 1700
	IoctlClearNegative       = 1800
	IoctlReset               = 1900
	IoctlLogAll              = 2000
	IoctlClearIoctlEvents    = 2100
	IoctlLogIoctlEvents      = 2200
	IoctlDataCacheSize       = 2300
	IoctlTreeCacheSize       = 2400
	IoctlMetadataCacheSize   = 2500
)

// ioctlOutput is one "log" command: the file it writes (after "<P>-")
// and what goes in it.
type ioctlOutput struct {
	cmd    uint32
	file   string
	render func(c *Collector, w io.Writer, r Report) error
}

// ioctlOutputs lists the log commands in the order ioctl 2000 writes them.
func ioctlOutputs() []ioctlOutput {
	sizeOf := func(table string, of func(cache.Stats) cache.TableStat) func(*Collector, io.Writer, Report) error {
		return func(_ *Collector, w io.Writer, r Report) error {
			t := of(r.Cache)
			return writeCSV(w, CacheTablesHeader, [][]string{{table, strconv.Itoa(t.Entries), itoa(t.Bytes)}})
		}
	}
	events := func(cat int) func(*Collector, io.Writer, Report) error {
		return func(c *Collector, w io.Writer, _ Report) error {
			var rows [][]string
			if s := c.sketches[cat]; s != nil {
				for _, p := range s.top(0) {
					rows = append(rows, []string{p.Path, itoa(p.Events), itoa(p.Hits), itoa(p.Misses), itoa(p.Negative)})
				}
			}
			return writeCSV(w, "path,total_events,cache_hits,cache_misses,negative_results", rows)
		}
	}
	perOp := func(header string, cols func(OpRow) []string, nodeOnly bool) func(*Collector, io.Writer, Report) error {
		return func(_ *Collector, w io.Writer, r Report) error {
			var rows [][]string
			for _, o := range r.Ops {
				if nodeOnly && nodeOpOf(o.Op) == 0 {
					continue
				}
				rows = append(rows, append([]string{o.Op}, cols(o)...))
			}
			return writeCSV(w, header, rows)
		}
	}
	return []ioctlOutput{
		{IoctlLogCacheTables, "cache_tables.output", func(_ *Collector, w io.Writer, r Report) error { return WriteCacheTables(w, r) }},
		{IoctlLogOpCounts, "operation_count.output", perOp("operation,count,errors",
			func(o OpRow) []string { return []string{itoa(o.Calls), itoa(o.Errors)} }, false)},
		{IoctlLogOpTimes, "operation_time.output", perOp("operation,timed_calls,total_latency_s,avg_latency_us,p50_us,p90_us,p99_us,max_us",
			func(o OpRow) []string {
				return []string{itoa(o.Timed), seconds(o.TotalLatency), micros(o.AvgLatency()), micros(o.P50), micros(o.P90), micros(o.P99), micros(o.Max)}
			}, false)},
		{IoctlLogOpHits, "operation_cache_hit.output", perOp("operation,cache_hits",
			func(o OpRow) []string { return []string{itoa(o.Hits)} }, true)},
		{IoctlLogOpMisses, "operation_cache_miss.output", perOp("operation,cache_misses,coalesced_waits",
			func(o OpRow) []string { return []string{itoa(o.Misses), itoa(o.Coalesced)} }, true)},
		{IoctlLogDataEvents, "data_table_cache_event.output", events(1)},
		{IoctlLogTreeEvents, "tree_table_cache_event.output", events(2)},
		{IoctlLogMetadataEvents, "md_table_cache_event.output", events(0)},
		{IoctlLogNegative, "operation_cache_neg.output", perOp("operation,negative_results",
			func(o OpRow) []string { return []string{itoa(o.Negative)} }, false)},
		{IoctlLogIoctlEvents, "ioctl_cache_event.output", func(_ *Collector, w io.Writer, r Report) error {
			cmds := make([]uint32, 0, len(r.Ioctls))
			for cmd := range r.Ioctls {
				cmds = append(cmds, cmd)
			}
			slices.Sort(cmds)
			rows := make([][]string, 0, len(cmds)+1)
			for _, cmd := range cmds {
				rows = append(rows, []string{strconv.FormatUint(uint64(cmd), 10), itoa(r.Ioctls[cmd])})
			}
			rows = append(rows, []string{"external", itoa(r.IoctlExternal)})
			rows = append(rows, []string{"terminal", itoa(r.IoctlTerminal)})
			return writeCSV(w, "command,count", rows)
		}},
		{IoctlDataCacheSize, "data_cache_size.output", sizeOf("data", func(s cache.Stats) cache.TableStat { return s.Data })},
		{IoctlTreeCacheSize, "tree_cache_size.output", sizeOf("tree", func(s cache.Stats) cache.TableStat { return s.Tree })},
		{IoctlMetadataCacheSize, "md_cache_size.output", sizeOf("metadata", func(s cache.Stats) cache.TableStat { return s.Metadata })},
	}
}

// ioctlClears maps each clear command to the counters it resets.
func ioctlClears(cmd uint32) (Part, bool) {
	switch cmd {
	case IoctlClearOpCounts:
		return PartCounts, true
	case IoctlClearOpHits:
		return PartHits, true
	case IoctlClearOpMisses:
		return PartMisses, true
	case IoctlClearOpTimes:
		return PartTimes, true
	case IoctlClearDataEvents:
		return PartDataEvents, true
	case IoctlClearTreeEvents:
		return PartTreeEvents, true
	case IoctlClearMetadataEvents:
		return PartMetadataEvents, true
	case IoctlClearNegative:
		return PartNegative, true
	case IoctlClearIoctlEvents:
		return PartIoctlEvents, true
	}
	return 0, false
}

// IoctlOutputName is the file a log command writes in IoctlDir, or "".
func (c *Collector) IoctlOutputName(cmd uint32) string {
	for _, o := range ioctlOutputs() {
		if o.cmd == cmd {
			return c.prefix + "-" + o.file
		}
	}
	return ""
}

// Ioctl carries out Copper 1.0 ioctl command cmd, issued on viewPath
// (fuse.Options.OnIoctl). Every command is counted; one Copper 1.0 does
// not define counts as external and does nothing else. Log commands
// write <JobDir>/ioctl/<P>-<name>.output before returning, so the
// caller can read them when its ioctl returns.
func (c *Collector) Ioctl(cmd uint32, viewPath string) error {
	// Copper 1.0's commands are the multiples of 100 from 100 to 2500;
	// anything else (isatty's TCGETS on every Python open among them)
	// takes the cheap path.
	known := cmd >= IoctlClearCaches && cmd <= IoctlMetadataCacheSize && cmd%100 == 0
	c.ioctlMu.Lock()
	c.ioctls[cmd]++
	if !known {
		c.ioctlExternal++
	}
	c.ioctlMu.Unlock()
	if !known {
		return nil
	}
	c.log.Info("ioctl command", "cmd", cmd, "path", viewPath)

	if part, ok := ioctlClears(cmd); ok {
		c.Reset(part)
		return nil
	}
	switch cmd {
	case IoctlClearCaches:
		if c.cfg.ClearCache != nil {
			c.cfg.ClearCache()
		}
		return nil
	case IoctlReset:
		err := c.Snapshot(TagPreReset)
		if c.cfg.ClearCache != nil {
			c.cfg.ClearCache()
		}
		c.Reset(PartAll)
		return err
	}
	if c.cfg.JobDir == "" {
		return fmt.Errorf("ioctl %d: no job directory to write to", cmd)
	}
	c.writeMu.Lock()
	r := c.Report(TagIoctl)
	var errs []error
	for _, o := range ioctlOutputs() {
		if cmd != IoctlLogAll && o.cmd != cmd {
			continue
		}
		err := writeAtomic(c.IoctlDir(), c.prefix+"-"+o.file, func(w io.Writer) error { return o.render(c, w, r) })
		errs = append(errs, err)
	}
	if cmd == IoctlLogAll {
		errs = append(errs, c.writeReport(r))
	}
	c.writeMu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ioctl %d on %s: %w", cmd, viewPath, err)
	}
	return nil
}
