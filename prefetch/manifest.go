package prefetch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hpc-copper/copper/op"
)

// MaxLineBytes bounds one manifest line. A Go-quoted path of PATH_MAX
// bytes, each escaped as \xNN, fits; a longer line is reported as
// invalid and skipped, so the scanner's memory stays constant.
const MaxLineBytes = 4*op.MaxPathLen + 64

// Entry is one path line of a manifest.
type Entry struct {
	Line int    // 1-based line number
	Path string // absolute, clean host path; empty when Err is set
	Err  error  // why the line is not a usable path (names file:line)
}

// ParseLine reads one manifest line (without its newline). Blank lines
// and lines whose first non-blank byte is '#' are not paths (ok false).
// A path is a host path as report writes it in used_paths_existing.txt:
// as is, or Go-quoted when the name holds a newline or other odd bytes.
// Leading blanks and a trailing '\r' (CRLF files) are dropped; trailing
// blanks are kept, since names may end in them. The path is cleaned.
func ParseLine(line string) (path string, ok bool, err error) {
	line = strings.TrimSuffix(line, "\r")
	rest := strings.TrimLeft(line, " \t")
	if rest == "" || rest[0] == '#' {
		return "", false, nil
	}
	p := rest
	if rest[0] == '"' {
		if p, err = strconv.Unquote(strings.TrimRight(rest, " \t")); err != nil {
			return "", true, fmt.Errorf("bad quoted path %s: %w", clip(rest), err)
		}
	}
	switch {
	case strings.IndexByte(p, 0) >= 0:
		return "", true, fmt.Errorf("path %s holds a NUL byte", clip(strconv.Quote(p)))
	case !filepath.IsAbs(p):
		return "", true, fmt.Errorf("path %s is not absolute", clip(strconv.Quote(p)))
	}
	return filepath.Clean(p), true, nil
}

// clip shortens text for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Scanner reads manifest entries one at a time with a fixed buffer, so a
// manifest of any length costs constant memory.
type Scanner struct {
	r     *bufio.Reader
	name  string // file name, for errors
	line  int
	entry Entry
	err   error
}

// NewScanner reads a manifest from r; name is used in errors.
func NewScanner(r io.Reader, name string) *Scanner {
	return &Scanner{r: bufio.NewReaderSize(r, MaxLineBytes+1), name: name}
}

// Scan advances to the next path line, skipping blanks and comments. It
// returns false at the end of the input or on a read error (see Err).
// A line that is not a usable path is still returned, with Entry().Err
// set, so that the caller can count it and go on.
func (s *Scanner) Scan() bool {
	for s.err == nil {
		raw, tooLong, err := s.readLine()
		if err != nil && (!errors.Is(err, io.EOF) || raw == "" && !tooLong) {
			if !errors.Is(err, io.EOF) {
				s.err = fmt.Errorf("%s:%d: read: %w", s.name, s.line+1, err)
			} else {
				s.err = io.EOF
			}
			return false
		}
		if errors.Is(err, io.EOF) {
			s.err = io.EOF // this is the last line
		}
		s.line++
		if tooLong {
			s.entry = Entry{Line: s.line, Err: fmt.Errorf("%s:%d: line longer than %d bytes", s.name, s.line, MaxLineBytes)}
			return true
		}
		path, ok, perr := ParseLine(raw)
		if !ok {
			continue
		}
		s.entry = Entry{Line: s.line, Path: path}
		if perr != nil {
			s.entry = Entry{Line: s.line, Err: fmt.Errorf("%s:%d: %w", s.name, s.line, perr)}
		}
		return true
	}
	return false
}

// readLine returns the next line without its '\n'. A line over
// MaxLineBytes is consumed to its end and reported as tooLong.
func (s *Scanner) readLine() (line string, tooLong bool, err error) {
	b, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = s.r.ReadSlice('\n')
		}
		return "", true, err
	}
	return strings.TrimSuffix(string(b), "\n"), false, err
}

// Entry is the line the last Scan found.
func (s *Scanner) Entry() Entry { return s.entry }

// Err is the read error that ended scanning, if any (nil at end of input).
func (s *Scanner) Err() error {
	if errors.Is(s.err, io.EOF) {
		return nil
	}
	return s.err
}

// ViewPath maps a host path to the view path under target (both absolute
// and clean): target itself is "/". ok is false for a path outside
// target.
func ViewPath(target, host string) (view string, ok bool) {
	if !op.Within(host, target) {
		return "", false
	}
	if target == "/" {
		return host, true
	}
	if host == target {
		return "/", true
	}
	return host[len(target):], true
}
