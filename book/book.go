// Package book reads and writes address books: one "hostname endpoint"
// line per node, the node's rank being its line's position among the
// entries. The format is Copper 1.0's facility book, with endpoints
// restricted to the host:port that copper's TCP transport dials.
package book

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/tree"
)

// ErrEmpty is wrapped by the error for a book with no entries.
var ErrEmpty = errors.New("no entries")

// maxLineBytes bounds one line; real lines are well under 300 bytes, so a
// longer one means the file is not an address book.
const maxLineBytes = 64 << 10

// Error is a problem in a named book, at a line (1-based) or, with Line 0,
// in the book as a whole.
type Error struct {
	Name string
	Line int
	Err  error
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Parse reads a book from r; name (usually the file path) prefixes every
// error as name:line. Blank lines are skipped and '#' starts a comment that
// runs to the end of the line. A book must hold at least one entry and no
// endpoint twice.
func Parse(r io.Reader, name string) ([]tree.Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	var entries []tree.Entry
	firstLine := make(map[string]int) // endpoint → line it was first listed on
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF") // editors on some sites add a BOM
		}
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		switch len(fields) {
		case 0:
			continue
		case 1:
			return nil, &Error{name, line, fmt.Errorf("host %q has no endpoint", fields[0])}
		case 2:
		default:
			return nil, &Error{name, line, fmt.Errorf("unexpected third field %q (want: hostname endpoint)", fields[2])}
		}
		e := tree.Entry{Host: fields[0], Endpoint: fields[1]}
		if err := checkEntry(e); err != nil {
			return nil, &Error{name, line, err}
		}
		if prev, dup := firstLine[e.Endpoint]; dup {
			return nil, &Error{name, line, fmt.Errorf("endpoint %q already listed on line %d", e.Endpoint, prev)}
		}
		firstLine[e.Endpoint] = line
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes", maxLineBytes)
		}
		return nil, &Error{name, line + 1, err}
	}
	if len(entries) == 0 {
		return nil, &Error{Name: name, Err: ErrEmpty}
	}
	return entries, nil
}

// Read parses the book at path.
func Read(path string) ([]tree.Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read address book: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Format renders entries as a book, one "host endpoint" line each. It does
// not validate; Write does.
func Format(entries []tree.Entry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		b.Grow(len(e.Host) + len(e.Endpoint) + 2)
		b.WriteString(e.Host)
		b.WriteByte(' ')
		b.WriteString(e.Endpoint)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Write stores entries at path atomically: readers see the old book or the
// whole new one, never a partial file, because nodes may read the book
// while the launcher writes it. It refuses entries Parse would reject, so
// every written book reads back identically. The file gets mode 0644.
func Write(path string, entries []tree.Entry) error {
	if err := checkEntries(entries); err != nil {
		return fmt.Errorf("write address book %s: %w", path, err)
	}
	if err := osutil.WriteFile(path, Format(entries), 0o644); err != nil {
		return fmt.Errorf("address book: %w", err)
	}
	return nil
}

// checkEntries applies Parse's rules to entries built in memory.
func checkEntries(entries []tree.Entry) error {
	for rank, e := range entries {
		if err := checkEntry(e); err != nil {
			return fmt.Errorf("rank %d: %w", rank, err)
		}
	}
	return tree.ValidateBook(entries)
}

// checkEntry validates one line's fields: a printable host without
// whitespace or '#', and a host:port endpoint.
func checkEntry(e tree.Entry) error {
	if e.Host == "" {
		return errors.New("empty host")
	}
	if !utf8.ValidString(e.Host) {
		return fmt.Errorf("host %q is not valid UTF-8", e.Host)
	}
	for _, r := range e.Host {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '#' {
			return fmt.Errorf("host %q contains %q", e.Host, r)
		}
	}
	return checkEndpoint(e.Endpoint)
}

// checkEndpoint accepts IPv4:port, [IPv6]:port and hostname:port with a
// decimal port in 1..65535.
func checkEndpoint(ep string) error {
	if strings.Contains(ep, "://") {
		return fmt.Errorf("endpoint %q is a Copper 1.0 (Mercury) address; copper needs host:port", ep)
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", ep, err)
	}
	if host == "" {
		return fmt.Errorf("endpoint %q: empty host", ep)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("endpoint %q: %w", ep, err)
	}
	addr, ipErr := netip.ParseAddr(host)
	switch {
	case strings.HasPrefix(ep, "["):
		if ipErr != nil || !addr.Is6() {
			return fmt.Errorf("endpoint %q: %q in brackets is not an IPv6 address", ep, host)
		}
	case ipErr == nil:
		// IPv4; SplitHostPort already refused an unbracketed IPv6.
	default:
		if err := checkHostname(host); err != nil {
			return fmt.Errorf("endpoint %q: %w", ep, err)
		}
	}
	return nil
}

func checkPort(port string) error {
	n, err := strconv.ParseUint(port, 10, 16)
	// ParseUint takes "080"; refuse it so one port has one spelling and
	// duplicate endpoints cannot hide.
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
		return fmt.Errorf("port %q is not a decimal number in 1..65535", port)
	}
	return nil
}

// checkHostname accepts DNS-style names: dot-separated labels of letters,
// digits, '-' and '_' (some clusters use it), an optional trailing dot.
func checkHostname(h string) error {
	name := strings.TrimSuffix(h, ".")
	if len(name) > 253 {
		return fmt.Errorf("hostname %q longer than 253 bytes", h)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("hostname %q has an empty or over-long label", h)
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("hostname %q contains %q", h, c)
			}
		}
	}
	return nil
}
