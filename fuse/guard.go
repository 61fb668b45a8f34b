package fuse

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"

	"github.com/hpc-copper/copper/op"
)

// guardedViews turns guarded host prefixes (the mount itself, other
// copper mounts) into the view paths that reach them through target.
// A FUSE daemon that looks up a path inside its own mount waits on
// itself forever, so those view paths must answer ENOENT without any
// lookup. Both the given and the symlink-resolved spellings of every
// path are considered, because the kernel resolves symlinks the view
// only spells out. A target inside a guarded prefix is refused: the
// whole view would recurse.
func guardedViews(target string, prefixes []string) ([]string, error) {
	targets := spellings(target)
	var views []string
	for _, prefix := range prefixes {
		if !filepath.IsAbs(prefix) {
			return nil, fmt.Errorf("copper fuse: guard %q is not an absolute path", prefix)
		}
		for _, g := range spellings(prefix) {
			for _, t := range targets {
				if op.Within(t, g) {
					return nil, fmt.Errorf("copper fuse: target %s lies inside guarded path %s (the view would serve itself)", target, prefix)
				}
				if !op.Within(g, t) {
					continue
				}
				view := g
				if t != "/" {
					view = g[len(t):]
				}
				if !slices.Contains(views, view) {
					views = append(views, view)
				}
			}
		}
	}
	slices.Sort(views)
	return views, nil
}

// spellings returns p cleaned and, if different, with symlinks
// resolved. A path that cannot be resolved whole (a stale mount point
// answers ENOTCONN) is resolved through its parent.
func spellings(p string) []string {
	p = filepath.Clean(p)
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		dir, derr := filepath.EvalSymlinks(filepath.Dir(p))
		if derr != nil {
			return []string{p}
		}
		resolved = filepath.Join(dir, filepath.Base(p))
	}
	if resolved == p {
		return []string{p}
	}
	return []string{p, resolved}
}

// guarded reports whether a view path reaches a guarded host path.
func (f *filesystem) guarded(viewPath string) bool {
	for _, g := range f.guards {
		if op.Within(viewPath, g) {
			return true
		}
	}
	return false
}

// hiddenIn reports whether the entry name of directory dir is a guarded
// path, so that listings agree with lookups.
func (f *filesystem) hiddenIn(dir, name string) bool {
	for _, g := range f.guards {
		if path.Base(g) == name && path.Dir(g) == dir {
			return true
		}
	}
	return false
}
