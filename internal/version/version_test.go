package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFromBuild(t *testing.T) {
	stampedVCS := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/hpc-copper/copper", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	cases := []struct {
		name, stamped string
		bi            *debug.BuildInfo
		want          Info
	}{
		{"ldflags wins", "v1.2.3", stampedVCS, Info{Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567", Dirty: true, GoVersion: "go1.99.1"}},
		{"devel is not a version", "", stampedVCS, Info{Version: "dev", Commit: "0123456789abcdef0123456789abcdef01234567", Dirty: true, GoVersion: "go1.99.1"}},
		{"go install module version", "", &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v0.4.0"}}, Info{Version: "v0.4.0", GoVersion: "go1.99.1"}},
		{"no build info", "", nil, Info{Version: "dev", GoVersion: runtime.Version()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := fromBuild(c.stamped, c.bi)
			c.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			assert.Equal(t, c.want, got)
		})
	}
}

func TestFormat(t *testing.T) {
	i := Info{Version: "v1.2.3", Commit: "abc", Dirty: true, GoVersion: "go1.99.1", Platform: "linux/amd64"}
	assert.Equal(t, "copper-node v1.2.3\ncommit: abc (with uncommitted changes)\ngo: go1.99.1 linux/amd64\n", i.Format("copper-node"))
	i.Commit = ""
	assert.True(t, strings.HasPrefix(strings.Split(i.Format("x"), "\n")[1], "commit: not recorded"))
}

func TestIsVersionArgs(t *testing.T) {
	assert.True(t, IsVersionArgs([]string{"--version"}))
	assert.True(t, IsVersionArgs([]string{"version"}))
	assert.False(t, IsVersionArgs([]string{"--version", "x"}))
	assert.False(t, IsVersionArgs(nil))
	assert.False(t, IsVersionArgs([]string{"-v"})) // Copper 1.0's -v is the mount
}
