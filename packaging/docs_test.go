package packaging

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docs/DESIGN.md is the package map: every directory holding Go files is
// named there, in backticks or in a section heading, so a new package
// cannot land unmapped and a removed one is noticed by whoever removes it.
func TestDesignMapsEveryPackage(t *testing.T) {
	root := repoRoot(t)
	design, err := os.ReadFile(filepath.Join(root, "docs", "DESIGN.md"))
	require.NoError(t, err)
	pkgs := goPackageDirs(t, root)
	require.NotEmpty(t, pkgs)
	for _, p := range pkgs {
		assert.True(t, mapsPackage(string(design), p), "docs/DESIGN.md does not name package %s", p)
	}
}

func TestMapsPackage(t *testing.T) {
	doc := "## op  (done)\n## internal/osutil, internal/secret\n`bench/statloop` (the loop)\nsee `nodecmd/serve.go` and net.\n"
	for _, tc := range []struct {
		pkg  string
		want bool
	}{
		{"op", true},
		{"internal/secret", true},
		{"bench/statloop", true},
		{"nodecmd", true}, // a file of it in backticks
		{"net", false},    // prose is not a mapping
		{"internal/memstat", false},
		{"bench", false}, // a prefix of a named package
	} {
		assert.Equal(t, tc.want, mapsPackage(doc, tc.pkg), tc.pkg)
	}
}

// mapsPackage reports whether doc names pkg in backticks (alone, or one
// of its Go files) or as a word of a "## " heading.
func mapsPackage(doc, pkg string) bool {
	inTicks := regexp.MustCompile("`" + regexp.QuoteMeta(pkg) + "(/[A-Za-z0-9_]+\\.go)?`")
	if inTicks.MatchString(doc) {
		return true
	}
	word := regexp.MustCompile(`(^|[\s,(])` + regexp.QuoteMeta(pkg) + `($|[\s,)])`)
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "## ") && word.MatchString(strings.TrimPrefix(line, "## ")) {
			return true
		}
	}
	return false
}

// goPackageDirs lists the module's directories that hold Go files,
// relative to root, as go list would name them (testdata and hidden
// directories are not packages).
func goPackageDirs(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		if rel != "." && !seen[rel] {
			seen[rel] = true
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	require.NoError(t, err)
	return out
}
