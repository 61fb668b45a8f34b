package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hpc-copper/copper/profile/schema"
)

// PathsOptions configure Paths.
type PathsOptions struct {
	UsageRoot string // host directory whose files and dirs are the candidates (required)
	OutputDir string // default <jobDir>/profiling/cluster/paths
	Source    string // FinalSource (default) or a snapshot tag
	// Target is the host directory the view's "/" shows (copper's target).
	// Default: the job's own record of it, the nodes' "target" metric
	// (they must agree); an error when no node recorded one.
	Target string
}

// PathCoverage counts what the job used of the usage root.
type PathCoverage struct {
	Files, Dirs                 int    // existing under the usage root (the root itself excluded)
	ObservedFiles, ObservedDirs int    // of those, seen by copper
	Observed                    int    // distinct view paths seen by copper
	OutsideRoot                 int    // observed paths not under the usage root
	MissingProbes               int    // observed under the root with ENOENT
	Gone                        int    // observed under the root without ENOENT, absent now
	UnreadableDirs              int    // skipped while walking
	PathsDropped                uint64 // paths the nodes' paths_full files left out (memory bound)
	ObservedFrom                string
	TopPathsOnly                bool // no node wrote paths_full: Observed is a lower bound
}

// PathsResult is what Paths wrote.
type PathsResult struct {
	UsageRoot  string
	Target     string
	TargetFrom string // "--target", or the record it came from
	OutputDir  string
	Files      []string
	Coverage   PathCoverage
}

// Output files of Paths.
const (
	FileAllPaths      = "all_possible_existing_paths.txt"
	FileUsedPaths     = "used_paths_existing.txt"
	FileUnusedPaths   = "same_run_candidate_not_observed_existing_paths.txt"
	FileMissingProbes = "missing_probe_paths.txt"
	FileRootsCounts   = "roots_and_counts.txt"
	FilePathsSummary  = "paths_summary.md"
)

// Paths compares the paths copper saw (profiling/<source>/, paths_full
// where written, else top_paths) with what exists under UsageRoot now.
func Paths(ctx context.Context, jobDir string, opts PathsOptions) (*PathsResult, error) {
	root, err := usageRoot(opts.UsageRoot)
	if err != nil {
		return nil, err
	}
	job, err := LoadProfiles(ctx, jobDir, opts.Source)
	if err != nil {
		return nil, err
	}
	target, targetFrom, err := pathsTarget(job, opts.Target)
	if err != nil {
		return nil, err
	}
	out := opts.OutputDir
	if out == "" {
		out = filepath.Join(jobDir, "profiling", clusterDir, "paths")
	}

	existing, unreadable, err := walkTree(ctx, root)
	if err != nil {
		return nil, err
	}
	obs, from := observePaths(job.Nodes)
	cov := PathCoverage{Observed: len(obs), UnreadableDirs: unreadable, ObservedFrom: from.String(), TopPathsOnly: from.full == 0}
	for _, n := range job.Nodes {
		if n.Metrics != nil && n.PathsFull != nil {
			cov.PathsDropped += n.Metrics.Counts[metricPathsDropped]
		}
	}
	used, missing := matchObserved(obs, existing, target, root, &cov)
	lists := tallyPaths(existing, used, root, &cov)

	res := &PathsResult{UsageRoot: root, Target: target, TargetFrom: targetFrom, OutputDir: out, Coverage: cov}
	files, err := writeAll(out, []outputFile{
		{FileAllPaths, pathList(lists.all)},
		{FileUsedPaths, pathList(lists.used)},
		{FileUnusedPaths, pathList(lists.unused)},
		{FileMissingProbes, pathList(missing)},
		{FileRootsCounts, rootsCounts(lists.roots)},
		{FilePathsSummary, res.summaryMarkdown(job.Dir(), lists.roots)},
	})
	if err != nil {
		return nil, err
	}
	res.Files = files
	return res, nil
}

// usageRoot checks --usage-root and makes it absolute.
func usageRoot(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("--usage-root is required: the host directory to measure usage against (e.g. the conda env)")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("usage root %s: %w", dir, err)
	}
	if st, err := os.Stat(root); err != nil {
		return "", fmt.Errorf("usage root: %w", err)
	} else if !st.IsDir() {
		return "", fmt.Errorf("usage root %s is not a directory", root)
	}
	return root, nil
}

// pathsTarget is --target, else the job's record of it, and where it
// came from.
func pathsTarget(job *JobProfile, flag string) (target, from string, err error) {
	target, from = flag, "--target"
	if target == "" {
		if target, err = reportedTarget(job); err != nil {
			return "", "", err
		}
		from = "recorded by the nodes in " + filepath.Join(job.Dir(), "*"+suffixMetrics)
	}
	if !filepath.IsAbs(target) {
		return "", "", fmt.Errorf("--target %q: want an absolute host path", target)
	}
	return filepath.Clean(target), from, nil
}

// matchObserved maps the observed view paths to host paths under root:
// those that exist now (used) and the ENOENT probes (missing, sorted).
func matchObserved(obs map[string]observation, existing map[string]bool, target, root string, cov *PathCoverage) (map[string]bool, []string) {
	used := map[string]bool{}
	var missing []string
	for view, o := range obs {
		host := filepath.Join(target, view)
		if !within(host, root) {
			cov.OutsideRoot++
			continue
		}
		_, exists := existing[host]
		switch {
		case o.negative:
			missing = append(missing, host)
		case !exists && host != root:
			cov.Gone++
		}
		if exists {
			used[host] = true
		}
	}
	cov.MissingProbes = len(missing)
	sort.Strings(missing)
	return used, missing
}

// pathLists are the existing paths under the usage root, sorted, split
// by use, and counted per top-level directory.
type pathLists struct {
	all, used, unused []string
	roots             []rootCount
}

func tallyPaths(existing, used map[string]bool, root string, cov *PathCoverage) pathLists {
	var l pathLists
	l.all = make([]string, 0, len(existing))
	for p := range existing {
		l.all = append(l.all, p)
	}
	sort.Strings(l.all)
	tops := map[string]*rootCount{}
	for _, p := range l.all {
		isDir, seen := existing[p], used[p]
		if seen {
			l.used = append(l.used, p)
		} else {
			l.unused = append(l.unused, p)
		}
		if isDir {
			cov.Dirs++
			if seen {
				cov.ObservedDirs++
			}
		} else {
			cov.Files++
			if seen {
				cov.ObservedFiles++
			}
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		top, _, nested := strings.Cut(rel, "/")
		if !nested && !isDir {
			continue // a file directly under the root
		}
		topPath := filepath.Join(root, top)
		rc := tops[topPath]
		if rc == nil {
			rc = &rootCount{path: topPath}
			tops[topPath] = rc
		}
		rc.total++
		if seen {
			rc.observed++
		}
	}
	l.roots = make([]rootCount, 0, len(tops))
	for _, rc := range tops {
		l.roots = append(l.roots, *rc)
	}
	sort.Slice(l.roots, func(i, j int) bool { return l.roots[i].path < l.roots[j].path })
	return l
}

// rootsCounts renders roots_and_counts.txt.
func rootsCounts(roots []rootCount) []byte {
	var b bytes.Buffer
	for _, rc := range roots {
		fmt.Fprintf(&b, "%s\t%d\t%d\t%s\n", pathLine(rc.path), rc.observed, rc.total, percent(uint64(rc.observed), uint64(rc.total)))
	}
	return b.Bytes()
}

// rootCount is the usage of one top-level directory of the usage root.
type rootCount struct {
	path            string
	observed, total int // paths at or below it
}

// reportedTarget is the target the job's own records name: the
// "target" metric of the nodes' aggregate files, which must agree.
func reportedTarget(job *JobProfile) (string, error) {
	target, from := "", ""
	for _, n := range job.Nodes {
		if n.Metrics == nil {
			continue
		}
		t := n.Metrics.Text[schema.MetricTarget]
		if t == "" {
			continue // a node of an older copper, or Copper 1.0
		}
		if target != "" && t != target {
			return "", fmt.Errorf("the nodes' records disagree on the target: %s says %s, %s says %s; pass --target",
				from, target, n.Prefix+suffixMetrics, t)
		}
		target, from = t, n.Prefix+suffixMetrics
	}
	if target == "" {
		return "", fmt.Errorf("no --target given, and no %s in %s records the target (metric %q, written by copper-node); "+
			"pass --target, the host directory copper exported", "*"+suffixMetrics, filepath.Join(job.JobDir, job.Dir()), schema.MetricTarget)
	}
	return target, nil
}

func within(p, root string) bool {
	return root == "/" || p == root || strings.HasPrefix(p, root+"/")
}

// walkTree lists every file and directory below root (root excluded),
// mapped to whether it is a directory. Symlinks are listed, not followed,
// as copper shows them; a symlinked root itself is followed.
func walkTree(ctx context.Context, root string) (map[string]bool, int, error) {
	start := root
	if root != "/" {
		start = root + "/" // the trailing slash makes the walk follow a symlinked root
	}
	existing := map[string]bool{}
	unreadable := 0
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if p == start {
				return fmt.Errorf("walk usage root: %w", err)
			}
			unreadable++ // the directory itself was listed on the first visit
			return nil
		}
		if p != start {
			existing[p] = d.IsDir()
		}
		return nil
	})
	return existing, unreadable, err
}

func pathList(paths []string) []byte {
	var b bytes.Buffer
	for _, p := range paths {
		b.WriteString(pathLine(p))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func (r *PathsResult) summaryMarkdown(sourceDir string, roots []rootCount) []byte {
	c := r.Coverage
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Copper path usage\n\n")
	fmt.Fprintf(&b, "- Source: %s (%s)\n", sourceDir, c.ObservedFrom)
	fmt.Fprintf(&b, "- Usage root: %s\n", r.UsageRoot)
	fmt.Fprintf(&b, "- Target (host directory shown at the view's /): %s\n", r.Target)
	fmt.Fprintf(&b, "- Observed view paths: %d (outside the usage root: %d)\n\n", c.Observed, c.OutsideRoot)
	fmt.Fprintf(&b, "Observed files: %d of %d (%s)\n", c.ObservedFiles, c.Files, percent(uint64(c.ObservedFiles), uint64(c.Files)))
	fmt.Fprintf(&b, "Observed dirs: %d of %d (%s)\n", c.ObservedDirs, c.Dirs, percent(uint64(c.ObservedDirs), uint64(c.Dirs)))
	fmt.Fprintf(&b, "Observed paths: %d of %d (%s)\n", c.ObservedFiles+c.ObservedDirs, c.Files+c.Dirs,
		percent(uint64(c.ObservedFiles+c.ObservedDirs), uint64(c.Files+c.Dirs)))
	fmt.Fprintf(&b, "Missing probe paths (ENOENT) under the usage root: %d\n", c.MissingProbes)
	fmt.Fprintf(&b, "Observed under the usage root but absent now: %d\n", c.Gone)
	if c.UnreadableDirs > 0 {
		fmt.Fprintf(&b, "Unreadable directories skipped: %d\n", c.UnreadableDirs)
	}
	if c.PathsDropped > 0 {
		fmt.Fprintf(&b, "\nThe nodes' paths_full files left out %d paths (memory bound), so the observed counts are a lower bound.\n", c.PathsDropped)
	}
	if c.TopPathsOnly {
		fmt.Fprintf(&b, "\nNo node wrote paths_full (profile_paths_full / -A was off): only each node's hottest\npaths are known, so the observed counts are a lower bound.\n")
	}
	fmt.Fprintf(&b, "\n## Top-level directories\n\n| directory | observed | total | share |\n|---|---:|---:|---:|\n")
	for _, rc := range roots {
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", mdCell(rc.path), rc.observed, rc.total, percent(uint64(rc.observed), uint64(rc.total)))
	}
	fmt.Fprintf(&b, "\n## Files\n\n")
	fmt.Fprintf(&b, "- %s: every file and directory under the usage root\n", FileAllPaths)
	fmt.Fprintf(&b, "- %s: those copper saw\n", FileUsedPaths)
	fmt.Fprintf(&b, "- %s: those it did not see\n", FileUnusedPaths)
	fmt.Fprintf(&b, "- %s: paths under the usage root answered with ENOENT\n", FileMissingProbes)
	fmt.Fprintf(&b, "- %s: per top-level directory: path, observed, total, share (tab-separated)\n", FileRootsCounts)
	return b.Bytes()
}

// Text is a few lines for a terminal.
func (r *PathsResult) Text() string {
	c := r.Coverage
	var b strings.Builder
	fmt.Fprintf(&b, "summary: %s\n", filepath.Join(r.OutputDir, FilePathsSummary))
	fmt.Fprintf(&b, "target: %s (%s)\n", r.Target, r.TargetFrom)
	fmt.Fprintf(&b, "Observed files: %d of %d (%s)\n", c.ObservedFiles, c.Files, percent(uint64(c.ObservedFiles), uint64(c.Files)))
	fmt.Fprintf(&b, "Observed dirs: %d of %d (%s)\n", c.ObservedDirs, c.Dirs, percent(uint64(c.ObservedDirs), uint64(c.Dirs)))
	fmt.Fprintf(&b, "missing probes: %d, observed outside the usage root: %d\n", c.MissingProbes, c.OutsideRoot)
	return b.String()
}
