package book

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/tree"
)

func TestParseGood(t *testing.T) {
	tests := []struct {
		name, in string
		want     []tree.Entry
	}{
		{"one line", "n0 10.0.0.1:7000\n", []tree.Entry{ent("n0", "10.0.0.1:7000")}},
		{"no final newline", "n0 n0:1", []tree.Entry{ent("n0", "n0:1")}},
		{
			"comments, blanks, tabs, CRLF",
			"# facility book\n\n  n0\t n0.hsn.example:7000  \r\n#n9 n9:1\nn1 n1:7000 # spare\r\n\t\n",
			[]tree.Entry{ent("n0", "n0.hsn.example:7000"), ent("n1", "n1:7000")},
		},
		{
			"IPv6, zone, trailing-dot FQDN, underscore, port bounds",
			"a [::1]:1\nb [fe80::1%eth0]:65535\nc c.example.:80\nd x_1-2:443\n",
			[]tree.Entry{ent("a", "[::1]:1"), ent("b", "[fe80::1%eth0]:65535"), ent("c", "c.example.:80"), ent("d", "x_1-2:443")},
		},
		{
			"repeated host on different ports",
			"localhost 127.0.0.1:7001\nlocalhost 127.0.0.1:7002\n",
			[]tree.Entry{ent("localhost", "127.0.0.1:7001"), ent("localhost", "127.0.0.1:7002")},
		},
		{"byte order mark", "\uFEFFn0 n0:1\n", []tree.Entry{ent("n0", "n0:1")}},
		{"unicode host name", "nœud-1 n1:1\n", []tree.Entry{ent("nœud-1", "n1:1")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in), "facility.book")
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.NoError(t, tree.ValidateBook(got))
		})
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name, in string
		line     int    // 0: the error concerns the whole book
		want     string // substring of the message after "name:line: "
	}{
		{"empty file", "", 0, "no entries"},
		{"only comments", "# nothing\n\n   # here\n", 0, "no entries"},
		{"missing endpoint", "n0 n0:1\nn1\n", 2, `host "n1" has no endpoint`},
		{"missing endpoint before comment", "n0 # n0:1\n", 1, "no endpoint"},
		{"third field", "\nn0 n0:1 extra\n", 2, `third field "extra"`},
		{"no port", "n0 n0:1\n\nn1 n1\n", 3, "missing port"},
		{"empty port", "n0 n0:\n", 1, `port ""`},
		{"port zero", "n0 n0:0\n", 1, `port "0"`},
		{"port too large", "n0 n0:65536\n", 1, `port "65536"`},
		{"port leading zero", "n0 n0:080\n", 1, `port "080"`},
		{"port sign", "n0 n0:+80\n", 1, `port "+80"`},
		{"port name", "n0 n0:http\n", 1, `port "http"`},
		{"empty endpoint host", "n0 :80\n", 1, "empty host"},
		{"unbracketed IPv6", "n0 ::1:80\n", 1, "too many colons"},
		{"IPv4 in brackets", "n0 [10.0.0.1]:80\n", 1, "not an IPv6 address"},
		{"name in brackets", "n0 [n0]:80\n", 1, "not an IPv6 address"},
		{"bad hostname char", "n0 n0/x:80\n", 1, `contains '/'`},
		{"empty label", "n0 a..b:80\n", 1, "empty or over-long label"},
		{"Copper 1.0 Mercury endpoint", "x1000c0s0b0n0 ofi+cxi://0x00916600\n", 1, "Copper 1.0"},
		{"duplicate endpoint", "n0 h:1\n# c\nn1 h:2\nn2 h:1\n", 4, `"h:1" already listed on line 1`},
		{"control character in host", "n\x010 n0:1\n", 1, "contains"},
		{"invalid UTF-8 host", "n\xff n0:1\n", 1, "UTF-8"},
		{"line too long", "n0 n0:1\n" + strings.Repeat("x", maxLineBytes+1) + "\n", 2, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in), "site/facility.book")
			require.Error(t, err)
			assert.Nil(t, got)
			var be *Error
			require.ErrorAs(t, err, &be)
			assert.Equal(t, "site/facility.book", be.Name)
			assert.Equal(t, tc.line, be.Line, "line of %v", err)
			prefix := "site/facility.book: "
			if tc.line > 0 {
				prefix = "site/facility.book:" + strconv.Itoa(tc.line) + ": "
			}
			assert.True(t, strings.HasPrefix(err.Error(), prefix), "%q lacks prefix %q", err, prefix)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseEmptyIsErrEmpty(t *testing.T) {
	_, err := Parse(strings.NewReader("\n# none\n"), "b")
	assert.ErrorIs(t, err, ErrEmpty)
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestParseReaderError(t *testing.T) {
	boom := errors.New("device gone")
	_, err := Parse(failingReader{boom}, "b")
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "b:1: ")
}

func TestFormat(t *testing.T) {
	assert.Empty(t, Format(nil))
	assert.Equal(t, "n0 n0:1\nn1 [::1]:2\n",
		string(Format([]tree.Entry{ent("n0", "n0:1"), ent("n1", "[::1]:2")})))
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "copper_address_book.txt")
	entries := []tree.Entry{
		ent("x1000c0s0b0n0", "10.1.0.1:7000"),
		ent("x1000c0s0b0n1", "[fd00::2]:7000"),
		ent("x1000c0s0b1n0", "x1000c0s0b1n0.hsn:7000"),
	}
	require.NoError(t, Write(path, entries))

	got, err := Read(path)
	require.NoError(t, err)
	assert.Equal(t, entries, got)

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())
	assertOnlyFiles(t, dir, "copper_address_book.txt")

	// Overwriting replaces the whole book.
	require.NoError(t, Write(path, entries[:1]))
	got, err = Read(path)
	require.NoError(t, err)
	assert.Equal(t, entries[:1], got)
	assertOnlyFiles(t, dir, "copper_address_book.txt")
}

func TestWriteFailureLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	// A directory where the book should go: the temp file is written and
	// synced, then the rename onto the directory fails.
	target := filepath.Join(dir, "book")
	require.NoError(t, os.Mkdir(target, 0o755))

	err := Write(target, []tree.Entry{ent("n0", "n0:1")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), target)
	assertOnlyFiles(t, dir, "book")
}

func TestWriteRefusesWhatParseWouldReject(t *testing.T) {
	tests := []struct {
		name    string
		entries []tree.Entry
		want    string
	}{
		{"empty book", nil, "empty"},
		{"space in host", []tree.Entry{ent("n 0", "n0:1")}, "rank 0"},
		{"hash in host", []tree.Entry{ent("n0", "n0:1"), ent("n#1", "n1:1")}, "rank 1"},
		{"bad endpoint", []tree.Entry{ent("n0", "n0")}, "missing port"},
		{"duplicate endpoint", []tree.Entry{ent("a", "n0:1"), ent("b", "n0:1")}, "share endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "book")
			err := Write(path, tc.entries)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), path)
			assertOnlyFiles(t, dir)
		})
	}
}

func TestReadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.book")
	_, err := Read(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), path)
}

func TestReadNamesFileInErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.book")
	require.NoError(t, os.WriteFile(path, []byte("n0 n0:1\nn1\n"), 0o644))
	_, err := Read(path)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), path+":2: "), "%v", err)
}

// ent builds an entry; keyed literals of tree.Entry would drown the tables.
func ent(host, endpoint string) tree.Entry { return tree.Entry{Host: host, Endpoint: endpoint} }

func assertOnlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, want, names)
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"n0 10.0.0.1:7000\n",
		"# c\n\nn0 n0:1 # x\r\nn1 [fe80::1%eth0]:65535\n",
		"n0 [::1]:80\nn1 [::1]:80\n",
		"n0\n",
		"n0 n0:1 extra\n",
		"n0 n0:080\n",
		"\uFEFFn0 a.b.:1\n",
		"x ofi+cxi://0x00916600\n",
		"n\x00 n:1\n",
		"a\u00a0b c:1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(bytes.NewReader(data), "fuzz")
		if err != nil {
			var be *Error
			require.ErrorAs(t, err, &be)
			require.Nil(t, entries)
			return
		}
		// Whatever Parse accepts, Write accepts and Format → Parse keeps.
		require.NoError(t, checkEntries(entries))
		again, err := Parse(bytes.NewReader(Format(entries)), "formatted")
		require.NoError(t, err)
		require.Equal(t, entries, again)
	})
}
