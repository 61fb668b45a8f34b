package report

import (
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

// FinalSource is the directory every node writes once at shutdown; the
// other sources are snapshot tags (runtime-snapshot, pre-destroy, ...).
const FinalSource = "final"

// clusterDir is where copper-report writes, under profiling/.
const clusterDir = "cluster"

// File name suffixes after the per-node prefix "<short hostname>-<pid>".
const (
	suffixOperations  = "-" + schema.FileOperations
	suffixErrors      = "-" + schema.FileErrors
	suffixMetrics     = "-" + schema.FileAggregate
	suffixTopPaths    = "-" + schema.FileTopPaths
	suffixPathsFull   = "-" + schema.FilePathsFull
	suffixLargeFiles  = "-" + schema.FileLargeFiles
	suffixCacheTables = "-" + schema.FileCacheTables
)

// NodeProfile is what one node wrote into one profiling directory. A
// field is nil when the node wrote no such file.
type NodeProfile struct {
	Prefix     string // <short hostname>-<pid>, from the file names
	Metrics    *NodeMetrics
	Operations []OperationStats
	Errors     []ErrorCount
	TopPaths   []PathStats
	PathsFull  []PathUsage // only with profile_paths_full
	LargeFiles []LargeFile // files read straight from the target
}

// rank is the node's rank, or -1 when unknown.
func (n *NodeProfile) rank() int64 {
	if n.Metrics == nil {
		return -1
	}
	return n.Metrics.Rank
}

// JobProfile is every node's profiling files from one source directory.
type JobProfile struct {
	JobDir string
	Source string         // FinalSource or a snapshot tag
	Nodes  []*NodeProfile // by rank (unknown ranks last), then prefix
}

// Dir is the directory read, relative to the job directory.
func (j *JobProfile) Dir() string { return filepath.Join("profiling", j.Source) }

// LoadProfiles reads <jobDir>/profiling/<source>/*-profiling_*.csv
// (source "" means FinalSource).
func LoadProfiles(ctx context.Context, jobDir, source string) (*JobProfile, error) {
	source, err := checkSource(source)
	if err != nil {
		return nil, err
	}
	dir, files, err := nodeFiles(jobDir, "profiling", source,
		[]string{suffixOperations, suffixErrors, suffixMetrics, suffixTopPaths, suffixPathsFull, suffixLargeFiles})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no profiling CSV under %s — was profiling enabled (profile_metrics / -P), and has copper been stopped?%s",
			dir, otherSources(filepath.Dir(dir), source))
	}
	job := &JobProfile{JobDir: jobDir, Source: source}
	nodes := map[string]*NodeProfile{}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := nodes[f.prefix]
		if n == nil {
			n = &NodeProfile{Prefix: f.prefix}
			nodes[f.prefix] = n
			job.Nodes = append(job.Nodes, n)
		}
		if err := readNodeFile(n, f); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(job.Nodes, func(i, j int) bool {
		a, b := job.Nodes[i], job.Nodes[j]
		if ra, rb := a.rank(), b.rank(); ra != rb {
			return rb < 0 || (ra >= 0 && ra < rb)
		}
		return a.Prefix < b.Prefix
	})
	return job, nil
}

func readNodeFile(n *NodeProfile, f nodeFile) error {
	r, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer r.Close()
	switch f.suffix {
	case suffixOperations:
		n.Operations, err = ParseOperations(r, f.path)
	case suffixErrors:
		n.Errors, err = ParseErrors(r, f.path)
	case suffixMetrics:
		n.Metrics, err = ParseNodeMetrics(r, f.path)
	case suffixTopPaths:
		n.TopPaths, err = ParseTopPaths(r, f.path)
	case suffixPathsFull:
		n.PathsFull, err = ParsePathsFull(r, f.path)
	case suffixLargeFiles:
		n.LargeFiles, err = ParseLargeFiles(r, f.path)
	}
	return err
}

// checkSource defaults and validates a source directory name: it is joined
// to paths, so it must be one plain name, and "cluster" is our output.
func checkSource(source string) (string, error) {
	if source == "" {
		return FinalSource, nil
	}
	if source == clusterDir || source == "." || source == ".." || strings.ContainsAny(source, `/\`) {
		return "", fmt.Errorf("--source %q: want %q or a snapshot tag such as runtime-snapshot, pre-destroy, ioctl-snapshot, pre-reset", source, FinalSource)
	}
	return source, nil
}

type nodeFile struct {
	prefix string // <short hostname>-<pid>
	suffix string // one of the suffix constants
	path   string
}

// nodeFiles lists the per-node files with the given suffixes in
// <jobDir>/<area>/<source>, sorted by name, with errors that say what is
// wrong with the job directory.
func nodeFiles(jobDir, area, source string, suffixes []string) (string, []nodeFile, error) {
	st, err := os.Stat(jobDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil, fmt.Errorf("job directory %s does not exist", jobDir)
	case err != nil:
		return "", nil, fmt.Errorf("job directory: %w", err)
	case !st.IsDir():
		return "", nil, fmt.Errorf("%s is not a directory; expected a copper job directory (<log_output_dir>/<jobid>)", jobDir)
	}
	areaDir := filepath.Join(jobDir, area)
	if st, err := os.Stat(areaDir); err != nil || !st.IsDir() {
		hint := ""
		if area == "profiling" {
			hint = ", and was profiling enabled (profile_metrics / -P)"
		}
		return "", nil, fmt.Errorf("%s has no %s/ directory — is it a copper job directory (<log_output_dir>/<jobid>)%s?", jobDir, area, hint)
	}
	dir := filepath.Join(areaDir, source)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return dir, nil, nil // reported by the caller with its own hint
	}
	if err != nil {
		return "", nil, err
	}
	var files []nodeFile
	for _, e := range entries {
		name := e.Name()
		// Writers stage files as hidden temporaries before renaming.
		if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		for _, s := range suffixes {
			if p, ok := strings.CutSuffix(name, s); ok && p != "" {
				files = append(files, nodeFile{prefix: p, suffix: s, path: filepath.Join(dir, name)})
				break
			}
		}
	}
	return dir, files, nil
}

// otherSources names the sibling source directories, as a hint for --source.
func otherSources(areaDir, source string) string {
	entries, err := os.ReadDir(areaDir)
	if err != nil {
		return ""
	}
	var tags []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != source && e.Name() != clusterDir {
			tags = append(tags, e.Name())
		}
	}
	if len(tags) == 0 {
		return ""
	}
	return fmt.Sprintf(" (found %s; pick one with --source)", strings.Join(tags, ", "))
}
