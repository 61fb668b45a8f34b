package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/report"
)

// copper-report on the job directory of a real 4-node run: the cluster
// totals must add up to what the nodes did, and the path report must find
// every path of the tree that the walk touched.
func TestReportOnRealRun(t *testing.T) {
	src, want := makeFixture(t)
	c := newCluster(t, clusterConfig{nodes: 4, fanout: 2, target: src,
		flags: []string{"--profile-metrics", "--profile-paths-full", "--profile-top-n", "50"}})
	c.startAll()
	for rank, got := range c.walkAll() {
		requireSameTree(t, "mount of rank "+strconv.Itoa(rank), want, got)
	}
	var rootBackend int64
	st := c.stats(0)
	for _, o := range st.Node.Ops {
		rootBackend += o.BackendOps
	}
	for rank := range 4 {
		res, err := c.stop(rank)
		require.NoError(t, err, "stop rank %d: %s", rank, res)
	}

	jobDir := filepath.Join(c.logDir, c.jobID)
	ctx := context.Background()
	agg, err := report.Aggregate(ctx, jobDir, report.AggregateOptions{})
	require.NoError(t, err)
	assert.Equal(t, 4, agg.Cluster.RanksWithAggregate)
	assert.EqualValues(t, rootBackend, agg.Cluster.Totals.BackendOps, "cluster backend ops = the root's")
	assert.NotZero(t, agg.Cluster.Totals.Forwarded)
	for _, f := range agg.Files {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		assert.NotZero(t, fi.Size(), f)
	}
	summary, err := os.ReadFile(agg.SummaryPath)
	require.NoError(t, err)
	assert.Contains(t, string(summary), "Ranks with aggregate files: 4")

	cache, err := report.Cache(ctx, jobDir, report.CacheOptions{})
	require.NoError(t, err)
	var combined report.CacheRow
	for _, r := range cache.Rows {
		if r.Table == report.TableCombined {
			combined = r
		}
	}
	assert.Equal(t, 4, len(cache.Nodes))
	assert.NotZero(t, combined.Bytes)

	paths, err := report.Paths(ctx, jobDir, report.PathsOptions{UsageRoot: src, Target: src})
	require.NoError(t, err)
	cov := paths.Coverage
	var files, dirs int
	for p, e := range want {
		if p == "/" {
			continue
		}
		if e.Type == "dir" {
			dirs++
		} else {
			files++
		}
	}
	assert.Equal(t, files, cov.Files, "files under the usage root")
	assert.Equal(t, files, cov.ObservedFiles, "the walk touched every file")
	assert.Equal(t, dirs, cov.ObservedDirs, "the walk touched every directory")
	unused, err := os.ReadFile(filepath.Join(paths.OutputDir, report.FileUnusedPaths))
	require.NoError(t, err)
	assert.Empty(t, strings.TrimSpace(string(unused)), "nothing left unobserved")
}
