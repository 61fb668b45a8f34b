package config

import (
	"strconv"
	"strings"
)

// keyLines maps each top-level name of a TOML document — a key, the first
// part of a dotted key, or the first part of a table header — to the line
// it first appears on. The TOML library keeps key positions private, so we
// find them ourselves. src has already parsed, so the scanner only needs
// to skip valid values correctly; on anything else it just makes progress.
func keyLines(src string) map[string]int {
	k := keyScanner{src: src}
	lines := make(map[string]int)
	record := func(name string, found bool, at int) {
		// "" is a valid (quoted) key: found, not the name, says there was one.
		if _, seen := lines[name]; !seen && found {
			lines[name] = 1 + strings.Count(src[:at], "\n")
		}
	}
	inTable := false // keys after a table header belong to that table
	for {
		k.skipBlank()
		if k.pos >= len(src) {
			return lines
		}
		at := k.pos
		if src[at] == '[' {
			k.pos++
			if k.peek() == '[' {
				k.pos++
			}
			name, found := k.keyPart()
			record(name, found, at)
			inTable = true
			k.skipLine() // a header cannot span lines
			continue
		}
		name, found := k.keyPart()
		if !inTable {
			record(name, found, at)
		}
		k.skipValue()
	}
}

type keyScanner struct {
	src string
	pos int
}

func (k *keyScanner) peek() byte {
	if k.pos < len(k.src) {
		return k.src[k.pos]
	}
	return 0
}

func (k *keyScanner) hasPrefix(s string) bool { return strings.HasPrefix(k.src[k.pos:], s) }

// skipBlank skips whitespace, newlines and comments between statements.
func (k *keyScanner) skipBlank() {
	for k.pos < len(k.src) {
		switch k.src[k.pos] {
		case ' ', '\t', '\r', '\n':
			k.pos++
		case '#':
			k.skipLine()
		default:
			return
		}
	}
}

// skipLine moves past the next newline.
func (k *keyScanner) skipLine() {
	if i := strings.IndexByte(k.src[k.pos:], '\n'); i >= 0 {
		k.pos += i + 1
	} else {
		k.pos = len(k.src)
	}
}

// keyPart reads one simple key (bare or quoted) after optional blanks.
func (k *keyScanner) keyPart() (name string, found bool) {
	for k.peek() == ' ' || k.peek() == '\t' {
		k.pos++
	}
	switch k.peek() {
	case '"':
		start := k.pos
		k.skipBasicString()
		if name, err := strconv.Unquote(k.src[start:k.pos]); err == nil {
			return name, true
		}
		return strings.Trim(k.src[start:k.pos], `"`), true // TOML-only escapes; close enough
	case '\'':
		start := k.pos + 1
		k.skipLiteralString()
		return strings.TrimSuffix(k.src[start:k.pos], "'"), true
	}
	start := k.pos
	for k.pos < len(k.src) && isBareKeyChar(k.src[k.pos]) {
		k.pos++
	}
	return k.src[start:k.pos], k.pos > start
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// skipValue skips the rest of a key/value statement: dotted key parts, '=',
// and a value that may span lines inside arrays, inline tables or
// multi-line strings.
func (k *keyScanner) skipValue() {
	depth := 0
	for k.pos < len(k.src) {
		switch c := k.src[k.pos]; c {
		case '"':
			if k.hasPrefix(`"""`) {
				k.skipMultiline(`"""`, true)
			} else {
				k.skipBasicString()
			}
		case '\'':
			if k.hasPrefix(`'''`) {
				k.skipMultiline(`'''`, false)
			} else {
				k.skipLiteralString()
			}
		case '#':
			k.pos = k.lineEnd()
		case '[', '{':
			depth++
			k.pos++
		case ']', '}':
			depth--
			k.pos++
		case '\n':
			k.pos++
			if depth <= 0 {
				return
			}
		default:
			k.pos++
		}
	}
}

// lineEnd is the offset of the next newline (or the end).
func (k *keyScanner) lineEnd() int {
	if i := strings.IndexByte(k.src[k.pos:], '\n'); i >= 0 {
		return k.pos + i
	}
	return len(k.src)
}

// skipBasicString skips "..." with backslash escapes, stopping at the end
// of the line if the string is unterminated.
func (k *keyScanner) skipBasicString() {
	k.pos++ // opening quote
	for k.pos < len(k.src) {
		switch k.src[k.pos] {
		case '\\':
			k.pos += 2
		case '"':
			k.pos++
			return
		case '\n':
			return
		default:
			k.pos++
		}
	}
	k.pos = min(k.pos, len(k.src))
}

// skipLiteralString skips '...' (no escapes).
func (k *keyScanner) skipLiteralString() {
	k.pos++
	end := k.lineEnd()
	if i := strings.IndexByte(k.src[k.pos:end], '\''); i >= 0 {
		k.pos += i + 1
	} else {
		k.pos = end
	}
}

// skipMultiline skips a triple-quoted string, including up to two quotes
// that end its content right before the closing delimiter.
func (k *keyScanner) skipMultiline(delim string, escapes bool) {
	k.pos += len(delim)
	for k.pos < len(k.src) {
		if escapes && k.src[k.pos] == '\\' {
			k.pos += 2
			continue
		}
		if k.hasPrefix(delim) {
			k.pos += len(delim)
			for extra := 0; extra < 2 && k.peek() == delim[0]; extra++ {
				k.pos++
			}
			return
		}
		k.pos++
	}
	k.pos = min(k.pos, len(k.src))
}
