package pfsbench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLargeFullSection(t *testing.T) {
	started := time.Date(2026, 12, 7, 3, 40, 0, 0, time.UTC)
	withRun := func(res *Results) *Results {
		res.Started, res.Machine.Commit, res.Command, res.Elapsed = started, "abc1234", "pfsbench --full --workloads large", 512
		res.Machine.MemGiB = 24
		return res
	}
	issueSize := withRun(largeFixture())
	issueSize.Large.Nodes, issueSize.Large.FileBytes = IssueLargeNodes, IssueLargeBytes
	failed := withRun(largeFixture())
	failed.Large.Error = "copper: 32 readers not done after 10m0s"

	for _, tc := range []struct {
		name    string
		res     *Results
		note    string
		want    []string
		notWant []string
	}{
		{
			name: "issue size", res: issueSize,
			want: []string{
				"This run: 32 nodes × 1024 MiB, the issue's size.\n",
				"| large file: backend bytes / file size | ",
				// the fixture's passes are 4 nodes: copper-node CPU 3.1 s over 4
				"| machine | copper | 4 | 2.50 | 0.225 | 0.775 | 0.40 |",
				"worst RSS rank 2, 140.0 MiB of its 128 MiB limit",
				"most spill rank 2, 270.0 MiB of its 260 MiB budget",
				"all 3 spill directories together 0.76 GiB, bounded by the budgets' sum 0.76 GiB",
				"| large file: every node maps and dlopens a large .so: backend bytes / library size | 1.00× (117308864 of 117308864 bytes of libLLVM-15.so.1, 4 nodes) | backend bytes read = 1.00× the library | met |",
				"dlopened `libLLVM-15.so.1` (111.9 MiB",
				"### Large files through the tree (issue #10)",
				// 32 × 2 × 1 GiB through 24 GiB of memory
				"The cold pass put 64 GiB through this host's page cache",
			},
			notWant: []string{"not the issue's"},
		},
		{
			name: "more than memory through the page cache", res: func() *Results {
				res := withRun(largeFixture())
				res.Machine.MemGiB = 1 // 4 nodes × 2 × 256 MiB = 2 GiB
				return res
			}(),
			want: []string{"The cold pass put 2 GiB through this host's page cache (4 mounts' copies of the file and 4 spill directories' chunk files) against its 1 GiB of memory"},
		},
		{
			name: "smaller, with why", res: withRun(largeFixture()), note: "Asked for 1024 MiB: /tmp had 9000 MiB free.",
			want:    []string{"This run: 4 nodes × 256 MiB, not the issue's 32 × 1024 MiB. Asked for 1024 MiB: /tmp had 9000 MiB free.\n"},
			notWant: []string{"through this host's page cache"}, // 2 GiB in 24
		},
		{
			name: "failed", res: failed,
			want:    []string{"| large file: backend bytes / file size | failed: copper: 32 readers not done after 10m0s", "The large-file workload failed: copper: 32 readers"},
			notWant: []string{"CPU per node", "worst RSS"},
		},
		{
			name: "not run", res: withRun(&Results{}),
			want:    []string{"The large-file workload was not run.\n"},
			notWant: []string{"| measurement |"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := LargeFullSection(tc.res, tc.note)
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			assert.Equal(t, LargeFullBegin+" run=2026-12-07T03:40Z commit=abc1234 -->", lines[0], "the begin marker carries date and commit")
			assert.Equal(t, "## Large files at the issue's size (issue #10)", lines[1])
			assert.Equal(t, LargeFullEnd, lines[len(lines)-1])
			assert.Equal(t, 1, strings.Count(got, LargeFullBegin), "one section")
			assert.Contains(t, got, "from `pfsbench --full --workloads large`, 2026-12-07 03:40 UTC, commit `abc1234`, in 512 s")
			for _, w := range tc.want {
				assert.Contains(t, got, w)
			}
			for _, w := range tc.notWant {
				assert.NotContains(t, got, w)
			}
		})
	}
}

func TestLoadResults(t *testing.T) {
	dir := t.TempDir()
	res := largeFixture()
	res.Machine.Commit = "abc1234"
	require.NoError(t, res.writeJSON(dir))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644))

	for _, tc := range []struct {
		name, file, err string
	}{
		{"written by a run", "results.json", ""},
		{"missing", "none.json", "none.json: no such file"},
		{"not JSON", "bad.json", "bad.json: unexpected end of JSON input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadResults(filepath.Join(dir, tc.file))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, LargeFullSection(res, ""), LargeFullSection(got, ""), "the section from results.json is the run's own")
		})
	}
}
