package packaging

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/testkit"
)

// lmodInit is where Debian's lmod package puts its bash initialisation
// (scripts/setup-test-deps.sh installs lmod when it is missing).
const lmodInit = "/usr/share/lmod/lmod/init/bash"

var programs = []string{"copper-launch", "copper-node", "copper-report"}

// testVersion is what the tests stamp, so --version output is known.
const testVersion = "v9.8.7-test"

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testkit.ModuleRoot()
	require.NoError(t, err)
	return root
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// cleanEnv is this process's environment without what an enclosing
// `make test` passes down (its variables and jobserver), so the make the
// tests run behaves as a user's would.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" && name != "MAKEOVERRIDES" {
			env = append(env, kv)
		}
	}
	return env
}

// makeInstall runs the real `make install` into prefix, building into a
// private BIN so that tests running binaries from the repository's bin/
// meanwhile are not disturbed.
func makeInstall(t *testing.T, prefix string) {
	t.Helper()
	run(t, repoRoot(t), nil, "make", "--no-print-directory", "install",
		"PREFIX="+prefix, "VERSION="+testVersion, "BIN="+filepath.Join(t.TempDir(), "bin"))
}

// checkVersion runs every installed binary's --version and version.
func checkVersion(t *testing.T, bin, version string) {
	t.Helper()
	for _, p := range programs {
		for _, arg := range []string{"--version", "version"} {
			out := run(t, "", nil, filepath.Join(bin, p), arg)
			lines := strings.Split(out, "\n")
			assert.Equal(t, p+" "+version, lines[0], "%s %s", p, arg)
			assert.Contains(t, out, "go: "+runtime.Version(), "%s %s names the Go version", p, arg)
			assert.Contains(t, out, "commit: ", "%s %s", p, arg)
		}
	}
}

// inLmod runs a bash script with Lmod initialised, as a user's login shell
// has it, MANPATH unset (a plain shell), and returns its output.
func inLmod(t *testing.T, script string) string {
	t.Helper()
	_, err := os.Stat(lmodInit)
	require.NoError(t, err, "Lmod is not installed: run scripts/setup-test-deps.sh (installs the lmod package)")
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MANPATH=") && !strings.HasPrefix(kv, "LOADEDMODULES=") && !strings.HasPrefix(kv, "MODULEPATH=") && !strings.HasPrefix(kv, "_LMOD") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command("bash", "-c", "set -euo pipefail\nsource "+lmodInit+"\n"+script)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "bash with Lmod:\n%s\noutput:\n%s", script, out)
	return string(out)
}

// renderMan renders a man page with the real man, wide enough that no
// flag is broken across lines.
func renderMan(t *testing.T, page string) string {
	t.Helper()
	cmd := exec.Command("man", "-l", page)
	cmd.Env = append(os.Environ(), "MANWIDTH=250", "MAN_KEEP_FORMATTING=")
	out, err := cmd.Output()
	require.NoError(t, err, "man -l %s", page)
	return string(out)
}

func TestMakeInstall(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "usr", "local")
	makeInstall(t, prefix)

	checkVersion(t, filepath.Join(prefix, "bin"), testVersion)
	for _, site := range config.Sites() {
		want, err := config.SiteFile(site)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(prefix, "share/copper/sites", site+".toml"))
		require.NoError(t, err, "site file %s", site)
		assert.Equal(t, string(want), string(got), "installed %s.toml is the embedded one", site)
	}
	for _, f := range []string{"README.md", "aurora_examples/simple_with_copper.pbs", "frontier_examples/simple_with_copper.sbatch"} {
		assert.FileExists(t, filepath.Join(prefix, "share/copper/examples", f))
	}

	// Every settings key and flag is in the two pages of the programs that
	// read settings, as man shows them.
	s := config.Default()
	for _, p := range programs {
		text := renderMan(t, filepath.Join(prefix, "share/man/man1", p+".1"))
		assert.Contains(t, text, p+" "+"-", "%s.1 has a NAME line", p)
		assert.Contains(t, text, "--version", "%s.1", p)
		if p == "copper-report" {
			assert.Contains(t, text, "--usage-root", "copper-report.1 lists the paths command's flags")
			continue
		}
		for _, k := range s.Describe() {
			assert.Contains(t, text, k.Key+" ("+k.Flag+")", "%s.1 lacks setting %s", p, k.Key)
		}
	}

	// README.md documents every long flag the man pages list (the
	// settings flags are also checked by config's README test).
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	require.NoError(t, err)
	flagRE := regexp.MustCompile(`\\-\\-([a-z0-9]+(?:\\-[a-z0-9]+)*)`)
	for _, p := range programs {
		roff, err := os.ReadFile(filepath.Join(prefix, "share/man/man1", p+".1"))
		require.NoError(t, err)
		flags := flagRE.FindAllStringSubmatch(string(roff), -1)
		require.NotEmpty(t, flags, "%s.1 lists no flag", p)
		for _, m := range flags {
			flag := "--" + strings.ReplaceAll(m[1], `\-`, "-")
			assert.True(t, strings.Contains(string(readme), flag), "README.md lacks %s's flag %s", p, flag)
		}
	}

	// The module file, loaded by the real Lmod: PATH and MANPATH lead to
	// this install, and man's own path is still searched.
	out := inLmod(t, fmt.Sprintf(`module use %s/share/modulefiles
module load copper
command -v copper-launch
copper-launch --version
man -w copper-node
man -w copper-launch
man -w copper-report
echo "manpath: $(manpath 2>/dev/null)"
module whatis copper 2>&1
`, prefix))
	assert.Contains(t, out, prefix+"/bin/copper-launch\n")
	assert.Contains(t, out, "copper-launch "+testVersion+"\n")
	for _, p := range programs {
		assert.Contains(t, out, prefix+"/share/man/man1/"+p+".1\n")
	}
	assert.Regexp(t, `manpath: .*/usr/share/man`, out, "loading copper must not hide the system's man pages")
	assert.Contains(t, out, "Version: "+testVersion)
	modfile, err := os.ReadFile(filepath.Join(prefix, "share/modulefiles/copper", testVersion+".lua"))
	require.NoError(t, err)
	assert.Contains(t, string(modfile), `local prefix = "`+prefix+`"`)
}

// Bad PREFIX and VERSION values are refused by name before anything is
// built or written.
func TestMakeRefusesBadInput(t *testing.T) {
	root := repoRoot(t)
	cases := []struct{ arg, want string }{
		{"PREFIX=relative/dir", "PREFIX 'relative/dir': want an absolute path"},
		{`PREFIX=/tmp/a"b`, `PREFIX '/tmp/a"b': no quotes or backslashes`},
		{"VERSION=1.0/evil", "VERSION '1.0/evil': want letters, digits"},
		{"VERSION=a b", "VERSION 'a b': want letters, digits"},
	}
	for _, c := range cases {
		dest := t.TempDir()
		cmd := exec.Command("make", "--no-print-directory", "install", c.arg, "DESTDIR="+dest, "BIN="+filepath.Join(dest, "bin"))
		cmd.Dir = root
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		require.Error(t, err, "make install %s succeeded:\n%s", c.arg, out)
		assert.Contains(t, string(out), c.want, "make install %s", c.arg)
		entries, err := os.ReadDir(dest)
		require.NoError(t, err)
		assert.Empty(t, entries, "make install %s wrote files", c.arg)
	}
}

// make dist: a reproducible tarball of static binaries whose checksum
// verifies, and that works unpacked anywhere, module file included.
func TestMakeDist(t *testing.T) {
	root := repoRoot(t)
	dist := filepath.Join(t.TempDir(), "dist")
	mk := func() string {
		run(t, root, nil, "make", "--no-print-directory", "dist", "DIST="+dist, "VERSION="+testVersion)
		sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
		require.NoError(t, err)
		return string(sums)
	}
	sums := mk()
	name := "copper-" + testVersion + "-linux-" + runtime.GOARCH
	tarball := filepath.Join(dist, name+".tar.gz")
	require.FileExists(t, tarball)

	// The real sha256sum verifies the file, and it says what Go computes.
	run(t, dist, nil, "sha256sum", "--check", "--strict", "SHA256SUMS")
	data, err := os.ReadFile(tarball)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	assert.Equal(t, hex.EncodeToString(sum[:])+"  "+name+".tar.gz\n", sums)
	assert.Equal(t, sums, mk(), "make dist again: same bytes")
	entries, err := os.ReadDir(dist)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"SHA256SUMS", name + ".tar.gz"}, names, "dist/ holds only the tarball and its sums")

	unpack := t.TempDir()
	run(t, unpack, nil, "tar", "-xzf", tarball)
	top := filepath.Join(unpack, name)
	for _, p := range programs {
		assertStatic(t, filepath.Join(top, "bin", p))
	}
	checkVersion(t, filepath.Join(top, "bin"), testVersion)
	for _, f := range []string{"share/copper/sites/aurora.toml", "share/man/man1/copper-node.1", "share/copper/examples/README.md"} {
		assert.FileExists(t, filepath.Join(top, f))
	}
	runStaticTree(t, filepath.Join(top, "bin"))

	// The tarball's module file finds its prefix from where it was unpacked.
	out := inLmod(t, fmt.Sprintf("module use %s/share/modulefiles\nmodule load copper\ncommand -v copper-node\ncopper-node --version\nman -w copper-node\n", top))
	assert.Contains(t, out, top+"/bin/copper-node\n")
	assert.Contains(t, out, "copper-node "+testVersion+"\n")
	assert.Contains(t, out, top+"/share/man/man1/copper-node.1\n")
}

// assertStatic checks that an executable needs no dynamic loader or
// shared library: it runs on any Linux of its architecture.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s has a dynamic loader: not static", path)
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "%s needs shared libraries", path)
}

// The Spack recipe's build, run without Spack: spack/package.py is loaded
// with a stand-in for spack.package (testdata/spackstub) and its phases
// run in a copy of the source tree, as Spack runs them in its stage. The
// installed tree must then work like make install's.
func TestSpackRecipe(t *testing.T) {
	root := repoRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	copySource(t, root, src)
	prefix := filepath.Join(t.TempDir(), "spack", "copper-main")
	stage := t.TempDir()
	here, err := os.Getwd()
	require.NoError(t, err)

	// Modules come from this machine's module cache rather than the
	// network; everything else is the recipe's environment.
	modcache := strings.TrimSpace(run(t, root, nil, "go", "env", "GOMODCACHE"))
	out := run(t, src, []string{"PYTHONPATH=" + filepath.Join(here, "testdata/spackstub"), "GOMODCACHE=" + modcache, "GOFLAGS="},
		"python3", filepath.Join(here, "testdata/run_recipe.py"), filepath.Join(here, "spack/package.py"), src, prefix, "main", stage)

	// The recipe asks for the Go that go.mod asks for.
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(goMod))
	require.NotNil(t, m, "go.mod has no go line")
	var deps []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var d struct {
			Directive string `json:"directive"`
			Args      []any  `json:"args"`
		}
		if json.Unmarshal(sc.Bytes(), &d) == nil && d.Directive == "depends_on" && len(d.Args) > 0 {
			deps = append(deps, fmt.Sprint(d.Args[0]))
		}
	}
	assert.Contains(t, deps, "go@"+m[1]+"."+m[2]+":", "package.py depends_on go must follow go.mod (%s)", m[0])

	checkVersion(t, filepath.Join(prefix, "bin"), "main")
	assert.FileExists(t, filepath.Join(prefix, "share/modulefiles/copper/main.lua"))
	assert.FileExists(t, filepath.Join(prefix, "share/man/man1/copper-launch.1"))
}

// copySource copies the module's source tree (not .git, bin/ or dist/)
// into dst, as a Spack stage holds it.
func copySource(t *testing.T, root, dst string) {
	t.Helper()
	skip := []string{".git", "bin", "dist"}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() && slices.Contains(skip, rel) {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return nil // sockets, symlinks: none belong to the build
	})
	require.NoError(t, err, "copying %s to %s", root, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}

// runStaticTree checks that the static binaries do their job, not only
// print a version (go-fuse, netpoll and the resolver without cgo): a
// 2-node tree on this host mounts, rank 1 (not the root) reads a file
// through its parent, and stop unmounts both.
func runStaticTree(t *testing.T, bin string) {
	t.Helper()
	testkit.RequireFuse(t)
	work := t.TempDir()
	target := filepath.Join(work, "target")
	require.NoError(t, os.MkdirAll(target, 0o755))
	want := []byte("served by a static copper\n")
	require.NoError(t, os.WriteFile(filepath.Join(target, "hello.txt"), want, 0o644))
	mounts := filepath.Join(work, "m{rank}")
	common := []string{"--local", "2", "--mount", mounts}
	t.Cleanup(func() {
		// On failure: stop what is left, then detach any mount so that
		// the temporary directory can be removed.
		_ = exec.Command(filepath.Join(bin, "copper-launch"), append([]string{"stop"}, common...)...).Run()
		if err := testkit.DetachMountsUnder(work); err != nil {
			t.Errorf("unmounting under %s: %v", work, err)
		}
	})
	run(t, work, nil, filepath.Join(bin, "copper-launch"), append(common, "--target", target,
		"--log-dir", filepath.Join(work, "logs"), "--key-file", filepath.Join(work, "key"))...)
	got, err := os.ReadFile(filepath.Join(work, "m1", "hello.txt"))
	require.NoError(t, err, "reading through rank 1's mount")
	assert.Equal(t, string(want), string(got))
	run(t, work, nil, filepath.Join(bin, "copper-launch"), append([]string{"stop"}, common...)...)
	left, err := osutil.MountsUnder(work)
	require.NoError(t, err)
	assert.Empty(t, left, "mounts left after stop")
}
