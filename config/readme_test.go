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
