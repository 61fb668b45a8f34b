package report

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
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
	if opts.Target != "" && !filepath.IsAbs(opts.Target) {
		return nil, fmt.Errorf("--target %q: want an absolute host path", opts.Target)
	}
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
	d := doctor{res: res, job: job, paths: mergePathViews(job.Nodes, false), full: mergePathViews(job.Nodes, true)}
	switch {
	case d.paths.from.full+d.paths.from.top == 0:
		res.Notes = append(res.Notes, fmt.Sprintf("%s: no node wrote path lists; run with profile_paths_full (-A) or profile_top_n (-N)", CheckProbeFanout))
	case d.paths.from.full == 0:
		res.Notes = append(res.Notes, fmt.Sprintf("%s: only top_paths files (the hottest paths per node), so the list is partial; profile_paths_full (-A) lists every path", CheckProbeFanout))
	}
	if d.full.from.full == 0 {
		// A top-N list can leave out the .pyc and so blame a compiled file.
		res.Notes = append(res.Notes, fmt.Sprintf("%s: needs every path a node saw; run with profile_paths_full (-A)", CheckPythonBytecode))
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
	paths pathViews // every node's paths_full, else its top_paths
	full  pathViews // the paths_full files only
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

// mergePathViews merges every node's paths_full, else (unless fullOnly)
// its top_paths.
func mergePathViews(nodes []*NodeProfile, fullOnly bool) pathViews {
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
		case len(n.TopPaths) > 0 && !fullOnly: // written empty without profile_top_n
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
