package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSitesLoadAndValidate(t *testing.T) {
	// What each site changes from Default(); every other key must equal
	// the default, so site files cannot drift from the code.
	tests := []struct {
		site string
		want func(*Settings)
	}{
		{"local", func(s *Settings) {
			s.Mount = "/tmp/copper-$USER/{rank}/mnt"
			s.LogDir = "/tmp/copper-$USER/logs"
			s.ServiceCores = []int{}
		}},
		{"aurora", func(s *Settings) {
			s.Interface = "hsn0"
			s.ServiceCores = []int{48, 49, 50, 51}
			s.SpillBudgetBytes = 8 << 30
		}},
		{"frontier", func(s *Settings) {
			s.Mount = "/mnt/bb/$USER/copper"
			s.Interface = "hsn0"
			s.ServiceCores = []int{1, 2}
			s.SpillDir = "/mnt/bb/$USER/copper-spill"
			s.SpillBudgetBytes = 64 << 30
		}},
	}
	require.Equal(t, Sites(), []string{"local", "aurora", "frontier"})
	for _, tt := range tests {
		t.Run(tt.site, func(t *testing.T) {
			got, err := Load(tt.site)
			require.NoError(t, err)
			want := Default()
			tt.want(&want)
			assert.Equal(t, want, got)
			assert.NoError(t, got.Validate())
			assert.NoError(t, got.Finish())
		})
	}
}

func TestEmptyNameIsLocal(t *testing.T) {
	local, err := Load("local")
	require.NoError(t, err)
	empty, err := Load("")
	require.NoError(t, err)
	assert.Equal(t, local, empty)
}

// Every site file is a complete template: it lists every key, once.
func TestSiteFilesListEveryKey(t *testing.T) {
	var keys []string
	for _, f := range fields() {
		keys = append(keys, f.key)
	}
	for _, site := range Sites() {
		data, err := SiteFile(site)
		require.NoError(t, err)
		var raw map[string]any
		_, err = toml.Decode(string(data), &raw)
		require.NoError(t, err, site)
		var got []string
		for k := range raw {
			got = append(got, k)
		}
		assert.ElementsMatch(t, keys, got, site)
	}
	_, err := SiteFile("mars")
	assert.ErrorContains(t, err, `unknown site "mars" (sites: local, aurora, frontier)`)
}

func TestLoadFile(t *testing.T) {
	path := writeFile(t, "my.toml", "trees = 3\nlog_type = \"both\"\nservice_cores = [4, 5]\nrpc_timeout_s = 7\n")
	got, err := Load(path)
	require.NoError(t, err)
	want := Default()
	want.Trees, want.LogType, want.ServiceCores, want.RPCTimeoutS = 3, "both", []int{4, 5}, 7
	assert.Equal(t, want, got)

	_, err = Load(filepath.Join(t.TempDir(), "missing.toml"))
	assert.ErrorContains(t, err, "missing.toml")
	assert.ErrorIs(t, err, os.ErrNotExist)

	_, err = Load("auroa")
	assert.ErrorContains(t, err, `config "auroa" is neither a site (local, aurora, frontier) nor a file`)
}

func TestLoadErrorsNameFileLineAndKey(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each line of the error, in order
	}{
		{"syntax", "trees = 1\nlog_level =\n",
			[]string{`F:2: syntax error: expected value but found '\n' instead (after key "log_level")`}},
		{"duplicate key", "trees = 1\ntrees = 2\n",
			[]string{`F:2: syntax error: Key 'trees' has already been defined. (after key "trees")`}},
		{"unknown key with suggestion", "# c\ntrees = 1\ntress = 2\n",
			[]string{`F:3: unknown key "tress" (did you mean "trees"?)`}},
		{"unknown key", "zebra = 2\n",
			[]string{`F:1: unknown key "zebra"`}},
		{"unknown table", "trees = 1\n\n[extra]\ntrees = 2\n",
			[]string{`F:3: unknown key "extra"`}},
		{"unknown dotted key", "log.level = 2\n",
			[]string{`F:1: unknown key "log"`}},
		{"quoted key is the key", "\"log_level\" = 9\n",
			[]string{`F:1: log_level 9 out of range 0..5`}},
		{"wrong type string for int", "trees = \"3\"\n",
			[]string{`F:1: trees: want integer, got string "3"`}},
		{"wrong type float for int", "\n\ntrees = 2.5\n",
			[]string{`F:3: trees: want integer, got float 2.5`}},
		{"wrong type for bool", "allow_other = 1\n",
			[]string{`F:1: allow_other: want boolean, got integer 1`}},
		{"wrong type for string", "mount = [\"a\"]\n",
			[]string{`F:1: mount: want string, got array`}},
		{"table for a key", "[trees]\n",
			[]string{`F:1: trees: want integer, got table`}},
		{"wrong array element", "service_cores = [\n  48,\n  \"49\",\n]\n",
			[]string{`F:1: service_cores: want array of integers, element 1 is string "49"`}},
		{"out of range", "log_level = 9\n",
			[]string{`F:1: log_level 9 out of range 0..5`}},
		{"out of range open", "md_enoent_ttl_ms = -1\n",
			[]string{`F:1: md_enoent_ttl_ms -1 out of range 0..`}},
		{"not finite", "rpc_timeout_s = nan\n",
			[]string{`F:1: rpc_timeout_s NaN out of range 0..`}},
		{"enum", "log_type = \"x\"\n",
			[]string{`F:1: log_type "x": want file, stdout or both`}},
		{"line after multi-line values", "target = \"\"\"\nlog_level = 9\n\"\"\"\nmount = '''\nx'''\nservice_cores = [ # [\n 1, ]\nlog_levl = 1\n",
			[]string{`F:8: unknown key "log_levl" (did you mean "log_level"?)`}},
		{"all problems in line order", "fanout = 1\nzzz = 1\ntrees = 0\n",
			[]string{
				`F:1: fanout 1: must be 0 (auto) or ≥ 2`,
				`F:2: unknown key "zzz"`,
				`F:3: trees 0 out of range 1..`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "bad.toml", tt.src)
			_, err := Load(path)
			require.Error(t, err)
			want := strings.ReplaceAll(strings.Join(tt.want, "\n"), "F:", path+":")
			assert.Equal(t, want, err.Error())

			// Embedded and in-memory files use their given name.
			_, err = decode("site test", []byte(tt.src))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "site test:"), err.Error())
		})
	}
}

func TestKeyLine(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]int
	}{
		{"plain", "a = 1\n\n  b=2 # c = 3\n", map[string]int{"a": 1, "b": 3}},
		{"quoted keys", "\"a b\" = 1\n'c' = 2\n\"d\\u0065\" = 3\n", map[string]int{"a b": 1, "c": 2, "de": 3}},
		{"dotted", "a.b = 1\n\"x\".y = 2\n", map[string]int{"a": 1, "x": 2}},
		{"table hides its keys", "a = 1\n[t]\nb = 2\n[[u]]\nc = 3\n", map[string]int{"a": 1, "t": 2, "u": 4}},
		{"multi-line array", "a = [\n 1, # ]\n \"]\",\n]\nb = 1\n", map[string]int{"a": 1, "b": 5}},
		{"inline table", "a = { x = 1, y = \"}\" }\nb = 1\n", map[string]int{"a": 1, "b": 2}},
		{"multi-line strings", "a = \"\"\"\nb = 1\n\\\"\"\"\"\"\"\nc = '''\nd = 2\n'''''\ne = 1\n", map[string]int{"a": 1, "c": 4, "e": 7}},
		{"escaped quote", "a = \"x\\\"# y = 1\"\nb = 2\n", map[string]int{"a": 1, "b": 2}},
		{"crlf", "a = 1\r\nb = 2\r\n", map[string]int{"a": 1, "b": 2}},
		{"names that differ in case", "Mount = 1\nmount = 2\n", map[string]int{"Mount": 1, "mount": 2}},
		{"keys no struct tag can name get no line", "\"\" = 1\n\"a,b\" = 2\n\"q\\\"\" = 3\n", map[string]int{"": 0, "a,b": 0, "q\"": 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw map[string]any
			md, err := toml.Decode(tt.src, &raw)
			require.NoError(t, err, "test input must be valid TOML")
			got := make(map[string]int, len(raw))
			for key := range raw {
				got[key] = keyLine(tt.src, md, key)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestAssignAcceptsIntegersForFloats(t *testing.T) {
	var s Settings
	f, ok := fieldByKey("rpc_timeout_s")
	require.True(t, ok)
	require.NoError(t, assign(f.value(&s), int64(5)))
	assert.Equal(t, 5.0, s.RPCTimeoutS)
	assert.ErrorContains(t, assign(reflect.ValueOf(&s.Trees).Elem(), 5.0), "want integer, got float 5")
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}
