package config

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// FuzzFlagMatchesTOML: the command line and a site file are two decoders
// of the same settings. Whatever value a flag accepts (and its key's rule
// allows), the same value written as TOML decodes without error to the
// same setting; and no flag value makes parsing panic.
func FuzzFlagMatchesTOML(f *testing.F) {
	for i, fl := range fields() {
		for _, v := range []string{"", "0", "1", "-1", "3.5", "true", "1e3", "0x10", "1,2", " 7", "nan", "9223372036854775807", "a\"b\\c\x00"} {
			f.Add(uint8(i), v)
		}
		f.Add(uint8(i), reflect.ValueOf(Default()).Field(fl.index).String())
	}
	all := fields()
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		fl := all[int(which)%len(all)]
		s := Default()
		fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		s.RegisterFlags(fs)
		if err := fs.Parse([]string{"--" + fl.flagName() + "=" + value}); err != nil {
			return
		}
		got := fl.value(&s).Interface()
		if fl.rule != nil && fl.rule.check(fl.key, fl.value(&s)) != nil {
			return
		}
		if str, ok := got.(string); ok && !utf8.ValidString(str) {
			return // TOML documents are UTF-8: such a path exists only on the command line
		}
		var doc bytes.Buffer
		if err := toml.NewEncoder(&doc).Encode(map[string]any{fl.key: got}); err != nil {
			t.Fatalf("--%s=%q gives %#v, which TOML cannot encode: %v", fl.flagName(), value, got, err)
		}
		fromFile, err := decode("flag.toml", doc.Bytes())
		if err != nil {
			t.Fatalf("--%s=%q is accepted, its TOML form %q is not: %v", fl.flagName(), value, doc.String(), err)
		}
		want := fl.value(&fromFile).Interface()
		if x, ok := got.(float64); ok && math.IsNaN(x) && math.IsNaN(want.(float64)) {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("--%s=%q gives %#v, the same value in TOML (%q) gives %#v", fl.flagName(), value, got, doc.String(), want)
		}
	})
}
