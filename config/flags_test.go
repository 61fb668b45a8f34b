package config

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every Settings field has a documented spec and every spec a field, so a
// new field cannot miss its doc, flag, validation or Describe line.
func TestEveryFieldHasSpec(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range fields() {
		assert.NotEmpty(t, specs[f.key].doc, "field %s has no spec in fields.go", f.key)
		assert.False(t, seen[f.key], "key %s twice", f.key)
		seen[f.key] = true
	}
	for key := range specs {
		assert.True(t, seen[key], "spec %s has no Settings field", key)
	}
}

func TestDescribe(t *testing.T) {
	s := Default()
	info := s.Describe()
	require.Len(t, info, len(fields()))
	byKey := map[string]KeyInfo{}
	for _, k := range info {
		byKey[k.Key] = k
		assert.Equal(t, "--"+strings.ReplaceAll(k.Key, "_", "-"), k.Flag)
		assert.NotEmpty(t, k.Doc, k.Key)
		assert.NotEmpty(t, k.Type, k.Key)
	}
	assert.Equal(t, KeyInfo{
		Key: "log_level", Flag: "--log-level", Type: "integer", Default: "0", Range: "0..5",
		Doc: "log verbosity: 0 none, 1 fatal, 2 error, 3 warn, 4 info, 5 debug",
	}, byKey["log_level"])
	assert.Equal(t, `"/tmp/$USER/copper"`, byKey["mount"].Default)
	assert.Equal(t, "0..1073741824 (1 GiB)", byKey["max_cacheable_bytes"].Range)
	assert.Equal(t, "0 (auto) or ≥ 2", byKey["fanout"].Range)
	assert.Equal(t, "array of integers", byKey["service_cores"].Type)

	aurora, err := Load("aurora")
	require.NoError(t, err)
	for _, k := range aurora.Describe() {
		if k.Key == "service_cores" {
			assert.Equal(t, "[48, 49, 50, 51]", k.Default)
		}
	}
}

func newFlagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("copper", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func TestRegisterFlagsCoversEveryKey(t *testing.T) {
	s := Default()
	fs := newFlagSet()
	s.RegisterFlags(fs)
	for _, k := range s.Describe() {
		f := fs.Lookup(strings.TrimPrefix(k.Flag, "--"))
		require.NotNil(t, f, k.Key)
		assert.Contains(t, f.Usage, k.Doc)
	}
}

func TestFlagsBeatFile(t *testing.T) {
	path := writeFile(t, "site.toml", "trees = 3\nmount = \"/file\"\nservice_cores = [7]\nallow_other = true\nlog_level = 2\n")
	s, err := Load(path)
	require.NoError(t, err)
	fs := newFlagSet()
	s.RegisterFlags(fs)

	// Flag defaults are the file's values.
	assert.Equal(t, "3", fs.Lookup("trees").DefValue)
	assert.Equal(t, "/file", fs.Lookup("mount").DefValue)

	require.NoError(t, fs.Parse([]string{
		"--trees", "5", "--mount=/flag", "--service-cores", "48,49",
		"--allow-other=false", "--max-cacheable-bytes", "1024", "--md-enoent-ttl-ms", "5",
		"--rpc-timeout-s", "1.5",
	}))
	want := Default()
	want.Trees, want.Mount, want.ServiceCores, want.AllowOther = 5, "/flag", []int{48, 49}, false
	want.LogLevel = 2 // from the file, untouched by flags
	want.MaxCacheableBytes, want.MdEnoentTTLMs, want.RPCTimeoutS = 1024, 5, 1.5
	assert.Equal(t, want, s)
	require.NoError(t, s.Finish())

	// A bad flag value is caught by Finish, naming the key.
	require.NoError(t, fs.Parse([]string{"--log-level", "9"}))
	assert.EqualError(t, s.Finish(), "log_level 9 out of range 0..5")
}

func TestLegacyShortFlags(t *testing.T) {
	tests := []struct {
		args  []string
		want  func(*Settings)
		notes int
	}{
		{[]string{"-l", "4"}, func(s *Settings) { s.LogLevel = 4 }, 0},
		{[]string{"-t", "file_and_stdout"}, func(s *Settings) { s.LogType = "both" }, 0},
		{[]string{"-t", "stdout"}, func(s *Settings) { s.LogType = "stdout" }, 0},
		{[]string{"-d", "/logs"}, func(s *Settings) { s.LogDir = "/logs" }, 0},
		{[]string{"-T", "2"}, func(s *Settings) { s.Trees = 2 }, 0},
		{[]string{"-M", "4096"}, func(s *Settings) { s.MaxCacheableBytes = 4096 }, 0},
		{[]string{"-E", "100"}, func(s *Settings) { s.MdEnoentTTLMs = 100 }, 0},
		{[]string{"-P"}, func(s *Settings) { s.ProfileMetrics = true }, 0},
		{[]string{"-N", "20"}, func(s *Settings) { s.ProfileTopN, s.ProfileMetrics = 20, true }, 0},
		{[]string{"-N", "0"}, func(s *Settings) { s.ProfileMetrics = true }, 0}, // -N implies -P even with 0
		{[]string{"-A"}, func(s *Settings) { s.ProfilePathsFull, s.ProfileMetrics = true, true }, 0},
		{[]string{"-A=false"}, func(*Settings) {}, 0},
		{[]string{"-I", "30"}, func(s *Settings) { s.ProfileSnapshotIntervalS, s.ProfileMetrics = 30, true }, 0},
		{[]string{"-s", "10"}, func(*Settings) {}, 1},
		{[]string{"-b", "48,49,50,51"}, func(s *Settings) { s.ServiceCores = []int{48, 49, 50, 51} }, 0},
		{[]string{"-F", "/etc/book"}, func(s *Settings) { s.AddressBook = "/etc/book" }, 0},
		{[]string{"-a", "facility"}, func(s *Settings) { s.AddressBookSource = "facility" }, 0},
		{[]string{"-n", "hsn0"}, func(s *Settings) { s.Interface = "hsn0" }, 0},
		{[]string{"-n", "cxi"}, func(*Settings) {}, 1},
		{[]string{"-n", "ofi+cxi://0x1"}, func(*Settings) {}, 1},
		{[]string{"-v", "/mnt"}, func(s *Settings) { s.Mount = "/mnt" }, 0},
		{[]string{"-l4", "-T", "3", "-PA"}, func(s *Settings) {
			s.LogLevel, s.Trees, s.ProfileMetrics, s.ProfilePathsFull = 4, 3, true, true
		}, 0},
		{[]string{"-l", "4", "--log-level", "5"}, func(s *Settings) { s.LogLevel = 5 }, 0}, // last wins
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			s := Default()
			fs := newFlagSet()
			s.RegisterFlags(fs)
			s.RegisterLegacyShortFlags(fs)
			require.NoError(t, fs.Parse(tt.args))
			require.NoError(t, s.Finish())
			want := Default()
			tt.want(&want)
			assert.Equal(t, want, s)
			assert.Len(t, LegacyNotes(fs), tt.notes)
		})
	}
}

func TestLegacyShortFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"-N", "x"}, {"-s", "soon"}, {"-A=maybe"}, {"-b", "a"}} {
		s := Default()
		fs := newFlagSet()
		s.RegisterLegacyShortFlags(fs)
		assert.Error(t, fs.Parse(args), args)
	}
}

func TestFinishImpliesProfileMetrics(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Settings)
		want bool
	}{
		{"nothing", func(*Settings) {}, false},
		{"top_n", func(s *Settings) { s.ProfileTopN = 5 }, true},
		{"paths_full", func(s *Settings) { s.ProfilePathsFull = true }, true},
		{"snapshot", func(s *Settings) { s.ProfileSnapshotIntervalS = 60 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Default()
			tt.set(&s)
			require.NoError(t, s.Finish())
			assert.Equal(t, tt.want, s.ProfileMetrics)
		})
	}
}
