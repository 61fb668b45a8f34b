package report

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/hpc-copper/copper/profile/schema"
)

// The checks of Doctor, one method each: what they read is in
// docs/PROFILING.md ("copper-report doctor").

// pythonBytecode: a .py whose content was read while no .pyc of it
// exists in its __pycache__. Python looks for __pycache__/<stem>.<tag>.pyc
// and, without one, reads the source, compiles it, and fails to write
// the .pyc on the read-only mount: every process of every node compiles
// it again.
func (d *doctor) pythonBytecode() {
	compiled := map[string]bool{} // <dir>/<stem> with a .pyc seen existing
	for p, v := range d.full.by {
		dir, base := path.Dir(p), path.Base(p)
		if !v.exists || !strings.HasSuffix(base, ".pyc") || path.Base(dir) != "__pycache__" {
			continue
		}
		stem, _, _ := strings.Cut(base, ".")
		compiled[path.Join(path.Dir(dir), stem)] = true
	}
	var missing []string
	for p, v := range d.full.by {
		if v.read && v.exists && strings.HasSuffix(p, ".py") && !compiled[strings.TrimSuffix(p, ".py")] {
			missing = append(missing, d.host(p))
		}
	}
	if len(missing) == 0 {
		return
	}
	sort.Strings(missing)
	dir := commonDir(missing)
	f := Finding{
		Check:   CheckPythonBytecode,
		Problem: fmt.Sprintf("%d .py %s read with no .pyc in __pycache__", len(missing), plural(len(missing), "file")),
		Why: "Python compiles them again in every process on every node: it cannot write __pycache__ " +
			"on the read-only mount, so the compiled code is never kept",
		Fix: fmt.Sprintf("before the job, with the job's Python (the .pyc name carries its version): python -m compileall -q %s", shellWord(dir)),
	}
	f.Details, f.More = firstN(missing, maxListed)
	d.add(f)
}

// largeFiles: files over max_cacheable_bytes, read by every node that
// opens them straight from the target, outside the tree.
func (d *doctor) largeFiles() {
	type large struct {
		path               string
		size, bytes, opens uint64
		nodes              int
	}
	by := map[string]*large{}
	var opens, bytes, limit uint64
	nodes := 0
	for _, n := range d.job.Nodes {
		if n.Metrics != nil {
			opens += n.Metrics.Counts[schema.MetricLargeOpens]
			bytes += n.Metrics.Counts[schema.MetricLargeBytes]
			limit = max(limit, n.Metrics.Counts[schema.MetricMaxCacheable])
			if n.Metrics.Counts[schema.MetricLargeOpens] > 0 {
				nodes++
			}
		}
		for _, f := range n.LargeFiles {
			l := by[f.Path]
			if l == nil {
				l = &large{path: f.Path}
				by[f.Path] = l
			}
			l.size = max(l.size, f.SizeBytes)
			l.bytes += f.BytesRead
			l.opens += f.Opens
			l.nodes++
		}
	}
	if opens == 0 && len(by) == 0 {
		return
	}
	list := make([]*large, 0, len(by))
	var largest uint64
	for _, l := range by {
		list = append(list, l)
		largest = max(largest, l.size)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].bytes != list[j].bytes {
			return list[i].bytes > list[j].bytes
		}
		return list[i].path < list[j].path
	})
	details := make([]string, 0, len(list))
	for _, l := range list {
		details = append(details, fmt.Sprintf("%s (%s; read on %d %s, %d %s, %s in all)", d.host(l.path), humanBytes(l.size),
			l.nodes, plural(l.nodes, "node"), l.opens, plural(int(l.opens), "open"), humanBytes(l.bytes)))
	}
	files := fmt.Sprintf("%d %s", len(list), plural(len(list), "file"))
	if len(list) == 0 {
		files = "files" // an older node wrote counts but no list
	}
	f := Finding{
		Check: CheckLargeFiles,
		Problem: fmt.Sprintf("%s over max_cacheable_bytes (%s) read straight from the target: %d %s on %d %s, %s in total",
			files, humanBytes(limit), opens, plural(int(opens), "open"), nodes, plural(nodes, "node"), humanBytes(bytes)),
		Why: "they never travel through the tree: every node that opens them reads them from the shared " +
			"file system itself, the load copper exists to avoid",
		Fix: "set large_files = chunked so they travel through the tree in chunks (one read of the target per tree)",
	}
	if largest > 0 {
		f.Fix += fmt.Sprintf(", or raise max_cacheable_bytes to at least %d (each node then keeps them in its cache memory)", largest)
	}
	f.Details, f.More = firstN(details, maxListed)
	d.add(f)
}

// fanOut is one name missing in many directories.
type fanOut struct {
	name  string
	dirs  []string // where it was missing, sorted
	found []string // where it exists, sorted
}

// fanOuts finds the names missing in threshold or more directories, most
// directories first, and counts for each directory how many of them it
// missed.
func (d *doctor) fanOuts(threshold int) ([]fanOut, map[string]int) {
	missingIn := map[string][]string{} // base name -> directories it was missing in
	foundIn := map[string][]string{}   // base name -> directories it exists in
	stems := map[string]bool{}         // <dir>/<stem> of the existing paths
	for p, v := range d.paths.by {
		if v.exists {
			dir, base := path.Dir(p), path.Base(p)
			foundIn[base] = append(foundIn[base], dir)
			stems[path.Join(dir, stem(base))] = true
		}
	}
	for p, v := range d.paths.by {
		dir, base := path.Dir(p), path.Base(p)
		// A miss next to a file of the same stem is a loader trying its
		// suffixes in the right directory (Python's __init__.abi3.so,
		// __init__.so, ... beside __init__.py), not a search-path walk.
		if v.enoent && !v.exists && !stems[path.Join(dir, stem(base))] {
			missingIn[base] = append(missingIn[base], dir)
		}
	}
	var fans []fanOut
	dirHits := map[string]int{}
	for name, dirs := range missingIn {
		if len(dirs) < threshold {
			continue
		}
		sort.Strings(dirs)
		found := foundIn[name]
		sort.Strings(found)
		fans = append(fans, fanOut{name, dirs, found})
		for _, dir := range dirs {
			dirHits[dir]++
		}
	}
	sort.Slice(fans, func(i, j int) bool {
		if len(fans[i].dirs) != len(fans[j].dirs) {
			return len(fans[i].dirs) > len(fans[j].dirs)
		}
		return fans[i].name < fans[j].name
	})
	return fans, dirHits
}

// stem is a file name up to its first dot.
func stem(base string) string {
	s, _, _ := strings.Cut(base, ".")
	return s
}

// probeFanout: names looked for, and missing, in many directories: the
// walk of a long search path, one negative lookup per entry per node.
func (d *doctor) probeFanout(threshold int) {
	fans, dirHits := d.fanOuts(threshold)
	if len(fans) == 0 {
		return
	}
	probes := 0
	details := make([]string, 0, len(fans))
	for _, f := range fans {
		probes += len(f.dirs)
		where := "not found under the mount"
		if len(f.found) > 0 {
			where = "found in " + d.host(f.found[0])
			if len(f.found) > 1 {
				where += fmt.Sprintf(" (and %d more)", len(f.found)-1)
			}
		}
		details = append(details, fmt.Sprintf("%s: missing in %d directories, %s", f.name, len(f.dirs), where))
	}
	f := Finding{
		Check: CheckProbeFanout,
		Problem: fmt.Sprintf("%d %s each looked for in %d or more directories where %s missing: %d failed lookups; "+
			"the directories missed most (names missing there): %s", len(fans), plural(len(fans), "name"), threshold,
			pluralOf(len(fans), "it was", "they were"), probes, d.mostMissed(dirHits, 5)),
		Why: "a long search path (LD_LIBRARY_PATH or RPATH for libraries, sys.path or PYTHONPATH for modules) " +
			"is walked entry by entry on every node; each miss is a lookup, and a fetch per tree",
		Fix: "shorten the search path: drop the entries that hold nothing the job loads, and put the directories " +
			"under the copper mount that hold what it loads first",
	}
	f.Details, f.More = firstN(details, maxListed)
	d.add(f)
}

// mostMissed names the n directories that most fanned-out names were
// missing in: the search path's entries that hold nothing the job loads.
func (d *doctor) mostMissed(dirHits map[string]int, n int) string {
	dirs := make([]string, 0, len(dirHits))
	for dir := range dirHits {
		dirs = append(dirs, dir)
	}
	sort.Slice(dirs, func(i, j int) bool {
		if dirHits[dirs[i]] != dirHits[dirs[j]] {
			return dirHits[dirs[i]] > dirHits[dirs[j]]
		}
		return dirs[i] < dirs[j]
	})
	dirs, more := firstN(dirs, n)
	named := make([]string, len(dirs))
	for i, dir := range dirs {
		named[i] = fmt.Sprintf("%s (%d)", d.host(dir), dirHits[dir])
	}
	out := strings.Join(named, ", ")
	if more > 0 {
		out += fmt.Sprintf(", and %d more", more)
	}
	return out
}

// refetches: paths a tree's root fetched from the backend more than
// once for the same operation.
func (d *doctor) refetches() {
	type refetch struct {
		path   string
		n      uint64
		enoent bool
	}
	var list []refetch
	var total, enoentN uint64
	roots, rootsWithPaths := 0, 0
	for _, n := range d.job.Nodes {
		if n.Metrics == nil || n.Metrics.Role != "root" {
			continue
		}
		roots++
		if n.PathsFull == nil {
			continue
		}
		rootsWithPaths++
		for _, u := range n.PathsFull {
			if u.Refetches == 0 {
				continue
			}
			r := refetch{path: u.Path, n: u.Refetches, enoent: u.Result == ResultENOENT}
			list = append(list, r)
			total += r.n
			if r.enoent {
				enoentN++
			}
		}
	}
	if roots > rootsWithPaths {
		d.res.Notes = append(d.res.Notes, fmt.Sprintf("%s: %d of %d tree %s wrote no paths_full file; run with profile_paths_full (-A) to check them",
			CheckRefetch, roots-rootsWithPaths, roots, plural(roots, "root")))
	}
	if len(list) == 0 {
		return
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].path < list[j].path
	})
	details := make([]string, 0, len(list))
	for _, r := range list {
		kind := "existing"
		if r.enoent {
			kind = "missing"
		}
		details = append(details, fmt.Sprintf("%s: %d extra %s (%s)", d.host(r.path), r.n, pluralOf(int(r.n), "fetch", "fetches"), kind))
	}
	f := Finding{
		Check: CheckRefetch,
		Problem: fmt.Sprintf("%d %s went to the backend more than once on a tree's root: %d extra backend %s (%d of the paths missing)",
			len(list), plural(len(list), "path"), total, pluralOf(int(total), "fetch", "fetches"), enoentN),
		Why: "a tree's root fetches each path once and the tree serves it from then on; a fetch again means " +
			"the root lost its answer: an ENOENT entry whose md_enoent_ttl_ms ran out, an entry evicted from a full cache, " +
			"or a file that changed during the job (then the fetch is right)",
		Fix: "for missing paths raise md_enoent_ttl_ms (a missing path then stays answered for the job); for existing " +
			"ones raise cache_memory_bytes (or cache_memory_percent) if `copper-node stats` shows evictions, " +
			"else stop the files from changing while the job runs",
	}
	f.Details, f.More = firstN(details, maxListed)
	d.add(f)
}
