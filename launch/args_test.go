package launch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/config"
)

func TestParseSiteAndFlags(t *testing.T) {
	siteFile := filepath.Join(t.TempDir(), "mine.toml")
	require.NoError(t, os.WriteFile(siteFile, []byte("mount = \"/m/{rank}\"\ntrees = 3\n"), 0o644))

	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c Command)
	}{
		{"default is local start", nil, func(t *testing.T, c Command) {
			assert.Equal(t, "start", c.Name)
			assert.Equal(t, "/tmp/copper-$USER/{rank}/mnt", c.Settings.Mount)
			assert.Equal(t, -1, c.Rank)
			assert.Equal(t, -1, c.Size)
		}},
		{"site gives defaults", []string{"--site", "aurora"}, func(t *testing.T, c Command) {
			assert.Equal(t, "aurora", c.Site)
			assert.Equal(t, "discover", c.Settings.AddressBookSource)
			assert.Equal(t, []int{48, 49, 50, 51}, c.Settings.ServiceCores)
		}},
		{"flags beat the site", []string{"--site=frontier", "--trees", "2", "--service-cores", "5"}, func(t *testing.T, c Command) {
			assert.Equal(t, 2, c.Settings.Trees)
			assert.Equal(t, []int{5}, c.Settings.ServiceCores)
			assert.Equal(t, []int{1, 2}, c.SiteSettings.ServiceCores)
		}},
		{"site file", []string{"--site", siteFile}, func(t *testing.T, c Command) {
			assert.Equal(t, "/m/{rank}", c.Settings.Mount)
			assert.Equal(t, 3, c.Settings.Trees)
		}},
		{"command word first", []string{"stop", "--local", "3"}, func(t *testing.T, c Command) {
			assert.Equal(t, "stop", c.Name)
			assert.Equal(t, 3, c.Local)
			assert.Equal(t, []string{"stop", "--local", "3"}, c.Args)
		}},
		{"command word after flags", []string{"--site", "frontier", "stats", "--json"}, func(t *testing.T, c Command) {
			assert.Equal(t, "stats", c.Name)
			assert.True(t, c.JSON)
		}},
		{"rank and size", []string{"--rank", "2", "--size", "4", "--bootstrap", "n1:5000"}, func(t *testing.T, c Command) {
			assert.Equal(t, 2, c.Rank)
			assert.Equal(t, 4, c.Size)
			assert.Equal(t, "n1:5000", c.Bootstrap)
		}},
		{"local sets size", []string{"--local", "4", "--rank", "1"}, func(t *testing.T, c Command) {
			assert.Equal(t, 4, c.Size)
			assert.Equal(t, 1, c.Rank)
		}},
		{"timeout for wait", []string{"wait", "--timeout", "5s"}, func(t *testing.T, c Command) {
			assert.Equal(t, 5*time.Second, c.Timeout)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, nil)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestParseLegacyShortOptions(t *testing.T) {
	c, err := Parse(strings.Fields("--site aurora -l 4 -t file_and_stdout -d /logs -T 2 -M 1024 -E 100 -N 5 -s 10 -b 1,2 -F /book -a discover -n cxi -v /m"), nil)
	require.NoError(t, err)
	s := c.Settings
	assert.Equal(t, 4, s.LogLevel)
	assert.Equal(t, "both", s.LogType)
	assert.Equal(t, "/logs", s.LogDir)
	assert.Equal(t, 2, s.Trees)
	assert.Equal(t, int64(1024), s.MaxCacheableBytes)
	assert.Equal(t, int64(100), s.MdEnoentTTLMs)
	assert.Equal(t, 5, s.ProfileTopN)
	assert.True(t, s.ProfileMetrics, "-N implies -P")
	assert.Equal(t, []int{1, 2}, s.ServiceCores)
	assert.Equal(t, "/book", s.AddressBook)
	assert.Equal(t, "discover", s.AddressBookSource)
	assert.Equal(t, "hsn0", s.Interface, "-n cxi is a Copper 1.0 network type, not an interface")
	assert.Equal(t, "/m", s.Mount)
	require.Len(t, c.Notes, 2)
	assert.Contains(t, c.Notes[0], "-s 10 ignored")
	assert.Contains(t, c.Notes[1], "-n cxi ignored")
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string
	}{
		{"--rank 1", "--rank and --size go together"},
		{"--size 4", "--rank and --size go together"},
		{"--rank 4 --size 4", "--rank 4 is not below --size 4"},
		{"--rank -2 --size 4", "--rank -2"},
		{"--rank 0 --size 0", "--size 0"},
		{"--local -1", "--local -1: must be at least 1"},
		{"--local 0", "--local 0: must be at least 1"},
		{"stop --local 0", "--local 0: must be at least 1"},
		{"--local 2 --rank 2", "--rank 2 is not below --local 2"},
		{"--local 2 --size 3", "--size 3 contradicts --local 2"},
		{"--bootstrap nohost", "--bootstrap \"nohost\""},
		{"--bootstrap h:0", "want 1..65535"},
		{"--bootstrap :5000", "empty host"},
		{"stop --foreground", "--foreground applies to start"},
		{"start --json", "--json applies to stats"},
		{"stats --dry-run", "--dry-run applies to start"},
		{"start --timeout 1s", "--timeout applies to wait, stop, stats"},
		{"start stop", `unexpected argument "stop"`},
		{"bogus", `unexpected argument "bogus"`},
		{"--site nosuchsite", `"nosuchsite" is neither a site`},
		{"--trees 0", "trees"},
		{"-b x", "-b"},
		{"-b 1,1", "service_cores"},
		{"--no-such-flag", "no-such-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			_, err := Parse(strings.Fields(tt.args), nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestParseHelp(t *testing.T) {
	var text string
	_, err := Parse([]string{"--help"}, func(s string) { text = s })
	require.ErrorIs(t, err, pflag.ErrHelp)
	assert.Contains(t, text, "mpiexec -n $NNODES -ppn 1 copper-launch")
	assert.Contains(t, text, "--max-cacheable-bytes")
	assert.Contains(t, text, "--local")
}

// TestNodeSettingsFlagsRoundTrip checks that copper-node, given --site and
// the flags the launcher passes, ends up with the launcher's settings.
func TestNodeSettingsFlagsRoundTrip(t *testing.T) {
	for _, args := range []string{
		"",
		"--site aurora",
		"--site frontier --trees 3 --rpc-timeout-s 0.25 --allow-other --target /data -N 4 --mount /x/{rank}/$USER",
		"--site aurora -b 1,3 -F /book --job-id ignored --cache-memory-bytes 1048576 --interface=",
	} {
		t.Run(args, func(t *testing.T) {
			c, err := Parse(strings.Fields(args), nil)
			require.NoError(t, err)
			flags := c.NodeSettingsFlags()
			require.True(t, strings.HasPrefix(flags[0], "--site="))
			for _, f := range flags {
				assert.NotContains(t, f, "--job-id", "the launcher passes the resolved job id itself")
			}

			site := strings.TrimPrefix(flags[0], "--site=")
			got, err := config.Load(site)
			require.NoError(t, err)
			fs := pflag.NewFlagSet("copper-node", pflag.ContinueOnError)
			got.RegisterFlags(fs)
			require.NoError(t, fs.Parse(flags[1:]))
			want := c.Settings
			got.JobID = want.JobID
			assert.Equal(t, want, got)
		})
	}
}

func TestNodeSettingsFlagsOnlyDifferences(t *testing.T) {
	c, err := Parse(strings.Fields("--site frontier --trees 2"), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"--site=frontier", "--trees=2"}, c.NodeSettingsFlags())
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "start --site aurora -l 4", "stop --local 4", "--rank 1 --size 2", "stats --json --rank 3",
		"--local 2 --rank 1 --bootstrap 127.0.0.1:9", "-b 1,2 -n cxi -s 5", "--site=frontier wait --timeout 3s",
		"--rank 5 --size 2", "-- stop",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := Parse(strings.Fields(line), nil)
		if err != nil {
			return
		}
		require.Contains(t, commands, c.Name)
		if c.Size > 0 {
			require.Less(t, c.Rank, c.Size)
		}
		if c.Local > 0 {
			require.Equal(t, c.Local, c.Size)
		}
		require.NoError(t, c.Settings.Validate())
	})
}
