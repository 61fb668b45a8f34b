package rank

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hpc-copper/copper/tree"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nodefile")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestReadNodefile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"one per line", "a\nb\nc\n", []string{"a", "b", "c"}},
		{"repeats collapse, order kept", "b\nb\na\nb\na\nc", []string{"b", "a", "c"}},
		{"blanks and comments", "# job 42\n\n  a  \n\t\n#b\nc\r\n", []string{"a", "c"}},
		{"fqdn kept", "x4000c0s0b0n0.hostmgmt2000.cm.aurora.alcf.anl.gov\n",
			[]string{"x4000c0s0b0n0.hostmgmt2000.cm.aurora.alcf.anl.gov"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadNodefile(writeFile(t, tt.content))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReadNodefileErrors(t *testing.T) {
	p := writeFile(t, "a\nb c\n")
	_, err := ReadNodefile(p)
	require.ErrorContains(t, err, p+":2")

	p = writeFile(t, "# nothing\n\n")
	_, err = ReadNodefile(p)
	require.ErrorContains(t, err, p+": no hosts")

	missing := filepath.Join(t.TempDir(), "absent")
	_, err = ReadNodefile(missing)
	require.ErrorContains(t, err, missing)
}

func TestNodesFromEnv(t *testing.T) {
	pbs := writeFile(t, "p1\np1\np2\n")
	explicit := writeFile(t, "e1\ne2\n")
	tests := []struct {
		name     string
		env      map[string]string
		nodefile string
		want     []string
		source   string
	}{
		{"explicit file wins", map[string]string{"PBS_NODEFILE": pbs, "SLURM_JOB_NODELIST": "s[1-2]"}, explicit,
			[]string{"e1", "e2"}, "node file " + explicit},
		{"pbs", map[string]string{"PBS_NODEFILE": pbs, "SLURM_JOB_NODELIST": "s[1-2]"}, "",
			[]string{"p1", "p2"}, "PBS_NODEFILE=" + pbs},
		{"slurm step", map[string]string{"SLURM_STEP_NODELIST": "s[2-3]", "SLURM_JOB_NODELIST": "s[1-4]"}, "",
			[]string{"s2", "s3"}, "SLURM_STEP_NODELIST"},
		{"slurm job", map[string]string{"SLURM_JOB_NODELIST": "s[1-2],s1", "SLURM_NODELIST": "z"}, "",
			[]string{"s1", "s2"}, "SLURM_JOB_NODELIST"},
		{"slurm old", map[string]string{"SLURM_NODELIST": "z[9-10]"}, "",
			[]string{"z9", "z10"}, "SLURM_NODELIST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, source, err := NodesFromEnv(env(tt.env), tt.nodefile)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.source, source)
		})
	}
}

func TestNodesFromEnvErrors(t *testing.T) {
	_, _, err := NodesFromEnv(env(nil), "")
	require.ErrorContains(t, err, "PBS_NODEFILE, SLURM_STEP_NODELIST, SLURM_JOB_NODELIST, SLURM_NODELIST")

	_, _, err = NodesFromEnv(env(map[string]string{"SLURM_JOB_NODELIST": "n[2-1]"}), "")
	require.ErrorContains(t, err, "SLURM_JOB_NODELIST")
	require.ErrorContains(t, err, "2-1")

	missing := filepath.Join(t.TempDir(), "absent")
	_, _, err = NodesFromEnv(env(map[string]string{"PBS_NODEFILE": missing}), "")
	require.ErrorContains(t, err, missing)
}

func TestShortHost(t *testing.T) {
	tests := map[string]string{
		"x4000c0s0b0n0.hostmgmt2000.cm.aurora.alcf.anl.gov": "x4000c0s0b0n0",
		"frontier00001":   "frontier00001",
		"a.b":             "a",
		"10.1.2.3":        "10.1.2.3",
		"fe80::1":         "fe80::1",
		".weird":          ".weird",
		"":                "",
		"login1.frontier": "login1",
	}
	for in, want := range tests {
		assert.Equal(t, want, ShortHost(in), in)
	}
}

func TestJobID(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"pbs", map[string]string{"PBS_JOBID": "1234567.aurora-pbs-0001.hostmgmt.cm.aurora.alcf.anl.gov",
			"SLURM_JOB_ID": "9"}, "1234567"},
		{"pbs without server", map[string]string{"PBS_JOBID": "77"}, "77"},
		{"slurm", map[string]string{"SLURM_JOB_ID": "2500001", "COPPER_JOB_ID": "c"}, "2500001"},
		{"copper", map[string]string{"COPPER_JOB_ID": "manual-1"}, "manual-1"},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, JobID(env(tt.env)))
		})
	}
}

// facilityBook is n lines "x1000c0s{i}b0n0.hsn.example.gov 10.0.{i/250}.{i%250}:7000".
func facilityBook(n int) []tree.Entry {
	book := make([]tree.Entry, n)
	for i := range book {
		book[i] = tree.Entry{
			Host:     fmt.Sprintf("x1000c0s%db0n0.hsn.example.gov", i),
			Endpoint: fmt.Sprintf("10.0.%d.%d:7000", i/250, i%250),
		}
	}
	return book
}

// allocation picks n short names from the book, in a scrambled order.
func allocation(n, bookSize int) []string {
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("x1000c0s%db0n0", (i*7919+13)%bookSize)
	}
	return hosts
}

func TestFilterBook(t *testing.T) {
	book := facilityBook(10000)
	hosts := allocation(512, len(book))
	got, err := FilterBook(book, hosts)
	require.NoError(t, err)
	require.Len(t, got, len(hosts))
	for r, h := range hosts {
		assert.Equal(t, h, ShortHost(got[r].Host), "rank %d", r)
		var i int
		_, err := fmt.Sscanf(h, "x1000c0s%db0n0", &i)
		require.NoError(t, err)
		assert.Equal(t, book[i], got[r], "rank %d", r)
	}
}

func TestFilterBookMatching(t *testing.T) {
	book := []tree.Entry{{Host: "a.example", Endpoint: "1:1"}, {Host: "b", Endpoint: "2:2"}, {Host: "c.example", Endpoint: "3:3"}}
	got, err := FilterBook(book, []string{"c", "b.x.y", "a.example"})
	require.NoError(t, err)
	assert.Equal(t, []tree.Entry{book[2], book[1], book[0]}, got)
}

func TestFilterBookErrors(t *testing.T) {
	book := facilityBook(100)
	hosts := []string{"x1000c0s5b0n0", "zeta", "x1000c0s999b0n0", "alpha"}
	_, err := FilterBook(book, hosts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "3 of 4 allocation hosts")
	assert.Contains(t, err.Error(), "alpha, x1000c0s999b0n0, zeta")

	_, err = FilterBook(book, []string{"x1000c0s5b0n0", "x1000c0s5b0n0.hsn"})
	require.ErrorContains(t, err, "x1000c0s5b0n0 twice")

	dupBook := slices.Concat(book, []tree.Entry{{Host: "x1000c0s5b0n0", Endpoint: "9.9.9.9:1"}})
	_, err = FilterBook(dupBook, []string{"x1000c0s5b0n0"})
	require.ErrorContains(t, err, "entries 6")
	require.ErrorContains(t, err, "and 101")

	// A duplicate the allocation does not use is harmless.
	got, err := FilterBook(dupBook, []string{"x1000c0s6b0n0"})
	require.NoError(t, err)
	assert.Equal(t, []tree.Entry{book[6]}, got)
}

func BenchmarkFilterBook(b *testing.B) {
	book := facilityBook(10000)
	hosts := allocation(512, len(book))
	for b.Loop() {
		if _, err := FilterBook(book, hosts); err != nil {
			b.Fatal(err)
		}
	}
}
