package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load returns Default() overlaid with a site file: "" is the local site, a
// site name (see Sites) is the embedded file, anything else is a file path
// (write ./aurora to read a file that shares a site's name).
//
// Loading is strict: syntax errors, unknown keys, wrong types and
// out-of-range values are errors of the form "<file>:<line>: <key> ...",
// where <file> is "site NAME" or the path. Checks that involve several keys
// wait for Validate, because flags may still change one of them.
func Load(nameOrPath string) (Settings, error) {
	if nameOrPath == "" {
		nameOrPath = "local"
	}
	if isSite(nameOrPath) {
		data, err := SiteFile(nameOrPath)
		if err != nil {
			return Settings{}, err
		}
		return decode("site "+nameOrPath, data)
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(nameOrPath, "/.") {
			return Settings{}, fmt.Errorf("config %q is neither a site (%s) nor a file: %w",
				nameOrPath, strings.Join(Sites(), ", "), err)
		}
		return Settings{}, fmt.Errorf("config: %w", err)
	}
	return decode(nameOrPath, data)
}

// located is an error at a line of a file; line 0 means unknown.
type located struct {
	line int
	err  error
}

// decode overlays the TOML in data on Default(); name is the file name
// used in errors. All problems are reported together, in line order.
func decode(name string, data []byte) (Settings, error) {
	src := string(data)
	var raw map[string]any
	md, err := toml.Decode(src, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Settings{}, fmt.Errorf("%s:%d: %s", name, pe.Position.Line, syntaxMessage(pe))
		}
		return Settings{}, fmt.Errorf("%s: %w", name, err)
	}

	s := Default()
	var problems []located
	for key, val := range raw {
		f, ok := fieldByKey(key)
		if !ok {
			problems = append(problems, located{keyLine(src, md, key), unknownKey(key)})
			continue
		}
		v := f.value(&s)
		if err := assign(v, val); err != nil {
			problems = append(problems, located{keyLine(src, md, key), fmt.Errorf("%s: %w", key, err)})
			continue
		}
		if f.rule != nil {
			if err := f.rule.check(key, v); err != nil {
				problems = append(problems, located{keyLine(src, md, key), err})
			}
		}
	}
	if len(problems) == 0 {
		return s, nil
	}
	slices.SortFunc(problems, func(a, b located) int {
		return cmp.Or(cmp.Compare(a.line, b.line), strings.Compare(a.err.Error(), b.err.Error()))
	})
	errs := make([]error, len(problems))
	for i, p := range problems {
		if p.line > 0 {
			errs[i] = fmt.Errorf("%s:%d: %w", name, p.line, p.err)
		} else {
			errs[i] = fmt.Errorf("%s: %w", name, p.err)
		}
	}
	return Settings{}, errors.Join(errs...)
}

// syntaxMessage is the library's short message, naming the key it follows.
func syntaxMessage(pe toml.ParseError) string {
	msg := "syntax error: " + pe.Message
	if pe.LastKey != "" {
		msg += fmt.Sprintf(" (after key %q)", pe.LastKey)
	}
	return msg
}

// unknownKey names the key and, when one is close, the key meant.
func unknownKey(key string) error {
	best, bestDist := "", 3 // suggest only within two edits
	for _, f := range fields() {
		if d := editDistance(key, f.key); d < bestDist {
			best, bestDist = f.key, d
		}
	}
	if best != "" {
		return fmt.Errorf("unknown key %q (did you mean %q?)", key, best)
	}
	return fmt.Errorf("unknown key %q", key)
}

// assign stores a decoded TOML value in a Settings field, or says why the
// types do not match.
func assign(dst reflect.Value, val any) error {
	switch dst.Kind() {
	case reflect.String:
		if s, ok := val.(string); ok {
			dst.SetString(s)
			return nil
		}
	case reflect.Int, reflect.Int64:
		if n, ok := val.(int64); ok {
			if dst.OverflowInt(n) {
				return fmt.Errorf("%d does not fit in %s", n, dst.Type())
			}
			dst.SetInt(n)
			return nil
		}
	case reflect.Float64:
		switch x := val.(type) {
		case float64:
			dst.SetFloat(x)
			return nil
		case int64: // "60" is as good as "60.0" for seconds
			dst.SetFloat(float64(x))
			return nil
		}
	case reflect.Bool:
		if b, ok := val.(bool); ok {
			dst.SetBool(b)
			return nil
		}
	case reflect.Slice: // only []int today
		items, ok := val.([]any)
		if !ok {
			break
		}
		out := reflect.MakeSlice(dst.Type(), len(items), len(items))
		for i, item := range items {
			n, ok := item.(int64)
			if !ok {
				return fmt.Errorf("want array of integers, element %d is %s", i, describeTOML(item))
			}
			if out.Index(i).OverflowInt(n) {
				return fmt.Errorf("element %d: %d does not fit in %s", i, n, dst.Type().Elem())
			}
			out.Index(i).SetInt(n)
		}
		dst.Set(out)
		return nil
	default:
		return fmt.Errorf("unsupported field type %s", dst.Type())
	}
	return fmt.Errorf("want %s, got %s", tomlTypeOf(dst.Type()), describeTOML(val))
}

func tomlTypeOf(t reflect.Type) string { return field{typ: t}.typeName() }

// describeTOML names a decoded value's TOML type, with the value when short.
func describeTOML(val any) string {
	switch x := val.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return "string " + strconv.Quote(x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprintf("float %v", x)
		}
		return "float " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return fmt.Sprintf("boolean %t", x)
	case []any:
		return "array"
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	}
	return "date/time"
}

// editDistance is the Levenshtein distance, for "did you mean".
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
