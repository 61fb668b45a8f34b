// Package scripts holds the tests of the shell scripts that set up the
// test machine: scripts/alternatives.sh against a private alternatives
// database (update-alternatives --altdir/--admindir, never the
// machine's), and setup-test-deps.sh against the machine itself.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"
)

// altSandbox is a private alternatives database with MPI-like groups:
// master link bin/mpirun, slave bin/mpiexec, implementations in impl/.
type altSandbox struct {
	t                           *testing.T
	bin, impl, alt, admin, path string
}

func newAltSandbox(t *testing.T) altSandbox {
	t.Helper()
	ua, err := exec.LookPath("update-alternatives")
	require.NoError(t, err, "update-alternatives (package dpkg) is needed")
	dir := t.TempDir()
	s := altSandbox{t: t, bin: filepath.Join(dir, "bin"), impl: filepath.Join(dir, "impl"),
		alt: filepath.Join(dir, "alt"), admin: filepath.Join(dir, "admin")}
	tools := filepath.Join(dir, "tools")
	for _, d := range []string{s.bin, s.impl, s.alt, s.admin, tools} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	for _, mpi := range []string{"mpich", "openmpi", "other"} {
		for _, cmd := range []string{"mpirun", "mpiexec"} {
			require.NoError(t, os.WriteFile(filepath.Join(s.impl, cmd+"."+mpi), []byte("#!/bin/sh\n"), 0o755))
		}
	}
	// PATH holds the sandbox's links and the script's tools only: the
	// machine's own mpiexec must not answer for the sandbox's.
	for _, tool := range []string{"bash", "awk", "readlink", "mv"} {
		p, err := exec.LookPath(tool)
		require.NoError(t, err)
		require.NoError(t, os.Symlink(p, filepath.Join(tools, tool)))
	}
	require.NoError(t, os.Symlink(ua, filepath.Join(tools, "update-alternatives")))
	s.path = s.bin + ":" + tools
	return s
}

func (s altSandbox) ua(args ...string) string {
	s.t.Helper()
	cmd := exec.Command("update-alternatives", append([]string{"--altdir", s.alt, "--admindir", s.admin}, args...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(s.t, err, "update-alternatives %q: %s", args, out)
	return string(out)
}

// install registers mpi's mpirun (slave mpiexec) at prio, as its package would.
func (s altSandbox) install(mpi string, prio string) {
	s.ua("--install", filepath.Join(s.bin, "mpirun"), "mpirun", filepath.Join(s.impl, "mpirun."+mpi), prio,
		"--slave", filepath.Join(s.bin, "mpiexec"), "mpiexec", filepath.Join(s.impl, "mpiexec."+mpi))
}

// script runs scripts/alternatives.sh on the sandbox's database.
func (s altSandbox) script(args ...string) (string, error) {
	s.t.Helper()
	cmd := exec.Command("bash", append([]string{"alternatives.sh"}, args...)...)
	cmd.Env = []string{"PATH=" + s.path, "COPPER_ALTERNATIVES_OPTS=--altdir " + s.alt + " --admindir " + s.admin}
	r, err := testkit.RunBounded(cmd, time.Minute)
	require.NoError(s.t, err)
	if r.Code != 0 {
		return r.Stdout + r.Stderr, assert.AnError
	}
	return r.Stdout + r.Stderr, nil
}

// field is a "Key: value" line of a group's --query.
func (s altSandbox) field(key string) string {
	for line := range strings.SplitSeq(s.ua("--query", "mpirun"), "\n") {
		if v, ok := strings.CutPrefix(line, key+": "); ok {
			return v
		}
	}
	return ""
}

// leadsTo is where bin/mpiexec resolves, "" if nowhere.
func (s altSandbox) leadsTo(cmd string) string {
	p, err := filepath.EvalSymlinks(filepath.Join(s.bin, cmd))
	if err != nil {
		return ""
	}
	return p
}

func (s altSandbox) hasGroup() bool {
	out := s.ua("--get-selections")
	return strings.Contains(out, "mpirun")
}

func TestAlternativesRestore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		before  func(s altSandbox) // the machine's state
		install func(s altSandbox) // what the package install does
		status  string             // the group after restore ("" = no group)
		value   string             // implementation mpiexec/mpirun lead to, "" = none
	}{{
		name:    "auto on MPICH stays auto on MPICH when Open MPI outranks it",
		before:  func(s altSandbox) { s.install("mpich", "40") },
		install: func(s altSandbox) { s.install("openmpi", "50") },
		status:  "auto", value: "mpich",
	}, {
		name: "manual MPICH stays manual MPICH when the install switched it",
		before: func(s altSandbox) {
			s.install("mpich", "40")
			s.install("other", "60")
			s.ua("--set", "mpirun", filepath.Join(s.impl, "mpirun.mpich"))
		},
		install: func(s altSandbox) {
			s.install("openmpi", "50")
			s.ua("--set", "mpirun", filepath.Join(s.impl, "mpirun.openmpi"))
		},
		status: "manual", value: "mpich",
	}, {
		name: "manual on a lower priority is not turned into auto",
		before: func(s altSandbox) {
			s.install("other", "60")
			s.install("mpich", "40")
			s.ua("--set", "mpirun", filepath.Join(s.impl, "mpirun.mpich"))
		},
		install: func(s altSandbox) { s.install("openmpi", "50"); s.ua("--auto", "mpirun") },
		status:  "manual", value: "mpich",
	}, {
		name:    "auto on a higher priority is left alone",
		before:  func(s altSandbox) { s.install("other", "60"); s.install("mpich", "40") },
		install: func(s altSandbox) { s.install("openmpi", "50") },
		status:  "auto", value: "other",
	}, {
		name:    "no MPI before: the group the install made is removed",
		before:  func(s altSandbox) {},
		install: func(s altSandbox) { s.install("openmpi", "50") },
		status:  "", value: "",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAltSandbox(t)
			tc.before(s)
			wantMpiexec, wantMpirun := s.leadsTo("mpiexec"), s.leadsTo("mpirun")
			saved := filepath.Join(t.TempDir(), "saved")
			out, err := s.script("save", saved)
			require.NoError(t, err, out)
			tc.install(s)
			out, err = s.script("restore", saved)
			require.NoError(t, err, out)

			assert.Equal(t, wantMpiexec, s.leadsTo("mpiexec"), "mpiexec leads where it led before: %s", out)
			assert.Equal(t, wantMpirun, s.leadsTo("mpirun"))
			if tc.status == "" {
				assert.False(t, s.hasGroup(), "no mpirun group, as before: %s", out)
				assert.Empty(t, s.leadsTo("mpiexec"))
				return
			}
			assert.Equal(t, tc.status, s.field("Status"), "%s", out)
			assert.Equal(t, filepath.Join(s.impl, "mpirun."+tc.value), s.field("Value"))
			assert.Equal(t, filepath.Join(s.impl, "mpiexec."+tc.value), s.leadsTo("mpiexec"))
			// Open MPI stays installed and registered, with its own slave.
			q := s.ua("--query", "mpirun")
			assert.Contains(t, q, "Alternative: "+filepath.Join(s.impl, "mpirun.openmpi"))
			assert.Contains(t, q, "mpiexec "+filepath.Join(s.impl, "mpiexec.openmpi"))
		})
	}
}

// TestAlternativesRestoreFailsWhenItCannot shows restore can fail: a
// group whose saved value has been removed cannot be put back.
func TestAlternativesRestoreFailsWhenItCannot(t *testing.T) {
	s := newAltSandbox(t)
	s.install("mpich", "40")
	saved := filepath.Join(t.TempDir(), "saved")
	out, err := s.script("save", saved)
	require.NoError(t, err, out)
	s.install("openmpi", "50")
	s.ua("--remove", "mpirun", filepath.Join(s.impl, "mpirun.mpich"))
	out, err = s.script("restore", saved)
	require.Error(t, err, "restore cannot bring MPICH back: %s", out)
	assert.Contains(t, out, "mpiexec leads to "+filepath.Join(s.impl, "mpiexec.openmpi"))
}

// TestSetupKeepsAlternatives runs the real setup on this machine: after it
// Open MPI and MPICH are both installed, and mpiexec, mpirun and every
// alternatives group are what they were before it ran.
func TestSetupKeepsAlternatives(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("setup-test-deps.sh installs packages: run the tests as root")
	}
	state := func() (string, string, string) {
		sel, err := exec.Command("update-alternatives", "--get-selections").Output()
		require.NoError(t, err)
		return string(sel), resolve(t, "mpiexec"), resolve(t, "mpirun")
	}
	sel, mpiexec, mpirun := state()
	cmd := exec.Command("bash", "setup-test-deps.sh")
	r, err := testkit.RunBounded(cmd, 15*time.Minute)
	require.NoError(t, err)
	require.Equal(t, 0, r.Code, "setup-test-deps.sh: %s", r)
	sel2, mpiexec2, mpirun2 := state()
	assert.Equal(t, mpiexec, mpiexec2, "mpiexec")
	assert.Equal(t, mpirun, mpirun2, "mpirun")
	assert.Equal(t, sel, sel2, "update-alternatives --get-selections")
	for _, c := range []string{"mpiexec.mpich", "mpirun.openmpi", "shellcheck"} {
		_, err := exec.LookPath(c)
		assert.NoError(t, err, "setup installs %s", c)
	}
}

func resolve(t *testing.T, cmd string) string {
	t.Helper()
	p, err := exec.LookPath(cmd)
	if err != nil {
		return "none"
	}
	r, err := filepath.EvalSymlinks(p)
	require.NoError(t, err)
	return r
}

// TestAlternativesRestoreLeavesOtherNewGroups: a group the install made
// that is not an MPI's (Lua's lua-compiler, which holds "mpi") stays.
func TestAlternativesRestoreLeavesOtherNewGroups(t *testing.T) {
	s := newAltSandbox(t)
	s.install("mpich", "40")
	saved := filepath.Join(t.TempDir(), "saved")
	out, err := s.script("save", saved)
	require.NoError(t, err, out)
	s.ua("--install", filepath.Join(s.bin, "luac"), "lua-compiler", filepath.Join(s.impl, "mpirun.other"), "120")
	out, err = s.script("restore", saved)
	require.NoError(t, err, out)
	assert.Contains(t, s.ua("--get-selections"), "lua-compiler", "%s", out)
}
