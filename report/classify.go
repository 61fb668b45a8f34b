package report

import (
	"path"
	"sort"
	"strings"
)

// Path classes of the cluster summary.
const (
	ClassEnvironmentPrefix = "environment_prefix"
	ClassNegativeProbe     = "negative_probe_path"
	ClassSharedLibrary     = "shared_library"
	ClassPythonBytecode    = "python_bytecode"
	ClassPythonSource      = "python_source"
	ClassOther             = "other"
)

// PathClass counts the observed paths of one class.
type PathClass struct {
	Name    string
	Paths   int
	Events  uint64
	Example string // the class's path with most events; for environment_prefix the prefix itself
}

// ClassifyPath puts a view path into one exclusive class; the first match
// wins: negative probe, shared library, Python bytecode, Python source.
func ClassifyPath(p string, negative bool) string {
	base := path.Base(p)
	switch {
	case negative:
		return ClassNegativeProbe
	case isSharedLibrary(base):
		return ClassSharedLibrary
	case strings.HasSuffix(base, ".pyc") || base == "__pycache__" || strings.Contains(p, "/__pycache__/"):
		return ClassPythonBytecode
	case strings.HasSuffix(base, ".py"):
		return ClassPythonSource
	}
	return ClassOther
}

// isSharedLibrary matches "x.so" and versioned "x.so.6", "x.so.1.2.3".
func isSharedLibrary(base string) bool {
	i := strings.LastIndex(base, ".so")
	if i <= 0 {
		return false
	}
	rest := base[i+len(".so"):]
	if rest == "" {
		return true
	}
	if rest[0] != '.' || len(rest) == 1 {
		return false
	}
	return strings.Trim(rest, "0123456789.") == ""
}

// environmentShare is the share of observed paths the environment prefix
// must hold: below 100% so that a few probes of /etc or /usr/lib64 do not
// collapse it to "/".
const environmentShare = 0.9

// classify counts the observed paths per class. environment_prefix is the
// deepest directory holding at least environmentShare of them.
func classify(obs map[string]observation) []PathClass {
	if len(obs) == 0 {
		return nil
	}
	paths := make([]string, 0, len(obs))
	for p := range obs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	under := map[string]int{}
	for _, p := range paths {
		for d := path.Dir(p); ; d = path.Dir(d) {
			under[d]++
			if d == "/" {
				break
			}
		}
	}
	// A path that is itself a directory of other observed paths counts too.
	for _, p := range paths {
		if _, isDir := under[p]; isDir {
			under[p]++
		}
	}
	prefix := "/"
	for d, n := range under {
		if float64(n) < environmentShare*float64(len(paths)) {
			continue
		}
		if dd, dp := depth(d), depth(prefix); dd > dp || (dd == dp && d < prefix) {
			prefix = d
		}
	}
	classes := []PathClass{{Name: ClassEnvironmentPrefix, Example: prefix},
		{Name: ClassNegativeProbe}, {Name: ClassSharedLibrary}, {Name: ClassPythonBytecode},
		{Name: ClassPythonSource}, {Name: ClassOther}}
	exampleEvents := make([]uint64, len(classes))
	for _, p := range paths {
		o := obs[p]
		if within(p, prefix) {
			classes[0].Paths++
			classes[0].Events += o.events
		}
		name := ClassifyPath(p, o.negative)
		i := 1
		for classes[i].Name != name {
			i++
		}
		k := &classes[i]
		k.Paths++
		k.Events += o.events
		// paths is sorted, so ties keep the smallest path.
		if k.Example == "" || o.events > exampleEvents[i] {
			k.Example, exampleEvents[i] = p, o.events
		}
	}
	return classes
}

func depth(dir string) int {
	if dir == "/" {
		return 0
	}
	return strings.Count(dir, "/")
}
