package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Sweep removes what dead runs of this harness left: namespaces named
// with Prefix whose owning process (pid and start time in the name) is
// gone, with their processes, /etc/netns files and the mounts below their
// directories. Live runs, and anything not named with Prefix, are never
// touched. logf reports each run removed.
func Sweep(logf func(format string, args ...any)) error {
	runs := map[string]bool{}
	names, err := namespaces()
	if err != nil {
		return err
	}
	for _, ns := range names {
		if id, ok := runOf(ns); ok {
			runs[id] = true
		}
	}
	if ents, err := os.ReadDir(stateDir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), Prefix) {
				runs[e.Name()] = true
			}
		}
	}
	var errs []error
	for id := range runs {
		if ownerAlive(id) {
			continue
		}
		dir := ""
		if b, err := os.ReadFile(filepath.Join(stateDir, id)); err == nil {
			dir = strings.TrimSpace(string(b))
		}
		logf("hosts: removing the leftovers of dead run %s (directory %q)", id, dir)
		if err := remove(id, dir); err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// runOf returns the run id of one of this harness's namespace names
// ("cphost-<pid>-<start>-<rand>-h3" → "cphost-<pid>-<start>-<rand>").
func runOf(ns string) (string, bool) {
	if !strings.HasPrefix(ns, Prefix) {
		return "", false
	}
	parts := strings.Split(strings.TrimPrefix(ns, Prefix), "-")
	if len(parts) != 4 {
		return "", false
	}
	return Prefix + strings.Join(parts[:3], "-"), true
}

// ownerAlive reports whether the process that made run id still runs: the
// pid exists and started when the id says (a recycled pid did not).
func ownerAlive(id string) bool {
	parts := strings.Split(strings.TrimPrefix(id, Prefix), "-")
	if len(parts) != 3 {
		return true // not a name we made: never touch it
	}
	pid, err1 := strconv.Atoi(parts[0])
	start, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return true
	}
	got, err := startTime(pid)
	return err == nil && got == start
}

// startTime is field 22 of /proc/pid/stat: when the process started, in
// clock ticks since boot.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// namespaces lists the named network namespaces (ip netns list).
func namespaces() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, nil
}
