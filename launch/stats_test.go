package launch

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatsToFile(t *testing.T) {
	tests := []struct {
		name    string
		bin     string
		want    string // the file's content; "" = no file
		wantErr string
	}{
		{"written whole", "/bin/echo", "stats --mount /m/3\n", ""},
		{"a failing copper-node leaves nothing", "/bin/false", "", "copper-node stats --mount /m/3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "copper-stats.rank3.txt")
			env := Env{Stdout: io.Discard, Stderr: io.Discard}
			err := statsToFile(context.Background(), tt.bin, []string{"stats", "--mount", "/m/3"}, path, env)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			if tt.want == "" {
				assert.Empty(t, entries, "no file, no temporary file")
				return
			}
			require.Len(t, entries, 1, "only the rank's file")
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestStatsOutputMissingDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	var stderr bytes.Buffer
	c := Command{Name: "stats", Output: missing}
	env := Env{Stdout: io.Discard, Stderr: &stderr, Getenv: func(string) string { return "" }, Hostname: "h1"}
	code := statsNodes(context.Background(), c, env, "/bin/echo", []rankMount{{2, "/m/2"}}, quiet())
	assert.Equal(t, exitFail, code)
	assert.Contains(t, stderr.String(), "copper-launch rank 2: stats --output")
	assert.Contains(t, stderr.String(), missing)
}

func TestStatsFileName(t *testing.T) {
	env := Env{Getenv: func(string) string { return "" }, Hostname: "x1000c0s0b0n0"}
	tests := []struct {
		name string
		json bool
		rank int
		want string
	}{
		{"rank, text", false, 4, "copper-stats.rank4.txt"},
		{"rank, json", true, 0, "copper-stats.rank0.json"},
		{"no rank anywhere: the host", true, -1, "copper-stats.x1000c0s0b0n0.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Command{Name: "stats", JSON: tt.json, Rank: -1, Size: -1}
			assert.Equal(t, tt.want, statsFileName(context.Background(), c, rankMount{tt.rank, "/m"}, env, quiet()))
		})
	}
}
