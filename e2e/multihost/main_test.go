// Package multihost runs copper across hosts: network namespaces on a
// private bridge (internal/testkit/hosts), one copper-launch per host
// started as mpiexec or srun would start it, with real FUSE mounts. It
// holds tests only; they need root, FUSE and iproute2 (`make test` or
// scripts/setup-test-deps.sh install them) and fail, never skip, without.
package multihost

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hpc-copper/copper/internal/testkit"
)

// copperLaunch and copperNode are the binaries TestMain builds, written
// once before any test runs.
var copperLaunch, copperNode string

func TestMain(m *testing.M) {
	os.Exit(testkit.RunWithBinaries(m, func(dir string) {
		copperLaunch = filepath.Join(dir, "copper-launch")
		copperNode = filepath.Join(dir, "copper-node")
	}, "./cmd/copper-launch", "./cmd/copper-node"))
}
