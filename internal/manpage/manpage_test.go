package manpage

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/config"
)

// Every settings key and its flag are on the page once, under SETTINGS,
// and every other flag under OPTIONS.
func TestWriteListsEverySettingAndFlag(t *testing.T) {
	s := config.Default()
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.Int("rank", -1, "this node's rank")
	s.RegisterFlags(fs)
	s.RegisterLegacyShortFlags(fs)
	var b strings.Builder
	require.NoError(t, Write(&b, Page{Name: "copper-x", Summary: "test", Version: "v1", Synopsis: ".dot first\nback\\slash", Flags: fs, Settings: s.Describe()}))
	page := b.String()
	opts, settings, ok := strings.Cut(page, ".SH SETTINGS\n")
	require.True(t, ok, "no SETTINGS section")
	for _, k := range s.Describe() {
		assert.Contains(t, settings, ".BR "+k.Key+` " ("`, "key %s", k.Key)
		assert.Contains(t, settings, esc(k.Flag), "flag %s", k.Flag)
		assert.NotContains(t, opts, ".B "+esc(k.Flag)+" ", "setting flag %s listed twice", k.Flag)
	}
	assert.Contains(t, opts, ".B \\-\\-rank int\nthis node's rank\n")
	assert.Contains(t, opts, ".B \\-l\n", "Copper 1.0 short option by its letter")
	assert.Contains(t, page, "\\&.dot first\nback\\eslash\n", "roff control characters escaped")
	assert.True(t, strings.HasPrefix(page, ".TH COPPER\\-X 1 "))
}

func TestWriteRefusesNamelessPage(t *testing.T) {
	err := Write(&strings.Builder{}, Page{Summary: "x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "name and summary")
}
