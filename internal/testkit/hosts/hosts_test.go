package hosts

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/testkit"
)

// runAs runs a command as h and returns its stdout, requiring success.
func runAs(t *testing.T, h *Host, name string, args ...string) string {
	t.Helper()
	r, err := testkit.RunBounded(h.Command(name, args...), 20*time.Second)
	require.NoError(t, err)
	require.Zero(t, r.Code, "%s %q as %s: %s", name, args, h.Hostname, r)
	return r.Stdout
}

func TestHostsAreSeparateMachinesSharingADirectory(t *testing.T) {
	etcHosts, err := os.ReadFile("/etc/hosts")
	require.NoError(t, err)
	scratch := testkit.NewScratch(t, "copper-hosts-")
	nw := New(t, 2, scratch.Dir)

	for _, h := range nw.Hosts {
		assert.Equal(t, h.Hostname+"\n", runAs(t, h, "hostname"))
		addrs := runAs(t, h, "ip", "-o", "-4", "addr", "show", "dev", Iface)
		assert.Contains(t, addrs, h.IP.String()+"/24", "%s's %s", h.Hostname, Iface)
		// Every host resolves every host's name through its own /etc/hosts.
		for _, other := range nw.Hosts {
			got := runAs(t, h, "getent", "hosts", other.Hostname)
			assert.Equal(t, other.IP.String(), strings.Fields(got)[0], "%s resolving %s", h.Hostname, other.Hostname)
		}
		// Only its own link and loopback: the machine's interfaces are not there.
		links := runAs(t, h, "ip", "-o", "link", "show")
		assert.Len(t, strings.Split(strings.TrimSpace(links), "\n"), 2, "links of %s:\n%s", h.Hostname, links)
	}

	// A mount made by a host below the shared directory shows here.
	point := filepath.Join(scratch.Dir, "m0")
	require.NoError(t, os.Mkdir(point, 0o755))
	runAs(t, nw.Hosts[0], "mount", "-t", "tmpfs", "tmpfs", point)
	ms := scratch.Mounts()
	assert.True(t, slices.ContainsFunc(ms, func(m osutil.Mount) bool { return m.Point == point }), "mounts under %s: %v", scratch.Dir, ms)

	// The machine's own /etc/hosts and hostname are untouched.
	after, err := os.ReadFile("/etc/hosts")
	require.NoError(t, err)
	assert.Equal(t, string(etcHosts), string(after))

	// Close removes the namespaces, the /etc/netns files and the mounts.
	require.NoError(t, nw.Close())
	names, err := namespaces()
	require.NoError(t, err)
	for _, ns := range names {
		assert.False(t, strings.HasPrefix(ns, nw.RunID), "namespace %s left", ns)
	}
	for _, h := range nw.Hosts {
		assert.NoDirExists(t, h.etcDir())
	}
	assert.Empty(t, scratch.Mounts())
}

func TestHostLinkDownCutsItOff(t *testing.T) {
	scratch := testkit.NewScratch(t, "copper-hosts-")
	nw := New(t, 2, scratch.Dir)
	a, b := nw.Hosts[0], nw.Hosts[1]
	// ip neigh resolution needs a frame across the bridge: arping-free,
	// a TCP connect to a closed port answers RST while the link is up.
	probe := func() (string, error) {
		r, err := testkit.RunBounded(a.Command("timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+b.IP.String()+"/9"), 10*time.Second)
		return r.Stderr, err
	}
	out, err := probe()
	require.NoError(t, err)
	assert.Contains(t, out, "refused", "link up: the peer answers with a reset")
	require.NoError(t, b.SetLink(false))
	start := time.Now()
	out, err = probe()
	require.NoError(t, err)
	assert.NotContains(t, out, "refused", "link down: nothing answers")
	assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "link down: the connect hangs until timeout kills it")
	require.NoError(t, b.SetLink(true))
	out, err = probe()
	require.NoError(t, err)
	assert.Contains(t, out, "refused", "link back up")
}

func TestSweepRemovesDeadRunsOnly(t *testing.T) {
	Require(t)
	// A dead run: pid 1's start time is never 1 tick (any other value
	// would do), so the owner is "gone".
	dead := fmt.Sprintf("%s1-1-deadbe", Prefix)
	live, err := runID()
	require.NoError(t, err)
	other := fmt.Sprintf("copper-other-%d", os.Getpid())
	for _, ns := range []string{dead + "-h0", live + "-h0", other} {
		require.NoError(t, run("ip", "netns", "add", ns))
		t.Cleanup(func() { _ = run("ip", "netns", "del", ns) })
	}
	var logged []string
	require.NoError(t, Sweep(func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }))
	names, err := namespaces()
	require.NoError(t, err)
	assert.NotContains(t, names, dead+"-h0")
	assert.Contains(t, names, live+"-h0", "a live run is never swept")
	assert.Contains(t, names, other, "another program's namespace is never touched")
	assert.Len(t, logged, 1)
	assert.Contains(t, logged[0], dead)
}
