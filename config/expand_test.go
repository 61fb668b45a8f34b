package config

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fakeEnv(vars map[string]string) Lookup {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestExpand(t *testing.T) {
	env := fakeEnv(map[string]string{"USER": "ann", "HOME": "/home/ann", "SCRATCH": "/lus/x", "EMPTY": ""})
	tests := []struct {
		name    string
		key     string
		in      string
		rank    int
		want    string
		wantErr string
	}{
		{"user", "mount", "/tmp/$USER/copper", 0, "/tmp/ann/copper", ""},
		{"braces and rank", "mount", "/tmp/copper-${USER}/{rank}/mnt", 7, "/tmp/copper-ann/7/mnt", ""},
		{"rank kept when negative", "mount", "/tmp/{rank}/mnt", -1, "/tmp/{rank}/mnt", ""},
		{"tilde", "log_dir", "~/copper-logs", 0, "/home/ann/copper-logs", ""},
		{"tilde alone", "log_dir", "~", 0, "/home/ann", ""},
		{"home var", "address_book", "$HOME/book.txt", 0, "/home/ann/book.txt", ""},
		{"other var", "target", "$SCRATCH/data/", 0, "/lus/x/data", ""},
		{"dollar escape", "target", "/a$$b", 0, "/a$b", ""},
		{"var then letters", "target", "/x/$USER_x", 0, "", `target "/x/$USER_x": $USER_x is not set`},
		{"empty stays empty", "address_book", "", 0, "", ""},
		{"empty var", "log_dir", "/l/$EMPTY/x", 0, "/l/x", ""},
		{"unset var", "mount", "/tmp/$NOPE/m", 0, "", `mount "/tmp/$NOPE/m": $NOPE is not set`},
		{"unterminated brace", "log_dir", "/x/${USER", 0, "", `log_dir "/x/${USER": unterminated ${`},
		{"bad name", "log_dir", "/x/${1A}", 0, "", `log_dir "/x/${1A}": bad variable name ${1A}`},
		{"bare dollar", "log_dir", "/x/$", 0, "", `log_dir "/x/$": '$' must start a variable`},
		{"tilde user", "log_dir", "~bob/x", 0, "", `log_dir "~bob/x": ~user is not supported`},
		{"relative mount", "mount", "mnt/$USER", 0, "", `mount "mnt/$USER": must be an absolute path (got "mnt/ann")`},
		{"relative log_dir is allowed", "log_dir", "logs", 0, "logs", ""},
		{"prefetch manifest", "prefetch", "~/runs/{rank}/used_paths_existing.txt", 2, "/home/ann/runs/2/used_paths_existing.txt", ""},
		{"prefetch off stays empty", "prefetch", "", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Default()
			f, ok := fieldByKey(tt.key)
			require.True(t, ok)
			f.value(&s).SetString(tt.in)
			err := s.ExpandWith(tt.rank, env)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.True(t, strings.HasPrefix(err.Error(), tt.wantErr), err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, f.value(&s).String())
		})
	}
}

func TestExpandSites(t *testing.T) {
	env := fakeEnv(map[string]string{"USER": "ann", "HOME": "/home/ann"})
	s, err := Load("local")
	require.NoError(t, err)
	require.NoError(t, s.ExpandWith(3, env))
	assert.Equal(t, "/tmp/copper-ann/3/mnt", s.Mount)
	assert.Equal(t, "/tmp/copper-ann/logs", s.LogDir)
	assert.Equal(t, "/", s.Target)

	s, err = Load("aurora")
	require.NoError(t, err)
	require.NoError(t, s.ExpandWith(0, env))
	assert.Equal(t, "/home/ann/copper-logs", s.LogDir)

	// The process environment always yields USER and HOME.
	s = Default()
	require.NoError(t, s.Expand(0))
	assert.NotContains(t, s.Mount, "$")
}

func TestDurationsAndSizes(t *testing.T) {
	s := Default()
	assert.Equal(t, 2*time.Second, s.NegativeTTL())
	assert.Equal(t, time.Hour, s.EntryTimeout())
	assert.Equal(t, time.Hour, s.AttrTimeout())
	assert.Equal(t, time.Minute, s.NegativeTimeout())
	assert.Equal(t, time.Minute, s.RPCTimeout())
	assert.Equal(t, 2*time.Minute, s.ReadyTimeout())
	assert.Equal(t, time.Minute, s.BootstrapTimeout())
	assert.Equal(t, 10*time.Millisecond, s.ReadyProbeInitial())
	assert.Equal(t, time.Second, s.ReadyProbeMax())
	assert.Equal(t, int64(11*mib), s.FrameCap())

	s.RPCTimeoutS = 0.25
	assert.Equal(t, 250*time.Millisecond, s.RPCTimeout())
	s.ReadyTimeoutS = 1e30
	assert.Equal(t, time.Duration(math.MaxInt64), s.ReadyTimeout())
	s.MdEnoentTTLMs = math.MaxInt64
	assert.Equal(t, time.Duration(math.MaxInt64), s.NegativeTTL())
	s.MaxFrameBytes = 64 * mib
	assert.Equal(t, int64(64*mib), s.FrameCap())
}

func TestCacheBudget(t *testing.T) {
	s := Default()
	s.CacheMemoryBytes = 12345
	got, err := s.CacheBudget()
	require.NoError(t, err)
	assert.Equal(t, int64(12345), got)

	s.CacheMemoryBytes = 0
	got, err = s.CacheBudget() // from this machine's /proc/meminfo
	require.NoError(t, err)
	assert.Positive(t, got)

	assert.Equal(t, int64(250), percentOf(1000, 25))
	assert.Equal(t, int64(math.MaxInt64/100*90+math.MaxInt64%100*90/100), percentOf(math.MaxInt64, 90))
}

func TestParseMemTotal(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"MemTotal:       16384 kB\nMemFree: 1 kB\n", 16384 * 1024, ""},
		{"MemFree: 1 kB\nMemTotal: 2 kB", 2048, ""},
		{"MemFree: 1 kB\n", 0, "no MemTotal line"},
		{"MemTotal: 2 MB\n", 0, "want \"MemTotal: N kB\""},
		{"MemTotal: -2 kB\n", 0, "bad size"},
		{"MemTotal: 99999999999999999999 kB\n", 0, "bad size"},
	}
	for _, tt := range tests {
		got, err := parseMemTotal(strings.NewReader(tt.in))
		if tt.wantErr != "" {
			assert.ErrorContains(t, err, tt.wantErr, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got)
	}
}
