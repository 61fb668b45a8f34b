package profile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/profile/schema"
)

// Snapshot tags copper writes itself.
const (
	TagFinal      = "final"            // at shutdown
	TagRuntime    = "runtime-snapshot" // every profile_snapshot_interval_s
	TagPreDestroy = "pre-destroy"      // at stop, before teardown
	TagIoctl      = "ioctl-snapshot"   // ioctl 2000, copper-node snapshot
	TagPreReset   = "pre-reset"        // ioctl 1900, before the reset
)

// ValidTag checks a snapshot tag chosen by a user: one path component of
// letters, digits, '.', '_' and '-', not starting with '.', at most 64
// bytes, and not "final" or "cluster" (written by shutdown and
// copper-report).
func ValidTag(tag string) error {
	if tag == "" || len(tag) > 64 || tag[0] == '.' {
		return fmt.Errorf("snapshot tag %q: want 1-64 characters, not starting with '.'", tag)
	}
	for _, r := range tag {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("snapshot tag %q: character %q not allowed (letters, digits, '.', '_', '-')", tag, r)
		}
	}
	if tag == TagFinal || tag == "cluster" {
		return fmt.Errorf("snapshot tag %q is reserved", tag)
	}
	return nil
}

// ProfilingDir and TablesDir are where files tagged tag go.
func (c *Collector) ProfilingDir(tag string) string {
	return filepath.Join(c.cfg.JobDir, "profiling", tag)
}

func (c *Collector) TablesDir(tag string) string {
	return filepath.Join(c.cfg.JobDir, "tables", tag)
}

// IoctlDir is where the ioctl "log" commands write.
func (c *Collector) IoctlDir() string { return filepath.Join(c.cfg.JobDir, "ioctl") }

// Snapshot writes profiling/<tag>/ and tables/<tag>/ for the counters as
// they are now, replacing files of an earlier snapshot of the same tag.
// Each file is replaced atomically.
func (c *Collector) Snapshot(tag string) error {
	if tag != TagFinal {
		if err := ValidTag(tag); err != nil {
			return err
		}
	}
	if c.cfg.JobDir == "" {
		return errors.New("profiling snapshot: no job directory")
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeReport(c.Report(tag))
}

// WriteFinal writes profiling/final/ and tables/final/ (at shutdown).
func (c *Collector) WriteFinal() error { return c.Snapshot(TagFinal) }

// writeReport writes one report's files. c.writeMu is held.
func (c *Collector) writeReport(r Report) error {
	pdir := c.ProfilingDir(r.Tag)
	files := []struct {
		name   string
		render func(io.Writer, Report) error
	}{
		{schema.FileOperations, WriteOperations},
		{schema.FileErrors, WriteErrors},
		{schema.FileAggregate, WriteAggregate},
		{schema.FileTopPaths, WriteTopPaths},
		{schema.FileLargeFiles, WriteLargeFiles},
		{schema.FileSummary, WriteSummary},
	}
	if r.PathsFull {
		files = append(files, struct {
			name   string
			render func(io.Writer, Report) error
		}{schema.FilePathsFull, WritePathsFull})
	}
	for _, f := range files {
		if err := writeAtomic(pdir, c.prefix+"-"+f.name, func(w io.Writer) error { return f.render(w, r) }); err != nil {
			return err
		}
	}
	return writeAtomic(c.TablesDir(r.Tag), c.prefix+"-"+schema.FileCacheTables,
		func(w io.Writer) error { return WriteCacheTables(w, r) })
}

// writeAtomic creates dir and replaces dir/name atomically and durably
// (osutil.WriteFileFunc): a reader, or a node killed mid-write, sees the
// old file or the new one, never a part.
func writeAtomic(dir, name string, render func(io.Writer) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("profile output directory: %w", err)
	}
	return osutil.WriteFileFunc(filepath.Join(dir, name), 0o644, render)
}
