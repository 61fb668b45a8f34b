package config

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README.md must document every TOML key and its flag: users read it
// before the code.
func TestReadmeListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	s := Default()
	for _, k := range s.Describe() {
		assert.True(t, strings.Contains(string(readme), "`"+k.Key+"`"), "README.md lacks key %s", k.Key)
		assert.True(t, strings.Contains(string(readme), "`"+k.Flag+"`"), "README.md lacks flag %s", k.Flag)
	}
}

// The README's settings table is written by hand; each row must say what
// Describe (and so --help and the man page) says: a row edited on its own
// drifts from the code.
func TestReadmeSettingsTableMatchesDescribe(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	rows := readmeSettingRows(string(readme))
	s := Default()
	for _, k := range s.Describe() {
		row, ok := rows[k.Key]
		if !assert.True(t, ok, "README.md settings table has no row for %s", k.Key) {
			continue
		}
		want := []struct{ col, val string }{
			{"flag", "`" + k.Flag + "`"},
			{"type", k.Type},
			{"default", "`" + k.Default + "`"},
			{"allowed", k.Range},
			{"meaning", k.Doc},
		}
		require.Len(t, row, len(want), "README.md row of %s: columns", k.Key)
		for i, w := range want {
			assert.Equal(t, w.val, row[i], "README.md row of %s, column %s", k.Key, w.col)
		}
	}
}

// readmeSettingRows maps each "| `key` | …" table row to its cells after
// the key, trimmed.
func readmeSettingRows(readme string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(readme, "\n") {
		if !strings.HasPrefix(line, "| `") || !strings.HasSuffix(line, " |") {
			continue
		}
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "| "), " |"), " | ")
		key := strings.Trim(cells[0], "`")
		rows[key] = cells[1:]
	}
	return rows
}
