package rank

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxHostlistHosts caps what one hostlist may expand to, so that a typo
// such as "n[0-999999999]" is an error rather than an out-of-memory.
const MaxHostlistHosts = 1 << 20

// maxRangeDigits keeps range bounds within uint64 arithmetic.
const maxRangeDigits = 18

// ParseHostlist expands Slurm hostlist syntax, keeping order and zero
// padding: "frontier[00001-00002,00010],login[1-2]" → frontier00001,
// frontier00002, frontier00010, login1, login2. Text after a bracket is a
// suffix ("n[1-2]-ib" → n1-ib, n2-ib) and several bracket groups in one
// name expand as their product ("r[1-2]n[1-2]" → r1n1, r1n2, r2n1, r2n2),
// as Slurm does. A range is padded to the width of its lower bound.
// Duplicates are kept; NodesFromEnv collapses them. A malformed list is an
// error naming the offending comma-separated part.
func ParseHostlist(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("rank: empty hostlist")
	}
	parts, err := splitHostlist(s)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("rank: hostlist %s: part %d is empty", quoteShort(s), i+1)
		}
		if hosts, err = expandPart(p, hosts); err != nil {
			return nil, fmt.Errorf("rank: hostlist part %q: %w", p, err)
		}
	}
	return hosts, nil
}

// splitHostlist splits at the commas outside brackets and checks that
// brackets pair up without nesting.
func splitHostlist(s string) ([]string, error) {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			if depth > 0 {
				return nil, fmt.Errorf("rank: hostlist part %q: nested '['", partFrom(s, start, i))
			}
			depth++
		case ']':
			if depth == 0 {
				return nil, fmt.Errorf("rank: hostlist part %q: ']' without '['", partFrom(s, start, i))
			}
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if depth > 0 {
		return nil, fmt.Errorf("rank: hostlist part %q: '[' is never closed", s[start:])
	}
	return append(parts, s[start:]), nil
}

// partFrom returns the text of the part starting at start, cut at the
// first comma at or after the error position i, for error messages.
func partFrom(s string, start, i int) string {
	if j := strings.IndexByte(s[i:], ','); j >= 0 {
		return s[start : i+j]
	}
	return s[start:]
}

// span is one element of a bracket group: lo..hi, printed width digits wide.
type span struct {
	lo, hi uint64
	width  int
}

// piece is a literal run of a host name, or (when lit is empty and spans
// is not) one bracket group.
type piece struct {
	lit   string
	spans []span
}

// expandPart appends the hosts of one part (no top-level commas, brackets
// balanced and flat) to out. The whole part is checked, and its size
// counted, before anything is expanded.
func expandPart(p string, out []string) ([]string, error) {
	var pieces []piece
	total := uint64(1)
	for len(p) > 0 {
		open := strings.IndexByte(p, '[')
		if open < 0 {
			open = len(p)
		}
		if open > 0 {
			if err := checkHostChars(p[:open]); err != nil {
				return nil, err
			}
			pieces = append(pieces, piece{lit: p[:open]})
		}
		if open == len(p) {
			break
		}
		end := open + strings.IndexByte(p[open:], ']')
		spans, n, err := parseGroup(p[open+1 : end])
		if err != nil {
			return nil, err
		}
		if total *= n; total > uint64(MaxHostlistHosts-len(out)) {
			return nil, fmt.Errorf("expands to more than %d hosts", MaxHostlistHosts)
		}
		pieces = append(pieces, piece{spans: spans})
		p = p[end+1:]
	}
	names := []string{""}
	for _, pc := range pieces {
		if pc.spans == nil {
			for i := range names {
				names[i] += pc.lit
			}
			continue
		}
		product := make([]string, 0, len(names)*int(countSpans(pc.spans)))
		for _, name := range names {
			for _, sp := range pc.spans {
				for v := sp.lo; ; v++ {
					product = append(product, name+padded(v, sp.width))
					if v == sp.hi {
						break
					}
				}
			}
		}
		names = product
	}
	return append(out, names...), nil
}

func countSpans(spans []span) uint64 {
	var n uint64
	for _, sp := range spans {
		n += sp.hi - sp.lo + 1
	}
	return n
}

// parseGroup parses the inside of one bracket, "1-3,07,10-11", and counts
// the numbers it stands for.
func parseGroup(g string) ([]span, uint64, error) {
	if g == "" {
		return nil, 0, fmt.Errorf("empty brackets")
	}
	var spans []span
	var n uint64
	for _, elem := range strings.Split(g, ",") {
		if elem == "" {
			return nil, 0, fmt.Errorf("empty element in [%s]", g)
		}
		loS, hiS, isRange := strings.Cut(elem, "-")
		lo, err := parseBound(loS, elem)
		if err != nil {
			return nil, 0, err
		}
		hi := lo
		if isRange {
			if hi, err = parseBound(hiS, elem); err != nil {
				return nil, 0, err
			}
			if hi < lo {
				return nil, 0, fmt.Errorf("range %s runs backwards", elem)
			}
		}
		// Bounds have at most 18 digits, so neither sum can overflow.
		if n += hi - lo + 1; n > MaxHostlistHosts {
			return nil, 0, fmt.Errorf("[%s] expands to more than %d hosts", g, MaxHostlistHosts)
		}
		spans = append(spans, span{lo: lo, hi: hi, width: len(loS)})
	}
	return spans, n, nil
}

func parseBound(s, elem string) (uint64, error) {
	if s == "" || len(s) > maxRangeDigits {
		return 0, fmt.Errorf("bad range %q: bounds must be 1 to %d digits", elem, maxRangeDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad range %q: %q is not a number", elem, s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad range %q: %w", elem, err)
	}
	return v, nil
}

func padded(v uint64, width int) string {
	s := strconv.FormatUint(v, 10)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// checkHostChars accepts the characters of DNS names and the '_' some
// sites use; anything else (spaces, quotes, control bytes) is a typo.
func checkHostChars(lit string) error {
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return fmt.Errorf("character %q is not allowed in a host name", c)
		}
	}
	return nil
}

// quoteShort quotes s for an error message, eliding the middle of long lists.
func quoteShort(s string) string {
	const max = 80
	if len(s) <= max {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:max/2]) + "..." + strconv.Quote(s[len(s)-max/2:])
}
