package testkit

import (
	"bytes"
	"os"
	"strconv"
)

// ProcessAlive reports whether pid runs. A zombie has finished: a
// daemon's parent is init, which may reap it only later.
func ProcessAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may
	// contain spaces and parentheses itself.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// ProcessMentions reports whether pid runs and its command line contains
// s (a test's directory, say), so that a recycled pid is never taken for
// one of the test's processes.
func ProcessMentions(pid int, s string) bool {
	if !ProcessAlive(pid) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte(s))
}

// ProcessesMentioning lists the running processes other than this one
// whose command line contains s.
func ProcessesMentioning(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if ProcessMentions(pid, s) {
			pids = append(pids, pid)
		}
	}
	return pids
}
