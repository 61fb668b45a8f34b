package nodecmd

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
)

// cpuProfileEnv names the CPU profile's file when --cpu-profile is not
// given: copper-launch passes only settings to the nodes it starts, and its
// environment reaches them.
const cpuProfileEnv = "COPPER_CPU_PROFILE"

// startCPUProfile writes a pprof CPU profile of this process to path (or
// $COPPER_CPU_PROFILE; {rank} and {pid} replaced) from now until the
// returned stop, which the caller runs once the node has stopped. With
// neither, it profiles nothing: off by default, costing nothing then. It
// is a developer's tool (go tool pprof), apart from operation profiling.
func startCPUProfile(path string, rank int, log *slog.Logger) (stop func(), err error) {
	if path == "" {
		path = os.Getenv(cpuProfileEnv)
	}
	if path == "" {
		return func() {}, nil
	}
	path = strings.NewReplacer("{rank}", strconv.Itoa(rank), "{pid}", strconv.Itoa(os.Getpid())).Replace(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile %s: %w", path, err)
	}
	log.Info("cpu profile", "file", path)
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Error("cpu profile", "file", path, "err", err)
		}
	}, nil
}
