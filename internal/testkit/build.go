package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ModuleRoot is the directory of the go.mod of the package under test
// (go env GOMOD, run in the test's working directory).
func ModuleRoot() (string, error) {
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

// BuildBinaries builds the main packages pkgs, named relative to the
// module root ("./cmd/copper-node"), into dir: the binary of
// ./cmd/copper-node is dir/copper-node.
func BuildBinaries(dir string, pkgs ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	build := exec.Command("go", append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", strings.Join(pkgs, " "), root, err, out)
	}
	return nil
}

// RunWithBinaries is the body of a TestMain whose tests run the binaries
// of pkgs: it builds them once into a temporary directory, hands that
// directory to setBinDir, runs the tests and removes the directory. It
// returns the exit code for os.Exit.
func RunWithBinaries(m *testing.M, setBinDir func(dir string), pkgs ...string) int {
	dir, err := os.MkdirTemp("", "copper-test-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "testkit: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := BuildBinaries(dir, pkgs...); err != nil {
		fmt.Fprintf(os.Stderr, "testkit: %v\n", err)
		return 1
	}
	setBinDir(dir)
	return m.Run()
}
