package osutil

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ProcessRuns reports whether pid runs. A zombie has finished: a daemon's
// parent is init, which may reap it only later.
func ProcessRuns(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) == syscall.ESRCH {
		return false
	}
	state, ok := ProcessState(pid)
	return ok && state != "Z"
}

// ProcessOwnedBy reports whether process pid runs as uid (the owner of its
// /proc directory is the process's effective uid): anyone can name a
// process copper-node, so only the user's own count as theirs.
func ProcessOwnedBy(pid, uid int) bool {
	var st syscall.Stat_t
	return syscall.Stat("/proc/"+strconv.Itoa(pid), &st) == nil && int(st.Uid) == uid
}

// ProcessState is pid's state letter from /proc/<pid>/stat ("R", "S",
// "T" for stopped, "Z" for a zombie, ...); false when pid is gone.
func ProcessState(pid int) (string, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	state, _, ok := statFields(stat)
	if !ok {
		return "?", true // it exists; its stat did not parse
	}
	return state, true
}

// ProcessMentions reports whether pid runs and its command line contains
// s (a test's directory, say), so that a recycled pid is never taken for
// one of ours.
func ProcessMentions(pid int, s string) bool {
	if !ProcessRuns(pid) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte(s))
}

// ProcessesMentioning lists the running processes other than this one
// and its ancestors whose command line contains s. Ancestors are left out
// because a caller that cleans up after itself by killing what names its
// scratch directory must not kill the shell or benchmark script that
// passed it that directory (`pfsbench --work DIR` under a script).
func ProcessesMentioning(s string) []int {
	ents, _ := os.ReadDir("/proc")
	self := ancestors(os.Getpid())
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || self[pid] {
			continue
		}
		if ProcessMentions(pid, s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ancestors returns pid and its ancestors up to init; the walk is bounded
// in case a pid is reused into a loop while it runs.
func ancestors(pid int) map[int]bool {
	seen := map[int]bool{}
	for i := 0; pid > 0 && i < 4096 && !seen[pid]; i++ {
		seen[pid] = true
		pid = ParentOf(pid)
	}
	return seen
}

// ParentOf returns the parent pid of pid, or -1 when pid is gone or its
// stat does not parse.
func ParentOf(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	_, rest, ok := statFields(stat)
	if !ok || len(rest) < 1 {
		return -1
	}
	ppid, err := strconv.Atoi(rest[0])
	if err != nil {
		return -1
	}
	return ppid
}

// statFields splits a /proc/<pid>/stat line after the parenthesised
// command name (which may hold spaces and parentheses itself) into the
// state and the fields that follow it (ppid first).
func statFields(stat []byte) (state string, rest []string, ok bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", nil, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) == 0 {
		return "", nil, false
	}
	return f[0], f[1:], true
}
