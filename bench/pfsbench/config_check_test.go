package pfsbench

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConfigCheckDefaultsAndLarge covers what TestConfigCheck does not:
// the large-file workload's bounds and the defaults check fills in.
func TestConfigCheckDefaultsAndLarge(t *testing.T) {
	bin := t.TempDir()
	for _, tool := range []string{"copper-node", "slowpfs"} {
		require.NoError(t, os.WriteFile(filepath.Join(bin, tool), nil, 0o755))
	}
	ok := Quick()
	ok.Out, ok.Bin, ok.Self = t.TempDir(), bin, "/bin/true"

	c := ok
	c.Large.WarmRounds, c.Scale.StepTimeout, c.StepTimeout, c.WarmImportRounds, c.Progress = 0, 0, 0, 0, nil
	require.NoError(t, c.check())
	assert.Equal(t, 1, c.Large.WarmRounds)
	assert.Equal(t, 15*time.Minute, c.Scale.StepTimeout)
	assert.Equal(t, 3*time.Minute, c.StepTimeout)
	assert.Equal(t, 1, c.WarmImportRounds)
	assert.NotNil(t, c.Progress)

	c = ok
	c.Self, c.Bin = "", ""
	err := c.check()
	assert.NotEmpty(t, c.Self)
	assert.Equal(t, filepath.Dir(c.Self), c.Bin, "the tools are looked for beside the executable")
	assert.ErrorContains(t, err, "copper-node", "the test binary's directory has no copper-node")

	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"large file too small", func(c *Config) { c.Large.Bytes = 1 }, "large-file workload"},
		{"large chunks too small", func(c *Config) { c.Large.ChunkBytes = 1 }, "chunks ≥ 64 KiB"},
		{"large scale file too small", func(c *Config) { c.Large.ScaleBytes = 1 }, "large-file scale model: file 1 bytes"},
		{"large scale server too slow", func(c *Config) { c.Large.RefNodes = 1 << 30 }, "large-file scale model"},
		{"nothing to import", func(c *Config) { c.Import = "" }, "nothing to import"},
		{"bad emulator", func(c *Config) { c.Params.Slots = 0 }, "slot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.modify(&c)
			assert.ErrorContains(t, c.check(), tt.want)
		})
	}
	c = ok
	c.Large.Bytes, c.Large.ChunkBytes = 0, 1
	assert.NoError(t, c.check(), "a large-file workload that is not run is not checked")
}
