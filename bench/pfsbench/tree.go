package pfsbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hpc-copper/copper/bench/replay"
)

// TreeInfo describes the package tree on the emulated filesystem.
type TreeInfo struct {
	Packages []string `json:"packages"` // what was copied into site/
	Files    int      `json:"files"`
	Dirs     int      `json:"dirs"`
	Links    int      `json:"links"`
	Bytes    int64    `json:"bytes"`
}

// TraceInfo describes the recorded import.
type TraceInfo struct {
	Command     string         `json:"command"`
	File        string         `json:"file"`
	Lines       int            `json:"lines"`
	Calls       int            `json:"calls"`
	Bad         int            `json:"bad_lines"`
	Ops         int            `json:"ops"` // kept: below the tree
	Kinds       map[string]int `json:"kinds"`
	LocalReplay float64        `json:"local_replay_s"` // one replay against the backing directory
}

// findPackages lists the top-level packages (directories or single-file
// modules) the import loads from Python's site directories.
const findPackages = `
import importlib, json, os, sys
before = set(sys.modules)  # site.py's own imports are not the workload's
for m in sys.argv[1].split(","):
    importlib.import_module(m.strip())
sites = sorted({os.path.realpath(p) for p in sys.path
                if os.path.basename(p) in ("dist-packages", "site-packages")}, key=len, reverse=True)
tops = set()
for name, mod in list(sys.modules.items()):
    if name in before:
        continue
    f = getattr(mod, "__file__", None)
    if not f:
        continue
    f = os.path.realpath(f)
    for s in sites:
        if f.startswith(s + os.sep):
            tops.add(os.path.join(s, f[len(s) + 1:].split(os.sep)[0]))
            break
print(json.dumps(sorted(tops)))
`

// importStatement is the Python statement of the workload.
func (r *runner) importStatement() string {
	mods := strings.Split(r.cfg.Import, ",")
	for i := range mods {
		mods[i] = strings.TrimSpace(mods[i])
	}
	return "import " + strings.Join(mods, ", ")
}

// pythonEnv is the environment of every python process: the tree at
// root first on the path, no user site, no bytecode writes, one BLAS
// thread (a hundred processes on two cores must not each start a pool).
func (r *runner) pythonEnv(root string) []string {
	return environ("PYTHONPATH="+filepath.Join(root, "site"), "PYTHONNOUSERSITE=1",
		"PYTHONDONTWRITEBYTECODE=1", "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1")
}

// buildTree copies the packages into the backing directory's site/.
func (r *runner) buildTree(ctx context.Context) (TreeInfo, error) {
	pkgs := r.cfg.Packages
	if len(pkgs) == 0 {
		out, err := runBounded(ctx, r.cfg.StepTimeout, environ("PYTHONNOUSERSITE=1"), r.cfg.Python, "-c", findPackages, r.cfg.Import)
		if err != nil {
			return TreeInfo{}, fmt.Errorf("find the packages %q loads (install them: scripts/pfsbench.sh does): %w", r.cfg.Import, err)
		}
		if err := json.Unmarshal([]byte(out.stdout), &pkgs); err != nil {
			return TreeInfo{}, fmt.Errorf("package list %q: %w", out.stdout, err)
		}
		if len(pkgs) == 0 {
			return TreeInfo{}, fmt.Errorf("%q loads nothing from a site directory", r.cfg.Import)
		}
	}
	site := filepath.Join(r.backing, "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		return TreeInfo{}, err
	}
	for _, p := range pkgs {
		// cp -a keeps modes and mtimes: Python checks .pyc files
		// against their sources' mtimes.
		if _, err := runBounded(ctx, r.cfg.StepTimeout, nil, "cp", "-a", p, site+"/"); err != nil {
			return TreeInfo{}, err
		}
	}
	info := TreeInfo{Packages: pkgs}
	err := filepath.WalkDir(site, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			info.Dirs++
		case d.Type()&fs.ModeSymlink != 0:
			info.Links++
		default:
			fi, err := d.Info()
			if err != nil {
				return err
			}
			info.Files++
			info.Bytes += fi.Size()
		}
		return nil
	})
	return info, err
}

// recordTrace runs the import once under strace against the backing
// directory, parses the trace and replays it there once as a check.
func (r *runner) recordTrace(ctx context.Context) (*replay.Trace, TraceInfo, error) {
	file := filepath.Join(r.cfg.Out, "import.strace")
	args := []string{"-f", "-qq", "-s", "0", "-e", "trace=" + replay.TraceSyscalls, "-o", file,
		r.cfg.Python, "-c", r.importStatement()}
	info := TraceInfo{
		Command: fmt.Sprintf("PYTHONPATH=<pfs>/site strace %s", strings.Join(quoteArgs(args), " ")),
		File:    file,
		Kinds:   map[string]int{},
	}
	if _, err := runBounded(ctx, r.cfg.StepTimeout, r.pythonEnv(r.backing), r.cfg.Strace, args...); err != nil {
		return nil, info, fmt.Errorf("record the import (is strace installed? scripts/pfsbench.sh installs it): %w", err)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, info, err
	}
	defer f.Close()
	tr, err := replay.Parse(f, file, r.backing)
	if err != nil {
		return nil, info, err
	}
	info.Lines, info.Calls, info.Bad, info.Ops = tr.Lines, tr.Calls, tr.Bad, len(tr.Ops)
	for _, o := range tr.Ops {
		info.Kinds[o.Kind.String()]++
	}
	if len(tr.Ops) == 0 {
		return nil, info, fmt.Errorf("trace %s: no operation below %s (%d lines, %d unparsed: %v)", file, r.backing, tr.Lines, tr.Bad, tr.First)
	}
	start := time.Now()
	res, err := replay.Run(ctx, tr, r.backing)
	if err != nil {
		return nil, info, err
	}
	info.LocalReplay = time.Since(start).Seconds()
	if res.Divergences > 0 {
		return nil, info, fmt.Errorf("replaying %s against the directory it was recorded in diverged %d times: %s", file, res.Divergences, res.First)
	}
	return tr, info, nil
}

// quoteArgs shell-quotes arguments that need it, for printed commands.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$\\;&|<>()*?") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return out
}
