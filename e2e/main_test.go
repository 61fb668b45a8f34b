package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hpc-copper/copper/internal/testkit"
)

// walkEnv makes the test binary, re-executed, walk the directory it names
// and print its manifest as JSON instead of running tests. Walking a mount
// in a child keeps the test process out of uninterruptible sleep when the
// node serving that mount dies.
const walkEnv = "COPPER_E2E_WALK"

// copperNode is the path of the copper-node binary TestMain builds; it is
// written once, before any test runs.
var copperNode string

func TestMain(m *testing.M) {
	if dir := os.Getenv(walkEnv); dir != "" {
		os.Exit(walkMain(dir))
	}
	if spec := os.Getenv(soakReaderEnv); spec != "" {
		os.Exit(soakReaderMain(spec))
	}
	os.Exit(testkit.RunWithBinaries(m, func(dir string) { copperNode = filepath.Join(dir, "copper-node") },
		"./cmd/copper-node"))
}

func walkMain(dir string) int {
	man, err := buildManifest(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "walk %s: %v\n", dir, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(man); err != nil {
		fmt.Fprintf(os.Stderr, "walk %s: encode: %v\n", dir, err)
		return 1
	}
	return 0
}
