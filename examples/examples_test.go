// Package examples holds the Aurora and Frontier job scripts. These tests
// keep them from rotting: every script must parse, and every script is run
// end to end in a sandbox where mpiexec, srun, module, copper-launch and
// copper-report are stubs that record their arguments, and "torch" is an
// empty package on a fake file system mirrored under a fake mount. Every
// copper-launch command line a script runs is then parsed by the real
// launcher (launch.Parse), so a flag that does not exist, or is used with
// the wrong command, fails here rather than in a user's job.
package examples

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/launch"
)

// script is one example job script and what running it should show.
type script struct {
	path         string
	site         string // aurora or frontier
	copper       bool   // starts copper
	ranksPerNode int    // entries in its CPU binding
}

var scripts = []script{
	{"aurora_examples/simple_with_copper.pbs", "aurora", true, 12},
	{"aurora_examples/simple_without_copper.pbs", "aurora", false, 12},
	{"frontier_examples/simple_with_copper.sbatch", "frontier", true, 8},
	{"frontier_examples/simple_without_copper.sbatch", "frontier", false, 8},
}

// TestEveryScriptIsListed keeps a new script from escaping the tests below.
func TestEveryScriptIsListed(t *testing.T) {
	var found []string
	for _, pattern := range []string{"*/*.pbs", "*/*.sbatch", "*/*.sh"} {
		m, err := filepath.Glob(pattern)
		require.NoError(t, err)
		found = append(found, m...)
	}
	var listed []string
	for _, s := range scripts {
		listed = append(listed, s.path)
	}
	sort.Strings(found)
	sort.Strings(listed)
	assert.Equal(t, listed, found)
}

func TestScriptsParse(t *testing.T) {
	for _, s := range scripts {
		t.Run(s.path, func(t *testing.T) {
			out, err := exec.Command("bash", "-n", s.path).CombinedOutput()
			require.NoError(t, err, "bash -n %s:\n%s", s.path, out)
		})
	}
}

func TestScriptsShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatalf("shellcheck not installed (%v): run scripts/setup-test-deps.sh (Debian package shellcheck)", err)
	}
	for _, s := range scripts {
		t.Run(s.path, func(t *testing.T) {
			out, err := exec.Command(sc, "-s", "bash", "-S", "warning", s.path).CombinedOutput()
			require.NoError(t, err, "shellcheck %s:\n%s", s.path, out)
		})
	}
}

// TestLaunchCheckRejects shows the flag check below can fail.
func TestLaunchCheckRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--site", "aurora", "--no-such-flag"},
		{"stop", "--site", "frontier", "--foreground"},   // start only
		{"start", "--site", "aurora", "--timeout", "1m"}, // wait, stop, stats only
	} {
		_, err := parseLaunch(args)
		assert.Error(t, err, "%q", args)
	}
}

func parseLaunch(args []string) (launch.Command, error) {
	return launch.Parse(args, nil)
}

// runCase is one run of a script in the sandbox.
type runCase struct {
	name string
	env  map[string]string // on top of the sandbox's
	fail bool              // the script must exit non-zero (and skip the common checks)
	// check looks at the parsed copper-launch calls and the other stubs' calls.
	check func(t *testing.T, sb sandbox, launches []launch.Command, calls []call)
	// output looks at the script's output.
	output func(t *testing.T, sb sandbox, out string)
}

// extraCases are the runs beyond the defaults: each setting given by the
// environment reaches what the script runs.
func extraCases(s script) []runCase {
	var cases []runCase
	if s.copper {
		cases = append(cases, runCase{
			name: "interface",
			env:  map[string]string{"COPPER_INTERFACE": "hsn7"},
			check: func(t *testing.T, sb sandbox, launches []launch.Command, calls []call) {
				start := launches[slices.IndexFunc(launches, func(c launch.Command) bool { return c.Name == "start" })]
				assert.Equal(t, "hsn7", start.Settings.Interface, "COPPER_INTERFACE reaches the start")
			},
		})
		// A start that fails: the script stops at once, says so, and
		// names no file that does not exist.
		failing := "start"
		if s.site == "frontier" {
			failing = "wait"
		}
		cases = append(cases, runCase{
			name: "failed start",
			env:  map[string]string{"STUB_FAIL": failing},
			fail: true,
			output: func(t *testing.T, sb sandbox, out string) {
				assert.Contains(t, out, "stub: copper-launch "+failing+" failed")
				assert.Contains(t, out, "copper: startup failed")
				assert.Contains(t, out, "no "+filepath.Join(sb.jobDir(s.site), "logs")+": the start failed before any node wrote a file")
				assert.NotContains(t, out, "<host>", "no file pattern that may not exist")
				assert.NotContains(t, out, "import torch on", "nothing runs after a failed start")
				assert.Contains(t, out, "copper: stopping", "the EXIT trap stops what did start")
			},
		})
	}
	if s.copper && s.site == "frontier" {
		// The copper step dies before any node started (srun refused it):
		// no node will ever fail a wait, so the script watches the step.
		cases = append(cases, runCase{
			name: "copper step dies",
			env:  map[string]string{"STUB_FAIL": "start", "STUB_WAIT_HANG": "1"},
			fail: true,
			output: func(t *testing.T, sb sandbox, out string) {
				assert.Contains(t, out, "copper: the copper step ended (status 1) before every node was ready")
				assert.Contains(t, out, "copper: startup failed")
				assert.NotContains(t, out, "import torch on")
			},
		})
	}
	if s.site == "aurora" {
		// The baseline and the copper run import the same tree, SITE_PACKAGES,
		// whatever the module's PYTHONPATH says.
		cases = append(cases, runCase{
			name: "site packages",
			env:  map[string]string{"SITE_PACKAGES": "OTHER"},
			output: func(t *testing.T, sb sandbox, out string) {
				want := sb.otherSitePackages + "/torch/__init__.py"
				if s.copper {
					want = sb.mount + want
				}
				assert.Contains(t, out, "rank 0 imported "+want)
			},
		})
	}
	if s.site == "frontier" {
		// A list written with ':' survives sbatch --export; one with commas
		// from the environment is kept as it is.
		for name, bind := range map[string]string{"colons": "map_cpu:3:5:7:9:11:13:15:17", "commas": "map_cpu:3,5,7,9,11,13,15,17"} {
			cases = append(cases, runCase{
				name: "CPU_BIND with " + name,
				env:  map[string]string{"CPU_BIND": bind},
				check: func(t *testing.T, sb sandbox, launches []launch.Command, calls []call) {
					assert.Contains(t, appLaunch(t, calls).args, "--cpu-bind=map_cpu:3,5,7,9,11,13,15,17")
				},
			})
		}
	}
	return cases
}

func TestScriptsRun(t *testing.T) {
	python := realPython(t)
	for _, s := range scripts {
		cases := append([]runCase{{name: "defaults"}}, extraCases(s)...)
		if s.copper {
			cases = append(cases, runCase{
				name: "diagnosing",
				env:  map[string]string{"COPPER_LOG_LEVEL": "4", "COPPER_PROFILE": "1", "COPPER_ADDRESS_BOOK": "/site/copper.book"},
				check: func(t *testing.T, sb sandbox, launches []launch.Command, calls []call) {
					start := launches[slices.IndexFunc(launches, func(c launch.Command) bool { return c.Name == "start" })]
					assert.Equal(t, 4, start.Settings.LogLevel)
					assert.True(t, start.Settings.ProfileMetrics)
					if s.site == "aurora" {
						assert.Equal(t, "facility", start.Settings.AddressBookSource)
						assert.Equal(t, "/site/copper.book", start.Settings.AddressBook)
					}
					reports := callsOf(calls, "copper-report")
					require.Len(t, reports, 1)
					assert.Equal(t, []string{"aggregate", sb.jobDir(s.site)}, reports[0].args)
					assert.Equal(t, "stop", launches[len(launches)-1].Name, "the report reads what the stop wrote")
					assert.Less(t, indexOf(calls, "copper-launch", "stop"), indexOf(calls, "copper-report", "aggregate"))
				},
			})
		}
		for _, rc := range cases {
			t.Run(s.path+"/"+rc.name, func(t *testing.T) {
				sb := newSandbox(t, python)
				if rc.env["SITE_PACKAGES"] == "OTHER" {
					rc.env = map[string]string{"SITE_PACKAGES": sb.otherSitePackages}
				}
				out := sb.run(t, s, rc.env, rc.fail)
				calls := sb.calls(t)
				launches := parseLaunches(t, calls)
				if rc.output != nil {
					rc.output(t, sb, out)
				}
				if rc.fail {
					return
				}

				// The application: every rank's cores are off copper's
				// service cores, one core list per rank.
				app := appLaunch(t, calls)
				site, err := config.Load(s.site)
				require.NoError(t, err)
				bind := cpuBinding(t, app.args)
				assert.Len(t, bind, s.ranksPerNode, "one CPU entry per rank")
				for _, cpus := range bind {
					for _, c := range cpus {
						assert.NotContains(t, site.ServiceCores, c, "application CPU %d is a service core of %s", c, s.site)
					}
				}

				if !s.copper {
					assert.Empty(t, launches)
					assert.Contains(t, out, "rank 0 imported "+sb.lustre+"/")
					return
				}
				assert.Contains(t, out, "rank 0 imported "+sb.mount+sb.lustre+"/", "torch must come through the mount")
				require.NotEmpty(t, launches)
				names := make([]string, len(launches))
				for i, c := range launches {
					names[i] = c.Name
					assert.Equal(t, s.site, c.Site, "every call names the site")
					assert.Equal(t, sb.mount, c.Settings.Mount, "every call agrees on the mount")
				}
				assert.Equal(t, "stop", names[len(names)-1], "copper is stopped last: %v", names)
				assert.Equal(t, 1, strings.Count(strings.Join(names, " "), "stop"), "one stop: %v", names)
				start := launches[slices.Index(names, "start")]
				assert.Equal(t, sb.logDir, start.Settings.LogDir)
				assert.Equal(t, filepath.Base(sb.jobDir(s.site)), start.Settings.JobID)
				if rc.env["COPPER_INTERFACE"] == "" {
					assert.NotContains(t, start.Args, "--interface", "the site's interface unless one is given")
					assert.Equal(t, site.Interface, start.Settings.Interface)
				}
				if s.site == "frontier" {
					assert.True(t, start.Foreground, "the Slurm start runs in the foreground of a background step")
					assert.Contains(t, names, "wait", "and is waited for")
					wait := launches[slices.Index(names, "wait")]
					assert.Equal(t, filepath.Base(sb.jobDir(s.site)), wait.Settings.JobID, "the wait names its job: another job's failure record is not its own")
					i := slices.IndexFunc(calls, func(c call) bool { return c.prog == "srun" && slices.Contains(c.args, "wait") })
					require.GreaterOrEqual(t, i, 0, "an srun runs copper-launch wait")
					assert.Contains(t, calls[i].args, "--kill-on-bad-exit=1", "one node's failed wait ends the step")
				} else {
					assert.False(t, start.Foreground, "the PBS start returns once the tree is ready")
					assert.Equal(t, "start", names[0])
					// The launcher pins itself to the service cores: PALS must not bind it.
					startStep := calls[slices.IndexFunc(calls, func(c call) bool {
						return c.prog == "mpiexec" && slices.ContainsFunc(c.args, func(a string) bool { return strings.HasSuffix(a, "/copper-launch") }) &&
							slices.Contains(c.args, "--site") && !slices.Contains(c.args, "stop")
					})]
					assert.Equal(t, "none", argAfter(startStep.args, "--cpu-bind"), "mpiexec %q", startStep.args)
				}
				if rc.check != nil {
					rc.check(t, sb, launches, calls)
				} else if s.site == "aurora" {
					assert.Equal(t, "discover", start.Settings.AddressBookSource, "without a facility book")
				}
			})
		}
	}
}

// call is one recorded stub invocation.
type call struct {
	prog string
	args []string
}

func callsOf(calls []call, prog string) []call {
	var out []call
	for _, c := range calls {
		if c.prog == prog {
			out = append(out, c)
		}
	}
	return out
}

func indexOf(calls []call, prog, first string) int {
	return slices.IndexFunc(calls, func(c call) bool {
		return c.prog == prog && len(c.args) > 0 && c.args[0] == first
	})
}

func parseLaunches(t *testing.T, calls []call) []launch.Command {
	t.Helper()
	var out []launch.Command
	for _, c := range callsOf(calls, "copper-launch") {
		cmd, err := parseLaunch(c.args)
		require.NoError(t, err, "copper-launch %q", c.args)
		out = append(out, cmd)
	}
	return out
}

// appLaunch is the one mpiexec or srun call that ran the application
// (every run of it has the same arguments).
func appLaunch(t *testing.T, calls []call) call {
	t.Helper()
	var apps []call
	for _, c := range calls {
		if (c.prog == "mpiexec" || c.prog == "srun") && slices.ContainsFunc(c.args, isPython) {
			apps = append(apps, c)
		}
	}
	require.NotEmpty(t, apps, "no mpiexec or srun ran python")
	for _, a := range apps[1:] {
		require.Equal(t, apps[0].args, a.args)
	}
	return apps[0]
}

// argAfter is the argument after flag, "" if none.
func argAfter(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func isPython(arg string) bool { return arg == "python" || arg == "python3" }

// cpuBinding parses mpiexec's "--cpu-bind list:A-B:C:..." or srun's
// "--cpu-bind=map_cpu:A,B,..." into one CPU set per rank.
func cpuBinding(t *testing.T, args []string) [][]int {
	t.Helper()
	var spec string
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--cpu-bind="); ok {
			spec = v
		} else if a == "--cpu-bind" && i+1 < len(args) {
			spec = args[i+1]
		}
	}
	var ranks []string
	if v, ok := strings.CutPrefix(spec, "list:"); ok {
		ranks = strings.Split(v, ":")
	} else if v, ok := strings.CutPrefix(spec, "map_cpu:"); ok {
		ranks = strings.Split(v, ",")
	} else {
		t.Fatalf("no list: or map_cpu: binding in %q", args)
	}
	out := make([][]int, len(ranks))
	for i, r := range ranks {
		for part := range strings.SplitSeq(r, ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, err := strconv.Atoi(lo)
			require.NoError(t, err, "cpu %q in %q", part, spec)
			b := a
			if isRange {
				b, err = strconv.Atoi(hi)
				require.NoError(t, err, "cpu %q in %q", part, spec)
			}
			require.LessOrEqual(t, a, b, "range %q in %q", part, spec)
			for c := a; c <= b; c++ {
				out[i] = append(out[i], c)
			}
		}
	}
	return out
}

// realPython is the python3 interpreter itself (not a shim that needs the
// user's HOME), for the sandbox.
func realPython(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

// sandbox is a fake job environment: stubs first in PATH, a fake file
// system under lustre holding torch (as Aurora site-packages and as a
// Frontier conda environment), and the same tree seen through mount, as a
// copper mount with target "/" would show it.
type sandbox struct {
	dir, stubs, log, work    string
	lustre, mount, logDir    string
	sitePackages, condaEnv   string
	otherSitePackages        string // a second torch tree, for SITE_PACKAGES
	nodefile, home, origPath string
}

func newSandbox(t *testing.T, python string) sandbox {
	t.Helper()
	dir := t.TempDir()
	sb := sandbox{
		dir:      dir,
		stubs:    filepath.Join(dir, "stubs"),
		log:      filepath.Join(dir, "calls"),
		work:     filepath.Join(dir, "work"),
		lustre:   filepath.Join(dir, "lustre"),
		mount:    filepath.Join(dir, "mnt"),
		logDir:   filepath.Join(dir, "copper-logs"),
		nodefile: filepath.Join(dir, "nodefile"),
		home:     filepath.Join(dir, "home"),
		origPath: os.Getenv("PATH"),
	}
	sb.sitePackages = filepath.Join(sb.lustre, "frameworks", "site-packages")
	sb.condaEnv = filepath.Join(sb.lustre, "envs", "torch")
	sb.otherSitePackages = filepath.Join(sb.lustre, "mine", "site-packages")
	for _, d := range []string{sb.stubs, sb.log, sb.work, sb.home, filepath.Dir(sb.mount + sb.lustre)} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	// The mount shows the file system at the same path below it.
	require.NoError(t, os.Symlink(sb.lustre, sb.mount+sb.lustre))
	writeFile(t, sb.nodefile, "x1000c0s0b0n0\nx1000c0s0b0n1\n", 0o644)
	writeFile(t, filepath.Join(sb.sitePackages, "torch", "__init__.py"), "", 0o644)
	writeFile(t, filepath.Join(sb.otherSitePackages, "torch", "__init__.py"), "", 0o644)
	writeFile(t, filepath.Join(sb.condaEnv, "lib", "site-packages", "torch", "__init__.py"), "", 0o644)
	// A conda environment's python finds its site-packages from where it
	// was run, so through the mount when activated through it.
	writeFile(t, filepath.Join(sb.condaEnv, "bin", "python"), `#!/bin/sh
prefix=$(cd "$(dirname "$0")/.." && pwd)
PYTHONPATH="$prefix/lib/site-packages${PYTHONPATH:+:$PYTHONPATH}" exec `+python+` "$@"
`, 0o755)

	record := `#!/bin/bash
printf '%s\0' "$@" > "$(mktemp "$STUB_LOG/$(date +%s%N)-NAME.XXXXXX")"
`
	stub := func(name, rest string) {
		writeFile(t, filepath.Join(sb.stubs, name), strings.Replace(record, "NAME", name, 1)+rest, 0o755)
	}
	// mpiexec and srun run their command once, as rank 0, after their own options.
	stub("mpiexec", `while [ $# -gt 0 ]; do
  case $1 in
    -n|-np|-ppn|--ppn|--cpu-bind|--depth|-d|--env) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
PMI_RANK=0 PMI_SIZE=1 exec "$@"
`)
	stub("srun", `while [ $# -gt 0 ]; do
  case $1 in
    -N|-n|-c|-A|-J|-t|-o) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
SLURM_PROCID=0 exec "$@"
`)
	// STUB_FAIL=CMD makes that copper-launch command fail (start: no command word).
	stub("copper-launch", `cmd=$1
case $cmd in -*) cmd=start ;; esac
if [ "$cmd" = "${STUB_FAIL:-}" ]; then echo "stub: copper-launch $cmd failed" >&2; exit 1; fi
# STUB_WAIT_HANG=1: wait never returns, as for a node whose start never ran.
if [ "$cmd" = wait ] && [ -n "${STUB_WAIT_HANG:-}" ]; then exec sleep 300; fi
`)
	stub("copper-report", "")
	writeFile(t, filepath.Join(sb.stubs, "module"), "#!/bin/sh\n", 0o755)
	// `source activate ENV` finds this in PATH, as it finds conda's.
	writeFile(t, filepath.Join(sb.stubs, "activate"), `export PATH="$1/bin:$PATH" CONDA_PREFIX="$1"`+"\n", 0o644)
	require.NoError(t, os.Symlink(python, filepath.Join(sb.stubs, "python3")))
	return sb
}

func (sb sandbox) jobDir(site string) string {
	if site == "aurora" {
		return filepath.Join(sb.logDir, "4242")
	}
	return filepath.Join(sb.logDir, "4343")
}

// run runs the script in the sandbox and returns its output; it must
// succeed, or with fail, exit non-zero.
func (sb sandbox) run(t *testing.T, s script, extra map[string]string, fail bool) string {
	t.Helper()
	env := map[string]string{
		"PATH":             sb.stubs + ":" + sb.origPath,
		"HOME":             sb.home,
		"USER":             "tester",
		"STUB_LOG":         sb.log,
		"PBS_NODEFILE":     sb.nodefile,
		"PBS_JOBID":        "4242.aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov",
		"PBS_O_WORKDIR":    sb.work,
		"SLURM_JOB_ID":     "4343",
		"SLURM_NNODES":     "2",
		"SLURM_SUBMIT_DIR": sb.work,
		"COPPER_BIN":       sb.stubs,
		"COPPER_MOUNT":     sb.mount,
		"COPPER_LOG_DIR":   sb.logDir,
		"SITE_PACKAGES":    sb.sitePackages,
		"CONDA_ENV":        sb.condaEnv,
	}
	if s.site == "aurora" && !s.copper {
		env["PYTHONPATH"] = sb.sitePackages // what `module load frameworks` provides
	}
	for k, v := range extra {
		env[k] = v
	}
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	script, err := filepath.Abs(s.path)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir, cmd.Env = sb.work, list
	// At the bound, the script and every stub it left running go (a
	// hanging stub must not hold the output open past it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if fail {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s must fail:\n%s", s.path, out)
		require.NoError(t, ctx.Err(), "%s must fail at once, not time out", s.path)
	} else {
		require.NoError(t, err, "%s:\n%s", s.path, out)
	}
	return string(out)
}

// calls reads the stubs' records in the order they were made.
func (sb sandbox) calls(t *testing.T) []call {
	t.Helper()
	entries, err := os.ReadDir(sb.log)
	require.NoError(t, err)
	var out []call
	for _, e := range entries { // names start with the time in ns: sorted
		b, err := os.ReadFile(filepath.Join(sb.log, e.Name()))
		require.NoError(t, err)
		_, rest, _ := strings.Cut(e.Name(), "-")
		prog := rest[:strings.LastIndexByte(rest, '.')]
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if len(b) == 0 {
			args = nil
		}
		out = append(out, call{prog: prog, args: args})
	}
	return out
}

func writeFile(t *testing.T, path, text string, perm os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(text), perm))
}

// TestSubmitExamplesSurviveCommaSplit: sbatch --export and qsub -v split
// their list at every comma, so a value holding one arrives cut
// (CPU_BIND=map_cpu:0,1 arrives as map_cpu:0, and "1" is taken for a
// variable name). Every such example in the READMEs' code blocks and in
// the scripts must split into whole NAME or NAME=VALUE items.
func TestSubmitExamplesSurviveCommaSplit(t *testing.T) {
	files := []string{"README.md", "../README.md"}
	for _, s := range scripts {
		files = append(files, s.path)
	}
	lists := regexp.MustCompile(`(?:--export=|qsub -v )(\S+)`)
	item := regexp.MustCompile(`^(ALL|NONE|[A-Za-z_][A-Za-z0-9_]*(=.*)?)$`)
	found := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		text := string(b)
		if strings.HasSuffix(f, ".md") {
			text = codeBlocks(text) // the prose shows what not to do
		}
		for _, m := range lists.FindAllStringSubmatch(text, -1) {
			list := strings.TrimRight(strings.Trim(m[1], "\"'`"), ",.;:)") // prose punctuation
			if strings.HasPrefix(list, "<") || list == "NAME=VALUE" {      // a syntax line, not an example
				continue
			}
			found++
			for part := range strings.SplitSeq(list, ",") {
				assert.Regexp(t, item, part, "%s: %q splits at its commas into %q, not a NAME or NAME=VALUE", f, m[0], part)
			}
		}
	}
	assert.NotZero(t, found, "the READMEs show submissions with settings")
	// The check itself: the friction's example is caught.
	assert.NotRegexp(t, item, strings.Split("CPU_BIND=map_cpu:0,1", ",")[1])
}

// codeBlocks is the text of a markdown file's fenced code blocks.
func codeBlocks(md string) string {
	var b strings.Builder
	in := false
	for line := range strings.SplitSeq(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
