// Package version says which build of copper is running, for the
// --version flag of every binary: the release version the Makefile stamps
// at link time, and the commit, its dirty flag and the Go version that the
// Go toolchain records in the binary (runtime/debug.ReadBuildInfo).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the release version, set at link time by the Makefile:
//
//	go build -ldflags "-X github.com/hpc-copper/copper/internal/version.Version=v1.2.3"
//
// It is a variable only because -X can set nothing else; nothing assigns
// it at run time. Empty means not stamped (a plain `go build`).
var Version string

// Info is what --version prints.
type Info struct {
	Version   string // release version; "dev" when neither -X nor the module version says
	Commit    string // full VCS revision; "" when the toolchain recorded none
	Dirty     bool   // the work tree had uncommitted changes at build time
	GoVersion string // toolchain that built the binary, e.g. go1.26.8
	Platform  string // GOOS/GOARCH
}

// Get returns the running binary's Info.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return fromBuild(Version, bi)
}

// fromBuild derives Info from the stamped version and the build info (nil
// when the binary has none). The commit comes only from the toolchain's
// vcs.* settings: they describe the exact tree that was compiled, which a
// string passed by a build script cannot promise. The Makefile builds with
// -buildvcs=false (Go cannot stamp from a git worktree, whose .git is a
// file, and fails the build where git refuses the checkout's owner), so
// make builds carry the commit in their version (git describe) instead.
func fromBuild(stamped string, bi *debug.BuildInfo) Info {
	info := Info{Version: stamped, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		if info.Version == "" {
			info.Version = "dev"
		}
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	// `go install github.com/hpc-copper/copper/cmd/...@v1.2.3` records the
	// module version; a build inside the repository records "(devel)".
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Dirty = s.Value == "true"
		}
	}
	return info
}

// Format is the --version text of program: three lines, version first,
// so `copper-launch --version | head -1` is enough for scripts.
func (i Info) Format(program string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", program, i.Version)
	switch {
	case i.Commit == "":
		b.WriteString("commit: not recorded (built without VCS stamping; a make build's version is its git describe)\n")
	case i.Dirty:
		fmt.Fprintf(&b, "commit: %s (with uncommitted changes)\n", i.Commit)
	default:
		fmt.Fprintf(&b, "commit: %s\n", i.Commit)
	}
	fmt.Fprintf(&b, "go: %s %s\n", i.GoVersion, i.Platform)
	return b.String()
}

// IsVersionArgs reports whether args (without the program name) ask for
// the version: `--version` or `version`, alone.
func IsVersionArgs(args []string) bool {
	return len(args) == 1 && (args[0] == "--version" || args[0] == "version")
}
