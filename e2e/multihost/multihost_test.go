package multihost

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/book"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/internal/testkit/hosts"
	"github.com/hpc-copper/copper/op"
)

// failoverBound bounds a cold read through a host whose parent's link is
// down: a correctness check that heartbeats and failover, not
// rpc_timeout_s (20 s here), ended the wait. It is no speed target.
const failoverBound = 15 * time.Second

// requireBook checks the job's recorded address book: one entry per host
// in rank order, each on the host's own address.
func (j *job) requireBook() {
	j.t.Helper()
	entries, err := book.Read(filepath.Join(j.logDir, j.id, "logs", "copper_address_book.txt"))
	require.NoError(j.t, err)
	require.Len(j.t, entries, len(j.nw.Hosts))
	for i, e := range entries {
		h := j.nw.Hosts[i]
		assert.Equal(j.t, h.Hostname, e.Host, "rank %d's host", i)
		ip, _, err := net.SplitHostPort(e.Endpoint)
		require.NoError(j.t, err)
		assert.Equal(j.t, h.IP.String(), ip, "rank %d (%s) listens on its %s address", i, h.Hostname, hosts.Iface)
	}
}

// TestDiscoverAcrossHosts is a job of four hosts under mpiexec's
// environment in discover mode: every rank binds the address of the
// `interface` setting's device, the all-gather runs across the bridge,
// and a non-root host's read reaches the root's filesystem once. Then
// links fail, one at a time, mid-run: a reading host's parent's (it
// fails over to the root), the root's (its children go to the
// successor), the reading host's own (it reads the filesystem itself);
// every cold read is answered with the right bytes, by failover, well
// within rpc_timeout_s. Last, the job stops and leaves nothing.
func TestDiscoverAcrossHosts(t *testing.T) {
	j := newJob(t, 4, "mh-discover")
	// Every file exists before the first read: a node keeps a directory's
	// listing as the snapshot of it (README, Consistency).
	first := j.writeFile("data/first.bin", 256<<10)
	const files, batch = 3, 100
	sums := make([]string, files)
	for k := range files {
		sums[k] = j.writeFile(fmt.Sprintf("cold/f%d.bin", k), 64<<10)
	}
	batchSums := map[string]string{} // path on nid00003's mount → SHA-256
	for k := range batch {
		rel := fmt.Sprintf("cold/batch/b%03d.bin", k)
		batchSums[filepath.Join(j.mount(3), rel)] = j.writeFile(rel, 4<<10)
	}
	rootGone := make([]string, files)
	for k := range files {
		rootGone[k] = j.writeFile(fmt.Sprintf("cold/root%d.bin", k), 64<<10)
	}
	ownSums := make([]string, files)
	for k := range files {
		ownSums[k] = j.writeFile(fmt.Sprintf("cold/own%d.bin", k), 64<<10)
	}
	started := j.launchAll([]int{0, 1, 2, 3}, func(i int) []string { return j.env(i, j.mpiEnv(i)...) },
		func(i int) []string { return append(j.baseArgs(i), "--interface", hosts.Iface) })
	j.requireStarted(started)
	j.requireBook()

	st := make(map[int]int) // rank → parent, from each node
	for i := range j.nw.Hosts {
		s := j.stats(i)
		require.True(t, s.Node.TreeReady, "%s tree-ready", j.nw.Hosts[i].Hostname)
		st[i] = s.Parent
		assert.Equal(t, i, s.Node.Rank)
	}
	assert.Equal(t, map[int]int{0: -1, 1: 0, 2: 0, 3: 1}, st, "parents: fan-out 2 over 4 hosts")

	t.Run("tree traffic across the bridge", func(t *testing.T) {
		got, _, err := j.read(3, "data/first.bin")
		require.NoError(t, err)
		assert.Equal(t, first, got, "bytes read on nid00003")
		got, _, err = j.read(2, "data/first.bin")
		require.NoError(t, err)
		assert.Equal(t, first, got, "bytes read on nid00002")
		root, mid, leaf := j.stats(0), j.stats(1), j.stats(3)
		assert.EqualValues(t, 1, root.Node.Op(op.Read).BackendOps, "the root read the file from its filesystem once for two hosts")
		assert.Positive(t, leaf.Node.Op(op.Read).Forwarded, "nid00003 asked its parent")
		assert.Positive(t, mid.Node.Op(op.Read).Forwarded, "nid00001 forwarded nid00003's read to the root")
		for i, s := range []int{1, 2, 3} {
			assert.Zero(t, j.stats(s).Node.Op(op.Read).BackendOps, "host %d read nothing itself", i)
		}
	})

	t.Run("parent's link down", func(t *testing.T) {
		require.NoError(t, j.nw.Hosts[1].SetLink(false))
		var took []time.Duration
		for k := range files {
			got, d, err := j.read(3, fmt.Sprintf("cold/f%d.bin", k))
			took = append(took, d)
			require.NoError(t, err, "cold read %d on nid00003 with nid00001's link down", k)
			assert.Equal(t, sums[k], got, "bytes of cold read %d", k)
			assert.Less(t, d, failoverBound, "cold read %d took %v", k, d)
		}
		t.Logf("cold reads on nid00003 with its parent's link down took %v", took)
		// The case: 100 cold reads in a row (one process), every
		// one answered, every byte right.
		paths := make([]string, 0, batch)
		for p := range batchSums {
			paths = append(paths, p)
		}
		c := j.nw.Hosts[3].Command("sha256sum", paths...)
		c.Env = j.env(3)
		start := time.Now()
		r, err := testkit.RunBounded(c, readBound)
		t.Logf("%d more cold reads on nid00003 with its parent's link down took %v", batch, time.Since(start))
		require.NoError(t, err)
		require.Zero(t, r.Code, "sha256sum of %d files on nid00003: %s", batch, r)
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
			f := strings.Fields(line)
			require.Len(t, f, 2, "sha256sum line %q", line)
			got[f[1]] = f[0]
		}
		assert.Equal(t, batchSums, got)
		leaf := j.stats(3)
		assert.Positive(t, leaf.Node.Failovers, "nid00003 counted its switch")
		assert.Equal(t, "rank 0 "+j.stats(0).Endpoint, leaf.Upstream, "nid00003 now asks the root")
		assert.Zero(t, leaf.Node.Op(op.Read).BackendOps, "nid00003 did not read the filesystem itself")
		require.NoError(t, j.nw.Hosts[1].SetLink(true))
	})

	t.Run("root's link down", func(t *testing.T) {
		require.NoError(t, j.nw.Hosts[0].SetLink(false))
		var took []time.Duration
		for k := range files {
			got, d, err := j.read(2, fmt.Sprintf("cold/root%d.bin", k))
			took = append(took, d)
			require.NoError(t, err, "cold read %d on nid00002 with the root's link down", k)
			assert.Equal(t, rootGone[k], got, "bytes of cold read %d", k)
			assert.Less(t, d, failoverBound, "cold read %d took %v", k, d)
		}
		t.Logf("cold reads on nid00002 with the root's link down took %v", took)
		child, successor := j.stats(2), j.stats(1)
		assert.Equal(t, "rank 1 "+successor.Endpoint+" (successor root)", child.Upstream, "nid00002 asks the successor, rank 1")
		assert.Zero(t, child.Node.Op(op.Read).BackendOps, "nid00002 did not read the filesystem itself")
		assert.EqualValues(t, files, successor.Node.Op(op.Read).BackendOps, "the successor read each file once")
		require.NoError(t, j.nw.Hosts[0].SetLink(true))
	})

	// Every host sees the target (a shared filesystem): a host cut off
	// from all others reads it itself, rate-limited (direct_ops_per_s).
	t.Run("own link down", func(t *testing.T) {
		require.NoError(t, j.nw.Hosts[3].SetLink(false))
		var took []time.Duration
		for k := range files {
			got, d, err := j.read(3, fmt.Sprintf("cold/own%d.bin", k))
			took = append(took, d)
			require.NoError(t, err, "cold read %d on nid00003 cut off", k)
			assert.Equal(t, ownSums[k], got, "bytes of cold read %d", k)
			assert.Less(t, d, failoverBound, "cold read %d took %v", k, d)
		}
		t.Logf("cold reads on nid00003, cut off from every host, took %v", took)
		st := j.stats(3)
		assert.Equal(t, "direct (own backend, rate-limited)", st.Upstream, "nothing above answers: nid00003 reads its own view of the filesystem")
		assert.EqualValues(t, files, st.Node.Op(op.Read).BackendOps, "one filesystem read per file")
		require.NoError(t, j.nw.Hosts[3].SetLink(true))
	})

	t.Run("clean stop", func(t *testing.T) {
		for i := range j.nw.Hosts {
			r := j.ctl(i, "stop")
			assert.Zero(t, r.Code, "stop on %s: %s", j.nw.Hosts[i].Hostname, r)
		}
		j.requireClean()
		require.NoError(t, j.nw.Close())
		for _, h := range j.nw.Hosts {
			assert.NoFileExists(t, filepath.Join("/run/netns", h.NetNS))
		}
		assert.NoFileExists(t, filepath.Join("/run/netns", j.nw.Bridge))
	})
}

// TestHostThatNeverArrives starts three of four hosts: every rank that
// started fails the all-gather naming the missing rank and its host, and
// leaves nothing behind.
func TestHostThatNeverArrives(t *testing.T) {
	j := newJob(t, 4, "mh-missing")
	start := time.Now()
	results := j.launchAll([]int{0, 1, 2}, func(i int) []string { return j.env(i, j.mpiEnv(i)...) },
		func(i int) []string {
			return append(j.baseArgs(i), "--interface", hosts.Iface, "--bootstrap-timeout-s", "3")
		})
	t.Logf("the three launchers gave up after %v", time.Since(start))
	for i, r := range results {
		assert.NotZero(t, r.Code, "launcher on %s", j.nw.Hosts[i].Hostname)
		assert.Contains(t, r.Stderr, "missing rank 3 of 4", "launcher on %s names the missing rank:\n%s", j.nw.Hosts[i].Hostname, r.Stderr)
		assert.Contains(t, r.Stderr, "nid00003", "launcher on %s names the missing host:\n%s", j.nw.Hosts[i].Hostname, r.Stderr)
	}
	j.requireClean()
}

// TestFacilityBookByHostname runs a job under srun's environment with the
// site's address book: lines keyed by hostname, in another order than
// the allocation, with hosts that are not in it; each host's line holds
// its own address.
func TestFacilityBookByHostname(t *testing.T) {
	j := newJob(t, 4, "mh-facility")
	var b strings.Builder
	b.WriteString("# site book: every node of the machine, not only this job's\n")
	for _, i := range []int{3, 1, 0, 2} {
		h := j.nw.Hosts[i]
		b.WriteString(h.Hostname + " " + net.JoinHostPort(h.IP.String(), "47300") + "\n")
	}
	b.WriteString("nid00099 10.77.250.99:47300\n")
	siteBook := filepath.Join(j.dir, "site.book")
	writeText(t, siteBook, b.String())

	started := j.launchAll([]int{0, 1, 2, 3}, func(i int) []string { return j.env(i, j.slurmEnv(i)...) },
		func(i int) []string {
			return append(j.baseArgs(i), "--address-book-source", "facility", "--address-book", siteBook)
		})
	j.requireStarted(started)
	j.requireBook()
	want := j.writeFile("facility/one.bin", 128<<10)
	got, _, err := j.read(3, "facility/one.bin")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.EqualValues(t, 1, j.stats(0).Node.Op(op.Read).BackendOps)
}
