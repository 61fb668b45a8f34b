package launch

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/testkit"

	"github.com/hpc-copper/copper/book"
	"github.com/hpc-copper/copper/bootstrap"
	"github.com/hpc-copper/copper/tree"
)

// writeFacilityBook writes n entries "x1000c0s{i}b0n0.hsn.example.gov 10.0.0.{i}:7000".
func writeFacilityBook(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# facility book\n")
	for i := range n {
		fmt.Fprintf(&b, "x1000c0s%db0n0.hsn.example.gov 10.0.%d.%d:7000\n", i, i/250, i%250)
	}
	p := filepath.Join(t.TempDir(), "facility.book")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o644))
	return p
}

func TestFacilityMap(t *testing.T) {
	path := writeFacilityBook(t, 300)
	nodes := []string{"x1000c0s7b0n0", "x1000c0s3b0n0.hsn.example.gov", "x1000c0s260b0n0"}
	got, err := facilityMap(path, nodes, 3)
	require.NoError(t, err)
	assert.Equal(t, []tree.Entry{
		{Host: "x1000c0s7b0n0.hsn.example.gov", Endpoint: "10.0.0.7:7000"},
		{Host: "x1000c0s3b0n0.hsn.example.gov", Endpoint: "10.0.0.3:7000"},
		{Host: "x1000c0s260b0n0.hsn.example.gov", Endpoint: "10.0.1.10:7000"},
	}, got, "allocation order, not book order")
}

func TestFacilityMapErrors(t *testing.T) {
	path := writeFacilityBook(t, 10)
	tests := []struct {
		name    string
		path    string
		nodes   []string
		size    int
		wantErr []string
	}{
		{"no book configured", "", []string{"a"}, 1, []string{"address_book is empty", "-F"}},
		{"missing hosts named", path, []string{"x1000c0s1b0n0", "ghost1", "ghost2"}, 3,
			[]string{path, "2 of 3 allocation hosts", "ghost1, ghost2"}},
		{"more ranks than nodes", path, []string{"x1000c0s1b0n0", "x1000c0s2b0n0"}, 3,
			[]string{"2 nodes but the job has 3 ranks"}},
		{"unreadable book", filepath.Join(t.TempDir(), "absent"), []string{"a"}, 1, []string{"absent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := facilityMap(tt.path, tt.nodes, tt.size)
			require.Error(t, err)
			for _, s := range tt.wantErr {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestPreparedMap(t *testing.T) {
	path := writeFacilityBook(t, 4)
	got, err := preparedMap(path, 4)
	require.NoError(t, err)
	assert.Len(t, got, 4)
	assert.Equal(t, "x1000c0s2b0n0.hsn.example.gov", got[2].Host)

	_, err = preparedMap(path, 5)
	require.ErrorContains(t, err, "has 4 entries but the job has 5 ranks")
	_, err = preparedMap("", 1)
	require.ErrorContains(t, err, "address_book is empty")
}

func TestCheckOwnEntry(t *testing.T) {
	entries := []tree.Entry{
		{Host: "n0.example.gov", Endpoint: "10.0.0.1:1"},
		{Host: "n1", Endpoint: "10.0.0.2:1"},
		{Host: "10.9.9.9", Endpoint: "10.9.9.9:1"},
	}
	mine := func() []net.IP { return []net.IP{net.ParseIP("10.9.9.9")} }
	tests := []struct {
		rank    int
		host    string
		wantErr string
	}{
		{0, "n0", ""},
		{0, "n0.other.domain", ""},
		{1, "n1.example.gov", ""},
		{2, "whatever", ""}, // an IP entry matches this host's addresses
		{0, "n1", "rank 0 runs on host n1 but the address map gives rank 0 to n0.example.gov"},
		{1, "n10", "gives rank 1 to n1"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d-%s", tt.rank, tt.host), func(t *testing.T) {
			err := checkOwnEntry(entries, tt.rank, tt.host, mine)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
	err := checkOwnEntry(entries, 2, "n2", func() []net.IP { return nil })
	require.ErrorContains(t, err, "gives rank 2 to 10.9.9.9")
}

func TestBookToken(t *testing.T) {
	dir := t.TempDir()
	bookPath := filepath.Join(dir, "job.book")

	_, ok, err := bookToken(bookPath)
	require.NoError(t, err)
	assert.False(t, ok, "no token file: the peer token derived from key_file is used")

	require.NoError(t, os.WriteFile(bookPath+".token", []byte("0123456789abcdef0123\n"), 0o600))
	path, ok, err := bookToken(bookPath)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, bookPath+".token", path)

	require.NoError(t, os.Chmod(bookPath+".token", 0o644))
	_, _, err = bookToken(bookPath)
	require.ErrorContains(t, err, "has mode 0644: others may read it")

	require.NoError(t, os.WriteFile(bookPath+".token", []byte("short"), 0o600))
	require.NoError(t, os.Chmod(bookPath+".token", 0o600))
	_, _, err = bookToken(bookPath)
	require.ErrorContains(t, err, "shorter than 16 bytes")
}

func TestWriteRecords(t *testing.T) {
	jobDir := filepath.Join(t.TempDir(), "job1")
	require.NoError(t, makeJobDir(jobDir))
	for _, sub := range []string{"logs", "tables", "profiling"} {
		assert.DirExists(t, filepath.Join(jobDir, sub))
	}
	entries := []tree.Entry{{Host: "a", Endpoint: "127.0.0.1:1"}, {Host: "a", Endpoint: "127.0.0.1:2"}, {Host: "b", Endpoint: "127.0.0.1:3"}}
	seen := []bootstrap.Hello{
		{Rank: 0, Size: 3, Host: "a", Endpoint: "127.0.0.1:1", Interfaces: []string{"eth0=10.0.0.1"}, JobID: "j"},
		{Rank: 1, Size: 3, Host: "a", Endpoint: "127.0.0.1:2"},
		{Rank: 2, Size: 3, Host: "b", Endpoint: "127.0.0.1:3"},
	}
	require.NoError(t, writeRecords(jobDir, entries, provenance{jobID: "j", source: "discover", detail: []string{"all-gather at x"}, seen: seen}))

	got, err := book.Read(filepath.Join(jobDir, "logs", BookFile))
	require.NoError(t, err)
	assert.Equal(t, entries, got)
	prov, err := os.ReadFile(filepath.Join(jobDir, "logs", ProvenanceFile))
	require.NoError(t, err)
	assert.Contains(t, string(prov), "job j, 3 ranks, source discover")
	assert.Contains(t, string(prov), "# all-gather at x")
	assert.Contains(t, string(prov), "0 a 127.0.0.1:1 j eth0=10.0.0.1\n")
	assert.Contains(t, string(prov), "1 a 127.0.0.1:2 - -\n")
	nodes, err := os.ReadFile(filepath.Join(jobDir, "logs", NodeFile))
	require.NoError(t, err)
	assert.Equal(t, "a\nb\n", string(nodes), "without a node list: the book's hosts, once each")

	require.NoError(t, writeRecords(jobDir, entries, provenance{jobID: "j", source: "facility", nodes: []string{"b", "a"}}))
	nodes, err = os.ReadFile(filepath.Join(jobDir, "logs", NodeFile))
	require.NoError(t, err)
	assert.Equal(t, "b\na\n", string(nodes))
	prov, err = os.ReadFile(filepath.Join(jobDir, "logs", ProvenanceFile))
	require.NoError(t, err)
	assert.Contains(t, string(prov), "2 b 127.0.0.1:3\n")
}

func TestWritePrivate(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	entries := []tree.Entry{{Host: "a", Endpoint: "127.0.0.1:1"}}
	files, err := writePrivate("job7", 3, entries, []byte("abcdef0123456789abcdef"))
	require.NoError(t, err)
	pid := strconv.Itoa(os.Getpid())
	assert.Equal(t, "job7-rank3-"+pid+".book", filepath.Base(files.Book), "named for the launch that wrote it")
	assert.Equal(t, "job7-rank3-"+pid+".token", filepath.Base(files.Token))
	other := privatePaths(filepath.Dir(files.Book), "job7", 3, os.Getpid()+1)
	assert.NotEqual(t, files.Book, other.Book, "another launch of the same job and rank gets other names")
	assert.NotEqual(t, files.Token, other.Token)
	fi, err := os.Stat(files.Token)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(files.Token))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	got, err := book.Read(files.Book)
	require.NoError(t, err)
	assert.Equal(t, entries, got)

	files.Remove()
	assert.NoFileExists(t, files.Book)
	assert.NoFileExists(t, files.Token)

	files, err = writePrivate("job7", 4, entries, nil)
	require.NoError(t, err)
	assert.Empty(t, files.Token, "no token: no file")
}

// TestWritePrivateRefusesAPreparedRuntimeDir: the token is a secret and
// the book says which parent a node trusts; neither may go into a
// runtime directory someone else could have made or can write.
func TestWritePrivateRefusesAPreparedRuntimeDir(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	require.NoError(t, os.Mkdir(filepath.Join(xdg, "copper"), 0o777))
	require.NoError(t, os.Chmod(filepath.Join(xdg, "copper"), 0o777))
	entries := []tree.Entry{{Host: "a", Endpoint: "127.0.0.1:1"}}
	_, err := writePrivate("job7", 3, entries, []byte("abcdef0123456789abcdef"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "writable by group or others")
	left, err := os.ReadDir(filepath.Join(xdg, "copper"))
	require.NoError(t, err)
	assert.Empty(t, left, "no book or token written there")
}

// TestMakeJobDirRefusesADirectoryAnotherUserMadeFirst: log_dir under a
// shared sticky directory (the local site's /tmp/copper-$USER/logs) can
// be created first by another user, who would then read the job's logs
// and records or swap in links.
func TestMakeJobDirRefusesADirectoryAnotherUserMadeFirst(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another uid")
	}
	shared, taken := testkit.ForeignDirInSharedTmp(t, t.TempDir(), "copper-user")
	jobDir := filepath.Join(taken, "logs", "job7")
	err := makeJobDir(jobDir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "job directory "+jobDir)
	assert.Contains(t, err.Error(), "belongs to uid 2000")
	require.NoError(t, makeJobDir(filepath.Join(shared, "mine", "job7")), "a directory of ours in the same place is fine")
}

// TestMakeJobDirIsPrivate: the logs and profiles name every path the job
// read; a job directory copper makes is its user's alone, one that exists
// keeps its mode (the user chose it).
func TestMakeJobDirIsPrivate(t *testing.T) {
	logDir := filepath.Join(t.TempDir(), "logs")
	jobDir := filepath.Join(logDir, "job7")
	require.NoError(t, makeJobDir(jobDir))
	fi, err := os.Stat(jobDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.NoError(t, os.Chmod(jobDir, 0o750))
	require.NoError(t, makeJobDir(jobDir))
	fi, err = os.Stat(jobDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o750), fi.Mode().Perm(), "an existing job directory keeps its mode")
	for _, sub := range []string{"logs", "tables", "profiling"} {
		assert.DirExists(t, filepath.Join(jobDir, sub))
	}
}
