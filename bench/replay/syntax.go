package replay

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// splitPid removes "1234 " or "[pid 1234] " from the front of a line.
func splitPid(s string) (pid, rest string) {
	if r, ok := strings.CutPrefix(s, "[pid "); ok {
		if i := strings.IndexByte(r, ']'); i > 0 {
			return strings.TrimSpace(r[:i]), r[i+1:]
		}
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > 0 && i < len(s) && s[i] == ' ' {
		return s[:i], s[i+1:]
	}
	return "", s
}

// call is one parsed system call.
type call struct {
	name  string
	args  []string // raw argument tokens
	ret   int64    // return value; -1 with errno on failure
	errno syscall.Errno
	noRet bool // "= ?" (the process died in the call)
}

func parseCall(s string) (call, error) {
	open := strings.IndexByte(s, '(')
	if open <= 0 {
		return call{}, fmt.Errorf("no system call in %q", clip(s))
	}
	c := call{name: s[:open]}
	for _, r := range c.name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return call{}, fmt.Errorf("bad system call name %q", clip(c.name))
		}
	}
	args, end, err := splitArgs(s, open+1)
	if err != nil {
		return call{}, err
	}
	c.args = args
	rest := strings.TrimSpace(s[end:])
	ret, ok := strings.CutPrefix(rest, "=")
	if !ok {
		return call{}, fmt.Errorf("%s: no return value in %q", c.name, clip(rest))
	}
	fields := strings.Fields(ret)
	if len(fields) == 0 {
		return call{}, fmt.Errorf("%s: empty return value", c.name)
	}
	if fields[0] == "?" {
		c.noRet = true
		return c, nil
	}
	v, err := strconv.ParseInt(fields[0], 0, 64)
	if err != nil {
		if u, uerr := strconv.ParseUint(fields[0], 0, 64); uerr == nil {
			v = int64(u) // mmap addresses above 2^63
		} else {
			return call{}, fmt.Errorf("%s: return value %q: %w", c.name, clip(fields[0]), err)
		}
	}
	c.ret = v
	if v == -1 && len(fields) > 1 {
		e, ok := errnoByName()[fields[1]]
		if !ok {
			return call{}, fmt.Errorf("%s: unknown errno %q", c.name, clip(fields[1]))
		}
		c.errno = e
	}
	return c, nil
}

// splitArgs splits the arguments starting at s[i] (just after '(') at
// top-level commas, honouring quoted strings, {}, [] and () nesting, and
// returns them with the index just after the closing ')'.
func splitArgs(s string, i int) ([]string, int, error) {
	var args []string
	depth := 0
	start := i
	for ; i < len(s); i++ {
		switch s[i] {
		case '"':
			j, err := skipString(s, i)
			if err != nil {
				return nil, 0, err
			}
			i = j - 1
		case '{', '[', '(':
			depth++
		case '}', ']':
			depth--
		case ')':
			if depth == 0 {
				if a := strings.TrimSpace(s[start:i]); a != "" || len(args) > 0 {
					args = append(args, a)
				}
				return args, i + 1, nil
			}
			depth--
		case ',':
			if depth == 0 {
				args = append(args, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
		if depth < 0 {
			return nil, 0, fmt.Errorf("unbalanced brackets in %q", clip(s))
		}
	}
	return nil, 0, fmt.Errorf("no closing parenthesis in %q", clip(s))
}

// skipString returns the index just after the string literal at s[i].
func skipString(s string, i int) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string in %q", clip(s))
}

// unquote decodes an strace string argument: "..." with C escapes
// (\n, \t, \\, \", \ooo, \xhh), possibly followed by "..." when strace
// truncated it. ok is false for anything else (NULL, an address).
func unquote(a string) (string, bool) {
	a = strings.TrimSuffix(a, "...")
	if len(a) < 2 || a[0] != '"' || a[len(a)-1] != '"' {
		return "", false
	}
	a = a[1 : len(a)-1]
	if !strings.Contains(a, `\`) {
		return a, true
	}
	var b strings.Builder
	for i := 0; i < len(a); i++ {
		if a[i] != '\\' || i+1 >= len(a) {
			b.WriteByte(a[i])
			continue
		}
		i++
		switch c := a[i]; c {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'v':
			b.WriteByte('\v')
		case 'f':
			b.WriteByte('\f')
		case 'x':
			if i+2 < len(a) {
				if v, err := strconv.ParseUint(a[i+1:i+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 2
					continue
				}
			}
			return "", false
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(a) && j < i+3 && a[j] >= '0' && a[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(a[i:j], 8, 16)
			if v > 255 {
				return "", false
			}
			b.WriteByte(byte(v))
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// number reads an integer argument; strace may decorate a descriptor as
// "3</path>" (-y), so only the leading digits count.
func number(a string) (int64, bool) {
	end := 0
	if end < len(a) && a[end] == '-' {
		end++
	}
	for end < len(a) && (a[end] >= '0' && a[end] <= '9' || a[end] == 'x' || a[end] >= 'a' && a[end] <= 'f') {
		end++
	}
	v, err := strconv.ParseInt(a[:end], 0, 64)
	return v, err == nil
}

// flagBits turns "O_RDONLY|O_CLOEXEC" or "AT_SYMLINK_NOFOLLOW" or a
// number into bits; unknown names add nothing.
func flagBits(a string) int {
	if v, ok := number(a); ok && !strings.ContainsAny(a, "|_") {
		return int(v)
	}
	bits := 0
	for _, name := range strings.Split(a, "|") {
		name = strings.TrimSpace(name)
		if v, ok := flagValues[name]; ok {
			bits |= v
		} else if v, ok := number(name); ok {
			bits |= int(v)
		}
	}
	return bits
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func (c call) arg(i int) string {
	if i < len(c.args) {
		return c.args[i]
	}
	return ""
}
