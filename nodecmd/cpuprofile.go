package nodecmd

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// cpuProfileEnv names a directory: when set, a serving node writes a CPU
// profile of its whole run there (cpu-rank<R>-<pid>.pprof, read with
// `go tool pprof`). A developer's hook for measuring the daemon as the
// benchmarks run it; unset, it costs nothing.
const cpuProfileEnv = "COPPER_NODE_CPUPROFILE"

// startCPUProfile starts the profile cpuProfileEnv asks for and returns
// the function that stops and writes it. A profile that cannot be
// started is logged, never fatal.
func startCPUProfile(rank int, log *slog.Logger) (stop func()) {
	dir := os.Getenv(cpuProfileEnv)
	if dir == "" {
		return func() {}
	}
	name := filepath.Join(dir, fmt.Sprintf("cpu-rank%d-%d.pprof", rank, os.Getpid()))
	f, err := os.Create(name)
	if err != nil {
		log.Warn("no CPU profile", "env", cpuProfileEnv, "err", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Warn("no CPU profile", "env", cpuProfileEnv, "file", name, "err", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("CPU profile", "file", name, "err", err)
		}
	}
}
