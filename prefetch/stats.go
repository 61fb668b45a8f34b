package prefetch

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Stats are a prefetch's progress and outcome. Every manifest line that
// names a path counts in Total and, once dealt with, in Done, under
// exactly one outcome: Files, Dirs, Links, Other, Missing, Errors,
// Invalid, SkippedOutsideTarget, SkippedLarge or SkippedBudget.
type Stats struct {
	Manifest string `json:"manifest"`
	Total    int64  `json:"total"` // path lines read so far
	Done     int64  `json:"done"`  // of those, settled
	Files    int64  `json:"files"` // regular files now cached whole
	Dirs     int64  `json:"dirs"`  // directories listed
	Links    int64  `json:"links"` // symbolic links read
	Other    int64  `json:"other"` // fifos, sockets, devices: attributes only
	Bytes    int64  `json:"bytes"` // file data fetched
	Missing  int64  `json:"missing"`
	// Errors counts the entries that failed otherwise, by errno name
	// (EACCES, ENOTDIR, ELOOP, ENAMETOOLONG, ...).
	Errors               map[string]int64 `json:"errors,omitempty"`
	Invalid              int64            `json:"invalid"` // lines that are not absolute paths
	SkippedOutsideTarget int64            `json:"skipped_outside_target"`
	SkippedLarge         int64            `json:"skipped_large"`  // over max_cacheable_bytes: attributes only
	SkippedBudget        int64            `json:"skipped_budget"` // file data over Config.MaxBytes: attributes only
	Ancestors            int64            `json:"ancestors"`      // directories above entries, not listed, looked up
	Started              bool             `json:"started"`        // the node was ready and the manifest open
	Finished             bool             `json:"finished"`
	ElapsedSec           float64          `json:"elapsed_s"`
	Error                string           `json:"error,omitempty"` // why it did not complete
}

// Stats returns the counters now.
func (p *Prefetcher) Stats() Stats {
	p.mu.Lock()
	st := Stats{
		Manifest: p.cfg.Manifest,
		Started:  !p.started.IsZero(),
		Finished: p.finished,
	}
	switch {
	case p.finished:
		st.ElapsedSec = p.elapsed.Seconds()
	case st.Started:
		st.ElapsedSec = time.Since(p.started).Seconds()
	}
	if p.runErr != nil {
		st.Error = p.runErr.Error()
	}
	if len(p.errnos) > 0 {
		st.Errors = make(map[string]int64, len(p.errnos))
		for e, n := range p.errnos {
			st.Errors[ErrnoName(e)] += n
		}
	}
	p.mu.Unlock()
	st.Total = p.total.Load()
	st.Done = p.settled.Load()
	st.Files, st.Dirs, st.Links, st.Other = p.files.Load(), p.dirs.Load(), p.links.Load(), p.other.Load()
	st.Bytes, st.Missing, st.Invalid = p.bytes.Load(), p.missing.Load(), p.invalid.Load()
	st.SkippedOutsideTarget, st.SkippedLarge, st.SkippedBudget = p.outside.Load(), p.large.Load(), p.overBudget.Load()
	st.Ancestors = p.ancestors.Load()
	return st
}

// ErrnoName is the symbolic name of an errno ("EACCES"), or "errno N".
func ErrnoName(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return fmt.Sprintf("errno %d", int(e))
}

// Failed is the number of entries that failed with an errno other than
// ENOENT.
func (s Stats) Failed() int64 {
	var n int64
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// Summary is one line for logs and `copper-node wait --prefetched`.
func (s Stats) Summary() string {
	var b strings.Builder
	state := "running"
	switch {
	case s.Finished && s.Error == "":
		state = "done"
	case s.Finished:
		state = "stopped"
	case !s.Started:
		state = "waiting for tree-ready"
	}
	fmt.Fprintf(&b, "prefetch %s: %s, %d/%d paths in %.2fs: %d files (%d bytes), %d dirs, %d links, %d other; missing %d",
		s.Manifest, state, s.Done, s.Total, s.ElapsedSec, s.Files, s.Bytes, s.Dirs, s.Links, s.Other, s.Missing)
	if len(s.Errors) > 0 {
		names := make([]string, 0, len(s.Errors))
		for name := range s.Errors {
			names = append(names, name)
		}
		sort.Strings(names)
		b.WriteString(", errors")
		for _, name := range names {
			fmt.Fprintf(&b, " %s %d", name, s.Errors[name])
		}
	}
	fmt.Fprintf(&b, ", invalid %d, outside target %d, too large %d, over budget %d",
		s.Invalid, s.SkippedOutsideTarget, s.SkippedLarge, s.SkippedBudget)
	if s.Error != "" {
		b.WriteString(": " + s.Error)
	}
	return b.String()
}
