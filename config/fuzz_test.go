package config

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzDecode: decoding any bytes never panics; a success obeys every
// per-key rule; a failure names the file; and every top-level key of a
// document that parses is found by keyLine (else errors lose their line).
func FuzzDecode(f *testing.F) {
	for _, site := range Sites() {
		data, err := SiteFile(site)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		"", "trees = 3\n", "log_level =\n", "tress = 1\n", "[extra]\nx = 1\n",
		"trees = \"3\"\n", "service_cores = [1, \"2\"]\n", "log_level = 9\n",
		"rpc_timeout_s = nan\n", "a.b = 1\n", "\"log_level\" = 1\n",
		"target = \"\"\"\nx = 1\n\"\"\"\nmount = '''\ny'''\nzz = 1\n",
		"x = { a = [1, { b = \"]\" }] }\n", "[[t]]\n[[t]]\n", "d = 1979-05-27T07:32:00Z\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decode("fuzz.toml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
		} else {
			for _, fl := range fields() {
				if fl.rule != nil {
					if err := fl.rule.check(fl.key, fl.value(&s)); err != nil {
						t.Fatalf("decode accepted an out-of-range value: %v", err)
					}
				}
			}
		}
		var raw map[string]any
		md, err := toml.Decode(string(data), &raw)
		if err != nil {
			return
		}
		for key := range raw {
			if key == "" || strings.Contains(key, ",") {
				continue // no struct tag names them (see keyLine)
			}
			if keyLine(string(data), md, key) < 1 {
				t.Fatalf("keyLine missed key %q in %q", key, data)
			}
		}
	})
}

// FuzzExpand: expanding any path never panics, and a successful
// expansion is exactly what an independent regexp-based expander gives:
// every $NAME and ${NAME} replaced by its value, $$ by $, a leading ~ by
// $HOME, {rank} by the rank, the result cleaned. In particular no variable
// reference and no {rank} is left behind. Names set in the fake
// environment expand to "<NAME>"; UNSET is not set.
func FuzzExpand(f *testing.F) {
	for _, seed := range []string{"/tmp/$USER/{rank}", "~/x", "${HOME}/a", "$", "${", "$$", "~u", "/a/${1}",
		"/a/$UNSET", "/p/$A_1b/${B}x/$$HOME/{rank}{rank}", "/x/${}", "$9", "~"} {
		f.Add(seed, 3)
		f.Add(seed, -1)
	}
	env := func(name string) (string, bool) {
		if name == "UNSET" {
			return "", false
		}
		return "<" + name + ">", true
	}
	ref := regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
	f.Fuzz(func(t *testing.T, in string, rank int) {
		out, err := expandPath(in, rank, env)
		if in == "" {
			if out != "" || err != nil {
				t.Fatalf("empty path expanded to %q, %v", out, err)
			}
			return
		}
		if strings.ContainsRune(in, 0) {
			return // the oracle marks $$ with NUL
		}
		p := in
		if p == "~" || strings.HasPrefix(p, "~/") {
			p = "${HOME}" + p[1:]
		}
		unset := false
		want := ref.ReplaceAllStringFunc(p, func(m string) string {
			if m == "$$" {
				return "\x00" // a literal $, not to be taken for a stray one below
			}
			name := ref.FindStringSubmatch(m)
			v, ok := env(name[1] + name[2])
			unset = unset || !ok
			return v
		})
		wantErr := unset || strings.Contains(want, "$") || strings.HasPrefix(p, "~")
		if wantErr {
			if err == nil {
				t.Fatalf("%q expanded to %q, want an error", in, out)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v, want %q", in, err, want)
		}
		want = strings.ReplaceAll(want, "\x00", "$")
		if rank >= 0 {
			want = strings.ReplaceAll(want, "{rank}", strconv.Itoa(rank))
		}
		if want = filepath.Clean(want); out != want {
			t.Fatalf("%q (rank %d) expanded to %q, want %q", in, rank, out, want)
		}
	})
}

// FuzzParseMemTotal: any meminfo text gives a positive size or an error.
func FuzzParseMemTotal(f *testing.F) {
	for _, seed := range []string{"MemTotal: 16384 kB\n", "MemTotal: x kB", "", "MemTotal:\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := parseMemTotal(strings.NewReader(in))
		if err == nil && n <= 0 {
			t.Fatalf("%q gave %d without error", in, n)
		}
	})
}
