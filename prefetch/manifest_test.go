package prefetch

import (
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		want     string
		wantPath bool
		wantErr  string
	}{
		{"plain", "/usr/lib/python3/os.py", "/usr/lib/python3/os.py", true, ""},
		{"root", "/", "/", true, ""},
		{"blank", "", "", false, ""},
		{"spaces only", " \t ", "", false, ""},
		{"comment", "# used paths", "", false, ""},
		{"indented comment", "   # x", "", false, ""},
		{"indented path", "  /a/b", "/a/b", true, ""},
		{"trailing spaces are part of the name", "/a/b ", "/a/b ", true, ""},
		{"crlf", "/a/b\r", "/a/b", true, ""},
		{"hash inside a path", "/a/#b", "/a/#b", true, ""},
		{"cleaned", "/a//b/./c/", "/a/b/c", true, ""},
		{"dot dot cleaned", "/a/b/../c", "/a/c", true, ""},
		{"quoted newline", strconv.Quote("/a/odd\nname.py"), "/a/odd\nname.py", true, ""},
		{"quoted with trailing blank", strconv.Quote("/a/x") + " ", "/a/x", true, ""},
		{"quoted crlf", strconv.Quote("/a/\r") + "\r", "/a/\r", true, ""},
		{"bad quote", `"/a/b`, "", true, "bad quoted path"},
		{"relative", "a/b", "", true, "not absolute"},
		{"quoted relative", `"a/b"`, "", true, "not absolute"},
		{"nul", `"/a/\x00b"`, "", true, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, isPath, err := ParseLine(tt.line)
			assert.Equal(t, tt.wantPath, isPath)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// scanAll returns every entry: paths as they are, errors as "!message".
func scanAll(t *testing.T, r io.Reader) ([]string, []int, error) {
	t.Helper()
	sc := NewScanner(r, "m.txt")
	var got []string
	var lines []int
	for sc.Scan() {
		e := sc.Entry()
		if e.Err != nil {
			got = append(got, "!"+e.Err.Error())
		} else {
			got = append(got, e.Path)
		}
		lines = append(lines, e.Line)
	}
	return got, lines, sc.Err()
}

func TestScanner(t *testing.T) {
	long := "/" + strings.Repeat("x", MaxLineBytes)
	justFits := "/" + strings.Repeat("y", MaxLineBytes-1)
	tests := []struct {
		name      string
		in        string
		want      []string
		wantLines []int
	}{
		{"empty", "", nil, nil},
		{"report format", "/t/a\n/t/a/b.py\n" + strconv.Quote("/t/a/c\nd") + "\n", []string{"/t/a", "/t/a/b.py", "/t/a/c\nd"}, []int{1, 2, 3}},
		{"comments and blanks", "# manifest\n\n/a\n  \n# /b\n/c", []string{"/a", "/c"}, []int{3, 6}},
		{"no final newline", "/a\n/b", []string{"/a", "/b"}, []int{1, 2}},
		{"crlf", "/a\r\n/b\r\n", []string{"/a", "/b"}, []int{1, 2}},
		{"bad lines are entries", "/a\nrel\n/c\n", []string{"/a", "!m.txt:2: path \"rel\" is not absolute", "/c"}, []int{1, 2, 3}},
		{"line too long is skipped", "/a\n" + long + "\n/c\n", []string{"/a", "!m.txt:2: line longer than 16448 bytes", "/c"}, []int{1, 2, 3}},
		{"line too long at the end", "/a\n" + long, []string{"/a", "!m.txt:2: line longer than 16448 bytes"}, []int{1, 2}},
		{"longest line", justFits + "\n/c", []string{justFits, "/c"}, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, lines, err := scanAll(t, strings.NewReader(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantLines, lines)
			// The same, one byte at a time: no line may depend on read sizes.
			got, lines, err = scanAll(t, iotest.OneByteReader(strings.NewReader(tt.in)))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantLines, lines)
		})
	}
}

func TestScannerReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader("/a\n/b\n"), iotest.ErrReader(boom))
	got, _, err := scanAll(t, r)
	assert.Equal(t, []string{"/a", "/b"}, got)
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "m.txt:3: read")
}

func TestViewPath(t *testing.T) {
	tests := []struct {
		target, host, want string
		ok                 bool
	}{
		{"/", "/usr/lib", "/usr/lib", true},
		{"/", "/", "/", true},
		{"/lus/env", "/lus/env", "/", true},
		{"/lus/env", "/lus/env/lib/x.py", "/lib/x.py", true},
		{"/lus/env", "/lus/envelope/x", "", false},
		{"/lus/env", "/lus", "", false},
		{"/lus/env", "/other", "", false},
	}
	for _, tt := range tests {
		got, ok := ViewPath(tt.target, tt.host)
		assert.Equal(t, tt.ok, ok, "%s in %s", tt.host, tt.target)
		assert.Equal(t, tt.want, got, "%s in %s", tt.host, tt.target)
	}
}

func TestAncestors(t *testing.T) {
	assert.Empty(t, ancestors("/"))
	assert.Equal(t, []string{"/"}, ancestors("/a"))
	assert.Equal(t, []string{"/", "/a", "/a/b"}, ancestors("/a/b/c"))
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"", "#", "/a/b", "  /a", "/a/b\r", `"/a\nb"`, `"/a`, "rel", `"\x00"`, "/a/../..", `"/\u00e9"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p, isPath, err := ParseLine(line)
		if !isPath || err != nil {
			assert.Empty(t, p)
			if !isPath {
				assert.NoError(t, err)
			}
			return
		}
		assert.True(t, filepath.IsAbs(p), "%q", p)
		assert.Equal(t, filepath.Clean(p), p)
		assert.NotContains(t, p, "\x00")
		// What report writes for a path reads back as that path.
		if !strings.ContainsAny(p, "\n\r") {
			again, ok, err := ParseLine(p)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, p, again)
		}
		again, ok, err := ParseLine(strconv.Quote(p))
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, p, again)
	})
}

func FuzzScanner(f *testing.F) {
	for _, s := range []string{"", "/a\n/b", "# c\n\n/a\r\nrel\n", "\"/x\ny\"\n", "/" + strings.Repeat("z", MaxLineBytes+3) + "\n/q"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := NewScanner(strings.NewReader(string(data)), "fuzz")
		last := 0
		for sc.Scan() {
			e := sc.Entry()
			assert.Greater(t, e.Line, last)
			last = e.Line
			if e.Err != nil {
				assert.Empty(t, e.Path)
				assert.Contains(t, e.Err.Error(), "fuzz:"+strconv.Itoa(e.Line)+":")
				continue
			}
			assert.True(t, filepath.IsAbs(e.Path))
			assert.Equal(t, filepath.Clean(e.Path), e.Path)
		}
		require.NoError(t, sc.Err())
		assert.LessOrEqual(t, last, strings.Count(string(data), "\n")+1)
	})
}
