package launch

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/hpc-copper/copper/internal/osutil"
)

// privateName matches privatePaths' names, capturing the writer's pid.
var privateName = regexp.MustCompile(`-rank[0-9]+-([0-9]+)\.(book|token)$`)

// sweepPrivate removes from dir the book and token copies that launchers
// killed before they could remove them left behind (a token is a secret:
// it must not outlive its job). A file stays while its writer runs as
// copper-launch or copper-node (a --foreground launcher becomes the
// node), or while a live copper-node names it on its command line (a
// daemon still reading it after its launcher died); a writer's pid now
// used by another program is a dead writer. It returns the files removed.
func sweepPrivate(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var named map[string]bool // read once, if anything is stale
	var removed []string
	for _, e := range ents {
		m := privateName.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || copperRuns(pid) {
			continue
		}
		if named == nil {
			named = filesNamedByNodes()
		}
		p := filepath.Join(dir, e.Name())
		if !named[p] && os.Remove(p) == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

// copperRuns reports whether pid runs as copper-launch or copper-node of
// this user (the writer's pid reused by another user's process of that
// name is a dead writer too).
// A zombie counts too: a launcher that execs copper-node from a thread
// other than its main one shows state Z until the exec has replaced the
// thread group (seen under srun: a sweep in that window removed the
// book the node was about to read); a real zombie's files wait for its
// reaping, which is the safe side.
func copperRuns(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) == syscall.ESRCH || !osutil.ProcessOwnedBy(pid, os.Geteuid()) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return false
	}
	switch strings.TrimSpace(string(b)) {
	case "copper-launch", "copper-node":
		return true
	}
	return false
}

// filesNamedByNodes lists the --book and --token-file arguments of this
// user's running copper-node processes (another user's could name our
// files to keep a token copy from ever being removed).
func filesNamedByNodes() map[string]bool {
	named := map[string]bool{}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return named
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || !osutil.ProcessOwnedBy(pid, os.Geteuid()) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(args[0]) != "copper-node" {
			continue
		}
		for _, flag := range []string{"--book", "--token-file"} {
			if v := argValue(args, flag); v != "" {
				named[v] = true
			}
		}
	}
	return named
}
