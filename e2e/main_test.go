package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	os.Exit(buildAndRun(m))
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

func buildAndRun(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "copper-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	binDir := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/copper-node")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/copper-node in %s: %v\n%s", root, err, out)
		return 1
	}
	copperNode = filepath.Join(binDir, "copper-node")
	return m.Run()
}

// moduleRoot is the directory of the go.mod this package belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module (got %q)", gomod)
	}
	return filepath.Dir(gomod), nil
}
