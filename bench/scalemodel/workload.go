// Package scalemodel is a deterministic discrete-event model of job
// startup on N nodes × P processes replaying a recorded import trace
// (package bench/replay) against a parallel filesystem directly, through
// copper's trees, or from a staged copy. Its inputs are a Calibration
// (measured CPU costs, the emulator's and published server figures) and a
// Workload (the trace plus the listings of every directory it touches);
// it never reads the clock, so one seed and one calibration give one
// answer. See docs/DESIGN.md ("bench/scalemodel") for the contract.
package scalemodel

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hpc-copper/copper/bench/replay"
)

// Entry is one name in a directory listing.
type Entry struct {
	Name string `json:"name"`
	Size int64  `json:"size,omitempty"`
	Dir  bool   `json:"dir,omitempty"`
	Link bool   `json:"link,omitempty"`
}

// TreeSize summarises the whole package tree (what staging copies).
type TreeSize struct {
	Files int   `json:"files"`
	Dirs  int   `json:"dirs"`
	Bytes int64 `json:"bytes"`
}

// Workload is the recorded import and the directories it touches.
type Workload struct {
	Trace string             `json:"trace"` // where the trace came from
	Ops   []replay.Op        `json:"ops"`   // below the tree; paths are view paths ("/" = the tree)
	Dirs  map[string][]Entry `json:"dirs"`  // every directory on a traced path, sorted by name
	Tree  TreeSize           `json:"tree"`
}

// Lister lists a view directory: entries sorted by name, or an error.
type Lister func(view string) ([]Entry, error)

// DirLister lists view paths below a host directory root.
func DirLister(root string) Lister {
	return func(view string) ([]Entry, error) { return listHost(filepath.Join(root, view)) }
}

// PackagesLister lists the view of pfsbench's emulated tree: "/" holds
// "site", "/site" holds the packages' base names, and "/site/<pkg>/…" is
// the package directory on this host (pfsbench copies them there).
func PackagesLister(pkgs []string) (Lister, error) {
	byName := map[string]string{}
	for _, p := range pkgs {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("package %q: want an absolute host path", p)
		}
		byName[filepath.Base(p)] = p
	}
	return func(view string) ([]Entry, error) {
		switch view {
		case "/":
			return []Entry{{Name: "site", Dir: true}}, nil
		case "/site":
			var es []Entry
			for name, host := range byName {
				st, err := os.Lstat(host)
				if err != nil {
					return nil, fmt.Errorf("package %s: %w", host, err)
				}
				es = append(es, Entry{Name: name, Size: st.Size(), Dir: st.IsDir(), Link: st.Mode()&fs.ModeSymlink != 0})
			}
			sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
			return es, nil
		}
		rest, ok := strings.CutPrefix(view, "/site/")
		if !ok {
			return nil, fmt.Errorf("view path %q is outside /site", view)
		}
		name, below, _ := strings.Cut(rest, "/")
		host, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("view path %q: no package %q", view, name)
		}
		return listHost(filepath.Join(host, below))
	}, nil
}

func listHost(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	es := make([]Entry, 0, len(des))
	for _, d := range des {
		fi, err := d.Info()
		if err != nil {
			continue // gone between readdir and stat, as the backend leaves it out
		}
		es = append(es, Entry{Name: d.Name(), Size: fi.Size(), Dir: d.IsDir(), Link: d.Type()&fs.ModeSymlink != 0})
	}
	return es, nil // os.ReadDir sorts by name
}

// BuildWorkload lists every directory on a path of tr (through list) and
// sizes the tree below "/site" (or "/" when there is no /site).
func BuildWorkload(tr *replay.Trace, source string, list Lister) (*Workload, error) {
	w := &Workload{Trace: source, Ops: tr.Ops, Dirs: map[string][]Entry{}}
	var add func(dir string) error
	add = func(dir string) error {
		if _, ok := w.Dirs[dir]; ok {
			return nil
		}
		es, err := list(dir)
		if err != nil {
			return fmt.Errorf("list %s: %w", dir, err)
		}
		w.Dirs[dir] = es
		return nil
	}
	for _, o := range tr.Ops {
		for _, d := range ancestors(o.Path) {
			if !w.exists(d) {
				break
			}
			if err := add(d); err != nil {
				return nil, fmt.Errorf("workload of %s, trace line %d: %w", source, o.Line, err)
			}
		}
		if e, ok := w.entry(o.Path); ok && e.Dir {
			if err := add(o.Path); err != nil {
				return nil, fmt.Errorf("workload of %s, trace line %d: %w", source, o.Line, err)
			}
		}
	}
	// The whole tree, for staging: walk the listings from the top.
	top := "/site"
	if _, ok := w.entry(top); !ok {
		top = "/"
	}
	var walk func(dir string) error
	walk = func(dir string) error {
		es, err := list(dir)
		if err != nil {
			return fmt.Errorf("size the tree: list %s: %w", dir, err)
		}
		w.Tree.Dirs++
		for _, e := range es {
			switch {
			case e.Dir:
				if err := walk(path.Join(dir, e.Name)); err != nil {
					return err
				}
			case !e.Link:
				w.Tree.Files++
				w.Tree.Bytes += e.Size
			}
		}
		return nil
	}
	if err := walk(top); err != nil {
		return nil, err
	}
	return w, nil
}

// ancestors returns "/", then each directory above p, outermost first.
func ancestors(p string) []string {
	if p == "/" {
		return nil
	}
	out := []string{"/"}
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

// components returns every path from the top down to p itself: the
// lookups a kernel path walk of p makes ("/a", "/a/b", …).
func components(p string) []string {
	if p == "/" {
		return nil
	}
	out := ancestors(p)[1:]
	return append(out, p)
}

// entry finds p in its parent's listing.
func (w *Workload) entry(p string) (Entry, bool) {
	if p == "/" {
		return Entry{Name: "/", Dir: true}, true
	}
	es, ok := w.Dirs[path.Dir(p)]
	if !ok {
		return Entry{}, false
	}
	name := path.Base(p)
	i, found := slices.BinarySearchFunc(es, name, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
	if !found {
		return Entry{}, false
	}
	return es[i], true
}

func (w *Workload) exists(p string) bool { _, ok := w.entry(p); return ok }

// Check reports what the model cannot use.
func (w *Workload) Check() error {
	if len(w.Ops) == 0 {
		return fmt.Errorf("workload %s: no operations", w.Trace)
	}
	if _, ok := w.Dirs["/"]; !ok {
		return fmt.Errorf("workload %s: no listing of the tree's top directory", w.Trace)
	}
	return nil
}
