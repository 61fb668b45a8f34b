package pfsbench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// binDir holds copper-node, slowpfs and pfsbench, built once by TestMain
// for the end-to-end test.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "pfsbench-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go env GOMOD: %v\n", err)
		return 1
	}
	build := exec.Command("go", "build", "-o", tmp+"/", "./cmd/copper-node", "./bench/cmd/slowpfs", "./bench/cmd/pfsbench")
	build.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the benchmark's binaries: %v\n%s", err, out)
		return 1
	}
	binDir = tmp
	return m.Run()
}
