// Package hosts makes N "hosts" on this machine for multi-host tests: each
// a network namespace with its own address on a private bridge, its own
// hostname (a UTS namespace per command) and its own /etc/hosts that names
// every host, all sharing one directory (the backing tree, the job's
// records, each host's mount point and runtime directory).
//
// Topology: one namespace holds the bridge (br0), so the machine's own
// network is never touched; each host namespace has one veth (Iface,
// "cu0" in every host, as a cluster's hsn0 is) whose peer is a port of the
// bridge. Addresses are 10.77.X.(10+i)/24.
//
// Mounts: Command runs a program in the host's network namespace and in a
// fresh UTS and mount namespace of its own. The run's directory is made a
// shared mount first, so a FUSE mount made below it by a host's process
// (copper-node) shows in this process's mount namespace too, where tests
// read through it and clean it up; only /etc/hosts is private to the host.
//
// Names: everything of one run is named "cphost-<pid>-<start>-<rand>" (pid
// and start time of the test process), so parallel test packages never
// meet, and Sweep removes what a dead run left (namespaces, their
// processes, /etc/netns files, mounts below its directory) and nothing
// else. Like testkit, only tests may import it; it needs root and
// iproute2.
package hosts

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/testkit"
)

// Iface is the name of every host's link onto the bridge.
const Iface = "cu0"

// Prefix starts the name of every namespace this package creates, and
// nothing else on the machine.
const Prefix = "cphost-"

// stateDir records, per run, the directory whose mounts Sweep detaches
// when the run is dead.
const stateDir = "/run/copper-hosts"

// etcNetns is iproute2's per-namespace /etc convention: `ip netns exec
// NAME` binds /etc/netns/NAME/hosts over /etc/hosts too.
const etcNetns = "/etc/netns"

// cmdBound bounds every ip/mount command the harness runs.
const cmdBound = 20 * time.Second

// Host is one simulated machine.
type Host struct {
	Index    int
	Hostname string     // its UTS name, also in every host's /etc/hosts
	NetNS    string     // network namespace (ip netns)
	IP       netip.Addr // address of Iface
	Port     string     // the bridge's port for this host (in the bridge namespace)
	net      *Net
}

// Net is one run's hosts and bridge.
type Net struct {
	RunID  string // Prefix + pid + start + random: every name of the run starts with it
	Dir    string // the shared directory (a shared mount while the run lives)
	Subnet netip.Prefix
	Bridge string // the bridge's namespace
	Hosts  []*Host
}

// Require fails (never skips) t when this machine cannot run multi-host
// tests: they need root and iproute2, nsenter, unshare, findmnt, mount
// and hostname (scripts/setup-test-deps.sh installs them).
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("multi-host tests create network namespaces: run them as root (euid %d)", os.Geteuid())
	}
	for _, tool := range []string{"ip", "nsenter", "unshare", "findmnt", "mount", "hostname"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (%v): install the test dependencies with scripts/setup-test-deps.sh (iproute2, util-linux)", tool, err)
		}
	}
}

// New creates n hosts sharing dir (which must exist and will be made a
// shared mount) and registers their removal with t.Cleanup. Register the
// cleanup that stops what runs on the hosts after New, so that it runs
// first. Leftovers of dead runs are swept first.
func New(t testing.TB, n int, dir string) *Net {
	t.Helper()
	Require(t)
	if err := Sweep(t.Logf); err != nil {
		t.Logf("hosts: sweeping dead runs: %v", err)
	}
	id, err := runID()
	if err != nil {
		t.Fatal(err)
	}
	// The third octet only makes addresses of different runs easy to
	// tell apart in logs; each run's bridge is its own network anyway.
	third := os.Getpid()%200 + 20
	nw := &Net{
		RunID:  id,
		Dir:    dir,
		Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(third), 0}), 24),
		Bridge: id + "-br",
	}
	t.Cleanup(func() {
		if err := nw.Close(); err != nil {
			t.Errorf("hosts: %v", err)
		}
	})
	if err := nw.build(n); err != nil {
		t.Fatalf("hosts: building %d hosts: %v", n, err)
	}
	return nw
}

// runID names a run after this process (pid and start time, which Sweep
// checks) and a random part (several runs per process).
func runID() (string, error) {
	start, err := startTime(os.Getpid())
	if err != nil {
		return "", err
	}
	var r [3]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s%d-%d-%s", Prefix, os.Getpid(), start, hex.EncodeToString(r[:])), nil
}

func (nw *Net) build(n int) error {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	// Recorded before anything exists, so a run killed at any point
	// leaves what Sweep needs.
	if err := os.WriteFile(filepath.Join(stateDir, nw.RunID), []byte(nw.Dir+"\n"), 0o600); err != nil {
		return err
	}
	// The directory becomes its own shared mount: the hosts' mount
	// namespaces are copies in which it stays a peer of this one, so
	// mounts below it propagate back here.
	if err := run("mount", "--bind", nw.Dir, nw.Dir); err != nil {
		return err
	}
	if err := run("mount", "--make-shared", nw.Dir); err != nil {
		return err
	}
	if err := run("ip", "netns", "add", nw.Bridge); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "br0", "type", "bridge"},
		{"link", "set", "br0", "up"},
	} {
		if err := run("ip", append([]string{"-n", nw.Bridge}, args...)...); err != nil {
			return err
		}
	}
	base := nw.Subnet.Addr().As4()
	for i := range n {
		h := &Host{
			Index:    i,
			Hostname: fmt.Sprintf("nid%05d", i),
			NetNS:    fmt.Sprintf("%s-h%d", nw.RunID, i),
			IP:       netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(10 + i)}),
			Port:     fmt.Sprintf("p%d", i),
			net:      nw,
		}
		nw.Hosts = append(nw.Hosts, h)
		if err := run("ip", "netns", "add", h.NetNS); err != nil {
			return err
		}
		for _, c := range [][]string{
			{"-n", nw.Bridge, "link", "add", h.Port, "type", "veth", "peer", "name", Iface, "netns", h.NetNS},
			{"-n", nw.Bridge, "link", "set", h.Port, "master", "br0", "up"},
			{"-n", h.NetNS, "link", "set", "lo", "up"},
			{"-n", h.NetNS, "addr", "add", netip.PrefixFrom(h.IP, 24).String(), "dev", Iface},
			{"-n", h.NetNS, "link", "set", Iface, "up"},
		} {
			if err := run("ip", c...); err != nil {
				return err
			}
		}
	}
	var hostsFile strings.Builder
	hostsFile.WriteString("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
	for _, h := range nw.Hosts {
		fmt.Fprintf(&hostsFile, "%s %s\n", h.IP, h.Hostname)
	}
	for _, h := range nw.Hosts {
		if err := os.MkdirAll(h.etcDir(), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(h.HostsFile(), []byte(hostsFile.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// etcDir is the host's /etc/netns directory.
func (h *Host) etcDir() string { return filepath.Join(etcNetns, h.NetNS) }

// HostsFile is the host's /etc/hosts (bound over /etc/hosts in its
// commands, and by `ip netns exec`).
func (h *Host) HostsFile() string { return filepath.Join(h.etcDir(), "hosts") }

// Hostnames lists the hosts' names in host order.
func (nw *Net) Hostnames() []string {
	names := make([]string, len(nw.Hosts))
	for i, h := range nw.Hosts {
		names[i] = h.Hostname
	}
	return names
}

// enterScript runs as the host: its own mount namespace keeps the
// /etc/hosts bind from reaching any other (the mount holding /etc/hosts
// is made private first; the run's directory stays shared), its own UTS
// namespace gets the hostname. Arguments: hosts file, hostname, program
// and its arguments.
const enterScript = `set -e
f=$1 h=$2; shift 2
m=$(findmnt -n -o TARGET --target /etc/hosts)
mount --make-private "$m"
mount --bind "$f" /etc/hosts
hostname "$h"
exec "$@"`

// Command returns a command that runs name with args as host h: in h's
// network namespace, with h's hostname and /etc/hosts, sharing this
// process's view of the run's directory.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	argv := []string{
		"--net=" + filepath.Join("/run/netns", h.NetNS), "--",
		"unshare", "--uts", "--mount", "--propagation", "unchanged", "--",
		"/bin/sh", "-c", enterScript, "sh", h.HostsFile(), h.Hostname, name,
	}
	return exec.Command("nsenter", append(argv, args...)...)
}

// SetLink takes h's cable out (up false) or puts it back: the bridge's
// port for h goes down, so h and the others silently lose each other —
// no reset, no unreachable error, as when a link fails — while h's own
// interface stays configured.
func (h *Host) SetLink(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return run("ip", "-n", h.net.Bridge, "link", "set", h.Port, state)
}

// Close stops every process left in the run's namespaces, deletes the
// namespaces (the veths and the bridge go with them) and the /etc/netns
// files, detaches whatever is still mounted below the directory, the
// directory's own shared bind last, and drops the run's record. Safe to
// call twice.
func (nw *Net) Close() error {
	return remove(nw.RunID, nw.Dir)
}

// remove tears down run id whose directory is dir ("" if unknown).
func remove(id, dir string) error {
	var errs []error
	names, err := namespaces()
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range names {
		if !strings.HasPrefix(ns, id+"-") {
			continue
		}
		killIn(ns)
		if err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(filepath.Join(etcNetns, ns)); err != nil {
			errs = append(errs, err)
		}
	}
	// /etc/netns directories of hosts whose namespace was never made.
	if ents, err := os.ReadDir(etcNetns); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), id+"-") {
				_ = os.RemoveAll(filepath.Join(etcNetns, e.Name()))
			}
		}
	}
	if dir != "" {
		if err := testkit.DetachMountsUnder(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(filepath.Join(stateDir, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killIn SIGKILLs the processes in network namespace ns (only this
// harness's processes ever run there) and waits a little for them.
func killIn(ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for osutil.ProcessRuns(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// run runs one setup command, bounded, and names it in the error.
func run(name string, args ...string) error {
	r, err := testkit.RunBounded(exec.Command(name, args...), cmdBound)
	if err == nil && r.Code != 0 {
		err = fmt.Errorf("exit %d: %s", r.Code, strings.TrimSpace(r.Stderr+r.Stdout))
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
