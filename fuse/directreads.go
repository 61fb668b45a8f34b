package fuse

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// maxDirectPaths bounds the files DirectReads lists by path; more are
// still counted in the totals, and as dropped.
const maxDirectPaths = 4096

// DirectReads counts what DirectFiles reads straight from the host: the
// files over MaxCacheable that every node reads itself, outside the tree
// (Copper 1.0's behaviour). They never reach the node's counters, so
// without this the file-system load they make is invisible. Safe for
// concurrent use; a nil *DirectReads counts nothing.
type DirectReads struct {
	opens, bytes atomic.Int64

	mu      sync.Mutex
	files   map[string]*directFile
	dropped int64 // opens of files not listed: past maxDirectPaths distinct ones
}

// directFile is one file's counters: size and opens under
// DirectReads.mu, bytes added by concurrent reads.
type directFile struct {
	size, opens int64
	bytes       atomic.Int64
}

// DirectFile is one file read directly.
type DirectFile struct {
	Path  string `json:"path"`       // view path
	Size  int64  `json:"size_bytes"` // at its last open
	Opens int64  `json:"opens"`      // host opens
	Bytes int64  `json:"bytes_read"`
}

// DirectReadStats is what DirectReads counted since the mount started.
type DirectReadStats struct {
	// Files counts distinct view paths up to maxDirectPaths; past that,
	// each open of a file not listed counts as one more (Dropped).
	Files   int64        `json:"files"`
	Opens   int64        `json:"opens"`
	Bytes   int64        `json:"bytes"`
	Dropped int64        `json:"paths_dropped,omitempty"` // opens of files not in List
	List    []DirectFile `json:"-"`                       // by path; the profile writes it
}

// opened counts one host open of viewPath and returns the counter its
// reads add to (nil when r is nil or the list is full).
func (r *DirectReads) opened(viewPath string, size int64) *directFile {
	if r == nil {
		return nil
	}
	r.opens.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.files[viewPath]
	if !ok {
		if len(r.files) >= maxDirectPaths {
			r.dropped++
			return nil
		}
		if r.files == nil {
			r.files = map[string]*directFile{}
		}
		f = &directFile{}
		r.files[viewPath] = f
	}
	f.size = size
	f.opens++
	return f
}

// read counts n bytes read through one open of a file.
func (r *DirectReads) read(f *directFile, n int) {
	if r == nil || n <= 0 {
		return
	}
	r.bytes.Add(int64(n))
	if f != nil {
		f.bytes.Add(int64(n))
	}
}

// Stats returns the counters now.
func (r *DirectReads) Stats() DirectReadStats {
	if r == nil {
		return DirectReadStats{}
	}
	st := DirectReadStats{Opens: r.opens.Load(), Bytes: r.bytes.Load()}
	r.mu.Lock()
	st.Dropped = r.dropped
	st.Files = int64(len(r.files)) + r.dropped
	st.List = make([]DirectFile, 0, len(r.files))
	for p, f := range r.files {
		st.List = append(st.List, DirectFile{Path: p, Size: f.size, Opens: f.opens, Bytes: f.bytes.Load()})
	}
	r.mu.Unlock()
	slices.SortFunc(st.List, func(a, b DirectFile) int { return strings.Compare(a.Path, b.Path) })
	return st
}

// DirectReads returns what the mount's default large-file provider read
// straight from the host.
func (m *Mounted) DirectReads() DirectReadStats { return m.fsys.directReads.Stats() }
