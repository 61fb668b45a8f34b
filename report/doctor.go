package report

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hpc-copper/copper/profile/schema"
)

// DefaultProbeFanout is how many directories a missing name must have
// been looked for in before Doctor calls it a search-path fan-out: a
// library or module found on the first or second try costs a couple of
// misses; one behind a long LD_LIBRARY_PATH or sys.path costs one per
// entry (ld.so adds its glibc-hwcaps subdirectories to each).
const DefaultProbeFanout = 8

// The checks of Doctor.
const (
	CheckPythonBytecode = "python-bytecode"
	CheckLargeFiles     = "large-files"
	CheckProbeFanout    = "probe-fanout"
	CheckRefetch        = "backend-refetch"
)

// maxListed bounds the example paths of one finding.
const maxListed = 10

// DoctorOptions configure Doctor.
type DoctorOptions struct {
	Source string // FinalSource (default) or a snapshot tag
	// Target turns view paths into host paths; default: the job's own
	// record of it (see Paths). With neither, paths stay view paths.
	Target string
	// ProbeFanout is the threshold of the probe-fanout check; default
	// DefaultProbeFanout.
	ProbeFanout int
}

// Finding is one concrete problem and its fix.
type Finding struct {
	Check   string
	Problem string   // what was seen, with counts
	Why     string   // what it costs
	Details []string // the paths (or names) concerned, most costly first
	More    int      // details left out of the list
	Fix     string
}

// DoctorResult is what Doctor found.
type DoctorResult struct {
	JobDir, Source string
	Nodes          int
	Target         string // "" when unknown: paths are view paths
	Findings       []Finding
	Notes          []string // checks that could not run fully, and why
}

// Doctor reads a job's profile and names concrete problems, each with
// its fix.
func Doctor(ctx context.Context, jobDir string, opts DoctorOptions) (*DoctorResult, error) {
	job, err := LoadProfiles(ctx, jobDir, opts.Source)
	if err != nil {
		return nil, err
	}
	if opts.ProbeFanout <= 0 {
		opts.ProbeFanout = DefaultProbeFanout
	}
	res := &DoctorResult{JobDir: jobDir, Source: job.Source, Nodes: len(job.Nodes), Target: opts.Target}
	if res.Target == "" {
		if t, err := reportedTarget(job); err == nil {
			res.Target = t
		} else {
			res.Notes = append(res.Notes, "paths are view paths (under the mount): "+err.Error())
		}
	}
	d := doctor{res: res, job: job, paths: mergePathViews(job.Nodes)}
	if d.paths.from.full+d.paths.from.top == 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%s, %s: no node wrote path lists; run with profile_paths_full (-A) or profile_top_n (-N)",
			CheckPythonBytecode, CheckProbeFanout))
	} else if d.paths.from.full == 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%s, %s: only top_paths files (the hottest %s), so the lists are partial; profile_paths_full (-A) lists every path",
			CheckPythonBytecode, CheckProbeFanout, "paths per node"))
	}
	d.pythonBytecode()
	d.largeFiles()
	d.probeFanout(opts.ProbeFanout)
	d.refetches()
	return res, nil
}

type doctor struct {
	res   *DoctorResult
	job   *JobProfile
	paths pathViews
}

// host is the host path of a view path, when the target is known.
func (d *doctor) host(view string) string {
	if d.res.Target == "" {
		return view
	}
	return filepath.Join(d.res.Target, view)
}

func (d *doctor) add(f Finding) { d.res.Findings = append(d.res.Findings, f) }

// pathView is what the cluster saw of one view path.
type pathView struct {
	read   bool // its content was read
	exists bool // answered other than ENOENT at least once
	enoent bool // answered ENOENT at least once
}

type pathViews struct {
	by   map[string]pathView
	from pathSources
}

// mergePathViews merges every node's paths_full, else its top_paths.
func mergePathViews(nodes []*NodeProfile) pathViews {
	pv := pathViews{by: map[string]pathView{}}
	for _, n := range nodes {
		switch {
		case n.PathsFull != nil:
			pv.from.full++
			for _, u := range n.PathsFull {
				v := pv.by[u.Path]
				v.read = v.read || u.Read > 0
				v.enoent = v.enoent || u.ENOENT > 0
				v.exists = v.exists || u.ENOENT < u.Hits+u.Misses
				pv.by[u.Path] = v
			}
		case len(n.TopPaths) > 0: // written empty without profile_top_n
			pv.from.top++
			for _, p := range n.TopPaths {
				if p.Category == schema.CategoryMetadataTTL {
					continue // ENOENT-table events: the metadata row has the path
				}
				v := pv.by[p.Path]
				v.read = v.read || p.Category == schema.CategoryData
				v.enoent = v.enoent || p.NegativeResults > 0
				v.exists = v.exists || p.CacheHits+p.CacheMisses > p.NegativeResults
				pv.by[p.Path] = v
			}
		}
	}
	return pv
}

// pythonBytecode: a .py whose content was read while no .pyc of it
// exists in its __pycache__. Python looks for __pycache__/<stem>.<tag>.pyc
// and, without one, reads the source, compiles it, and fails to write
// the .pyc on the read-only mount: every process of every node compiles
// it again.
func (d *doctor) pythonBytecode() {
	compiled := map[string]bool{} // <dir>/<stem> with a .pyc seen existing
	for p, v := range d.paths.by {
		dir, base := path.Dir(p), path.Base(p)
		if !v.exists || !strings.HasSuffix(base, ".pyc") || path.Base(dir) != "__pycache__" {
			continue
		}
		stem, _, _ := strings.Cut(base, ".")
		compiled[path.Join(path.Dir(dir), stem)] = true
	}
	var missing []string
	for p, v := range d.paths.by {
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

// probeFanout: names looked for, and missing, in many directories: the
// walk of a long search path, one negative lookup per entry per node.
func (d *doctor) probeFanout(threshold int) {
	missingIn := map[string][]string{} // base name -> directories it was missing in
	foundIn := map[string][]string{}   // base name -> directories it exists in
	for p, v := range d.paths.by {
		dir, base := path.Dir(p), path.Base(p)
		switch {
		case v.enoent && !v.exists:
			missingIn[base] = append(missingIn[base], dir)
		case v.exists:
			foundIn[base] = append(foundIn[base], dir)
		}
	}
	type fan struct {
		name  string
		dirs  []string
		found []string
	}
	var fans []fan
	dirHits := map[string]int{}
	probes := 0
	for name, dirs := range missingIn {
		if len(dirs) < threshold {
			continue
		}
		sort.Strings(dirs)
		found := foundIn[name]
		sort.Strings(found)
		fans = append(fans, fan{name, dirs, found})
		probes += len(dirs)
		for _, dir := range dirs {
			dirHits[dir]++
		}
	}
	if len(fans) == 0 {
		return
	}
	sort.Slice(fans, func(i, j int) bool {
		if len(fans[i].dirs) != len(fans[j].dirs) {
			return len(fans[i].dirs) > len(fans[j].dirs)
		}
		return fans[i].name < fans[j].name
	})
	details := make([]string, 0, len(fans)+1)
	for _, f := range fans {
		where := "found nowhere"
		if len(f.found) > 0 {
			where = "found in " + d.host(f.found[0])
			if len(f.found) > 1 {
				where += fmt.Sprintf(" (and %d more)", len(f.found)-1)
			}
		}
		details = append(details, fmt.Sprintf("%s: missing in %d directories, %s", f.name, len(f.dirs), where))
	}
	// The directories most of these names were missing in are the
	// search path's entries that hold nothing the job loads.
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
	dirs, moreDirs := firstN(dirs, 5)
	for i, dir := range dirs {
		dirs[i] = fmt.Sprintf("%s (%d)", d.host(dir), dirHits[dir])
	}
	probeDirs := strings.Join(dirs, ", ")
	if moreDirs > 0 {
		probeDirs += fmt.Sprintf(", and %d more", moreDirs)
	}
	f := Finding{
		Check: CheckProbeFanout,
		Problem: fmt.Sprintf("%d %s each looked for in %d or more directories where %s missing: %d failed lookups; "+
			"the directories missed most (names missing there): %s", len(fans), plural(len(fans), "name"), threshold,
			pluralOf(len(fans), "it was", "they were"), probes, probeDirs),
		Why: "a long search path (LD_LIBRARY_PATH or RPATH for libraries, sys.path or PYTHONPATH for modules) " +
			"is walked entry by entry on every node; each miss is a lookup, and a fetch per tree",
		Fix: "shorten the search path: drop the entries that hold nothing the job loads, and put the directories " +
			"under the copper mount that hold what it loads first",
	}
	f.Details, f.More = firstN(details, maxListed)
	d.add(f)
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

// commonDir is the deepest directory holding every path.
func commonDir(paths []string) string {
	dir := path.Dir(paths[0])
	for _, p := range paths[1:] {
		for dir != "/" && dir != "." && p != dir && !strings.HasPrefix(p, dir+"/") {
			dir = path.Dir(dir)
		}
	}
	return dir
}

// shellWord quotes s for a shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func pluralOf(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func firstN(list []string, n int) ([]string, int) {
	if len(list) <= n {
		return list, 0
	}
	return list[:n], len(list) - n
}

// Text is the report for a terminal.
func (r *DoctorResult) Text() string {
	var b strings.Builder
	target := r.Target
	if target == "" {
		target = "unknown (view paths shown)"
	}
	fmt.Fprintf(&b, "copper-report doctor: %s, profiling/%s (%d %s), target %s\n", r.JobDir, r.Source, r.Nodes, plural(r.Nodes, "node"), target)
	for i, f := range r.Findings {
		fmt.Fprintf(&b, "\n%d. %s: %s\n", i+1, f.Check, f.Problem)
		fmt.Fprintf(&b, "   why: %s\n", f.Why)
		for _, d := range f.Details {
			fmt.Fprintf(&b, "   - %s\n", pathLine(d))
		}
		if f.More > 0 {
			fmt.Fprintf(&b, "   - and %d more\n", f.More)
		}
		fmt.Fprintf(&b, "   fix: %s\n", f.Fix)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	if len(r.Findings) == 0 {
		fmt.Fprintf(&b, "\nno problems found\n")
	} else {
		fmt.Fprintf(&b, "\n%d %s found\n", len(r.Findings), plural(len(r.Findings), "problem"))
	}
	return b.String()
}
