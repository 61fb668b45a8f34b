package launch

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxCPU is the first CPU number a unix.CPUSet cannot hold.
const maxCPU = len(unix.CPUSet{}) * 64

// usableCores keeps the wanted CPUs this process may run on (allowed is
// its current affinity, which already excludes CPUs that do not exist or
// that the batch system's cpuset withholds) and lists the others.
// Wanting some CPUs and being allowed none of them is an error.
func usableCores(want []int, allowed unix.CPUSet) (use, skipped []int, err error) {
	for _, c := range want {
		if c >= 0 && c < maxCPU && allowed.IsSet(c) {
			use = append(use, c)
		} else {
			skipped = append(skipped, c)
		}
	}
	if len(want) > 0 && len(use) == 0 {
		return nil, skipped, fmt.Errorf("service_cores %s: none of these CPUs is available to this process (available: %s)",
			formatCPUs(want), formatCPUs(cpusOf(allowed)))
	}
	return use, skipped, nil
}

// cpusOf lists the CPUs in a set, ascending.
func cpusOf(set unix.CPUSet) []int {
	var out []int
	for c := range maxCPU {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// formatCPUs writes CPUs as "0-3,8".
func formatCPUs(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// planCores checks service_cores against this process's affinity.
func planCores(want []int) (use, skipped []int, err error) {
	if len(want) == 0 {
		return nil, nil, nil
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return nil, nil, fmt.Errorf("service_cores: reading this process's CPU affinity: %w", err)
	}
	return usableCores(want, allowed)
}

// pinThread locks the calling goroutine to its OS thread and restricts
// that thread to cores. Affinity is per thread and a child inherits the
// affinity of the thread that forks or execs it, so the process must be
// started (or exec'd) from this goroutine afterwards; the thread stays
// locked for the rest of the launcher's life.
func pinThread(cores []int) error {
	if len(cores) == 0 {
		return nil
	}
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Zero()
	for _, c := range cores {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pinning to service_cores %s: %w", formatCPUs(cores), err)
	}
	return nil
}

// closeInheritedFiles marks every descriptor above stderr close-on-exec.
// mpiexec and srun hand their launchees sockets (PMI_FD and the like)
// without that flag; a copper-node daemon inheriting one would keep the
// launcher's process manager waiting on it long after this rank exited.
func closeInheritedFiles() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		unix.CloseOnExec(fd)
	}
}
