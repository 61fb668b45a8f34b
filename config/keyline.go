package config

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLine is the line on which the top-level name (a key, the first part
// of a dotted key, or a table) is defined in src, which parsed into md; 0
// if it cannot be told. The TOML library records every key's position but
// shows it only in a ParseError, which it raises at a key whose
// toml.Unmarshaler fails: so src is decoded into a struct whose field at
// that key refuses any value. A dotted key's first part has no position
// of its own; its first full key, in file order, is probed instead. It
// costs a parse per probe, and is asked only for keys with a problem.
// Struct tags cannot name "" or a key with a comma: those get 0.
func keyLine(src string, md toml.MetaData, name string) int {
	for _, key := range md.Keys() {
		if key[0] != name {
			continue
		}
		if line := probeLine(src, key, md.Keys()); line > 0 {
			return line
		}
	}
	return 0
}

// probeLine decodes src into nested structs along key, refusing at its
// end, and returns the line the library blames.
func probeLine(src string, key toml.Key, all []toml.Key) int {
	typ := reflect.TypeFor[refuse]()
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == "" || strings.Contains(key[i], ",") {
			return 0
		}
		fields := []reflect.StructField{tagged("K", key[i], typ)}
		// The library matches a field name case-insensitively when no
		// field matches exactly: give every name that differs only in
		// case a field of its own.
		for j, other := range siblings(all, key[:i]) {
			if other != key[i] && strings.EqualFold(other, key[i]) && !strings.Contains(other, ",") {
				fields = append(fields, tagged("F"+strconv.Itoa(j), other, reflect.TypeFor[any]()))
			}
		}
		typ = reflect.StructOf(fields)
	}
	_, err := toml.Decode(src, reflect.New(typ).Interface())
	var pe toml.ParseError
	if !errors.As(err, &pe) || pe.Message != errRefused.Error() || pe.LastKey != key.String() {
		return 0
	}
	// Position.Line is where the value ends (a multi-line string's last
	// line); Start is in its first line, the key's.
	if start := pe.Position.Start; start >= 0 && start <= len(src) {
		return 1 + strings.Count(src[:start], "\n")
	}
	return pe.Position.Line
}

func tagged(name, tag string, typ reflect.Type) reflect.StructField {
	return reflect.StructField{Name: name, Type: typ, Tag: reflect.StructTag("toml:" + strconv.Quote(tag))}
}

// siblings lists the names directly under parent.
func siblings(all []toml.Key, parent toml.Key) []string {
	var out []string
	for _, k := range all {
		if len(k) == len(parent)+1 && slices.Equal(k[:len(parent)], parent) {
			out = append(out, k[len(parent)])
		}
	}
	return out
}

// refuse fails to decode any value (see keyLine).
type refuse struct{}

var errRefused = errors.New("refused")

func (refuse) UnmarshalTOML(any) error { return errRefused }
