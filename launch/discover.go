package launch

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/bootstrap"
	"github.com/hpc-copper/copper/rank"
)

// forever stands for bootstrap_timeout_s = 0: bootstrap treats a zero
// timeout as its default, and Join adds a quarter to it, so "forever" is
// a long but overflow-safe span.
const forever = 10 * 365 * 24 * time.Hour

// listenIP picks the address this rank's copper-node listens on: loopback
// for --local, else the first address of the configured interface, else
// the hostname's address. how says which, for the log.
func listenIP(ctx context.Context, iface, hostname string, local bool) (ip net.IP, how string, err error) {
	if local && iface == "" {
		return net.IPv4(127, 0, 0, 1), "loopback (--local)", nil
	}
	if iface != "" {
		ifc, err := net.InterfaceByName(iface)
		if err != nil {
			return nil, "", fmt.Errorf("interface %q: %w (this host has: %s)", iface, err, interfaceNames())
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, "", fmt.Errorf("addresses of interface %s: %w", iface, err)
		}
		var ips []net.IP
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				ips = append(ips, ipn.IP)
			}
		}
		ip := preferredIP(ips)
		if ip == nil {
			return nil, "", fmt.Errorf("interface %s has no usable address", iface)
		}
		return ip, "interface " + iface, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, hostname)
	if err != nil {
		return nil, "", fmt.Errorf("address of hostname %s: %w (set interface, e.g. --interface hsn0)", hostname, err)
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	ip = preferredIP(ips)
	if ip == nil {
		return nil, "", fmt.Errorf("hostname %s has no usable address (set interface, e.g. --interface hsn0)", hostname)
	}
	return ip, "hostname " + hostname, nil
}

// preferredIP picks IPv4 over IPv6 and anything over loopback; link-local
// IPv6 addresses need a zone and are never picked.
func preferredIP(ips []net.IP) net.IP {
	var best net.IP
	score := func(ip net.IP) int {
		v4 := 0
		if ip.To4() != nil {
			v4 = 1
		}
		switch {
		case ip == nil, ip.IsLinkLocalUnicast() && v4 == 0, ip.IsUnspecified(), ip.IsMulticast():
			return 0
		case ip.IsLoopback():
			return 2 + v4
		}
		return 4 + v4
	}
	for _, ip := range ips {
		if score(ip) > score(best) {
			best = ip
		}
	}
	if best == nil || score(best) == 0 {
		return nil
	}
	if v4 := best.To4(); v4 != nil {
		return v4
	}
	return best
}

func interfaceNames() string {
	ifcs, err := net.Interfaces()
	if err != nil {
		return "unknown: " + err.Error()
	}
	names := make([]string, len(ifcs))
	for i, ifc := range ifcs {
		names[i] = ifc.Name
	}
	return strings.Join(names, ", ")
}

// portHold keeps an ephemeral port bound, but not listening, from the
// moment this rank announces it until just before copper-node starts: no
// other process can bind it meanwhile, and a peer that dials it early is
// refused (and retries) instead of being queued on a socket nobody
// serves. Between Release and copper-node's own listen there is a window
// of milliseconds in which another process could take the port; the node
// then fails to start, naming the endpoint, and the launch fails.
type portHold struct{ fd int }

// reservePort binds ip:0 and returns the port the kernel chose.
func reservePort(ip net.IP) (int, *portHold, error) {
	var sa unix.Sockaddr
	family := unix.AF_INET
	if v4 := ip.To4(); v4 != nil {
		sa = &unix.SockaddrInet4{Addr: [4]byte(v4)}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Addr: [16]byte(ip.To16())}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("reserving a port on %s: socket: %w", ip, err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return 0, nil, fmt.Errorf("reserving a port on %s: bind: %w", ip, err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return 0, nil, fmt.Errorf("reserving a port on %s: getsockname: %w", ip, err)
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return a.Port, &portHold{fd}, nil
	case *unix.SockaddrInet6:
		return a.Port, &portHold{fd}, nil
	}
	unix.Close(fd)
	return 0, nil, fmt.Errorf("reserving a port on %s: unexpected address %T", ip, got)
}

// Release frees the port for copper-node. Safe on nil and more than once.
func (h *portHold) Release() {
	if h != nil && h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}

// bootstrapBind is where rank 0 listens for the gather: the address's own
// IP when it is one, else every interface (a host name may resolve, on
// the other nodes, to an address of any of this host's networks).
func bootstrapBind(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if net.ParseIP(host) != nil {
		return addr
	}
	return net.JoinHostPort("", port)
}

// checkRankZeroHost fails rank 0 early when the default bootstrap address
// names another host: every rank would dial a port nobody serves.
func checkRankZeroHost(addr, hostname string, explicit bool) error {
	if explicit {
		return nil
	}
	host, _, _ := net.SplitHostPort(addr)
	if rank.ShortHost(host) != rank.ShortHost(hostname) {
		return fmt.Errorf("rank 0 runs on %s but the all-gather address defaults to the allocation's first node %s; start rank 0 on %s or pass --bootstrap %s",
			hostname, host, host, net.JoinHostPort(hostname, "PORT"))
	}
	return nil
}

// gather runs the all-gather, authenticated with the job key: every rank
// joins; rank 0 also serves, on ln when it has already bound one (its
// address was published through PMI), else on a listener for addr. It
// returns the result and, at rank 0, every hello for the provenance file.
func gather(ctx context.Context, h bootstrap.Hello, addr string, ln net.Listener, timeout time.Duration, key []byte, nodes []string, log *slog.Logger) (bootstrap.Result, []bootstrap.Hello, error) {
	if timeout <= 0 {
		timeout = forever
	}
	opts := bootstrap.Options{Addr: addr, Timeout: timeout, Key: key, Logger: log, Hosts: rankHosts(nodes, h.Size)}
	if h.Rank != 0 {
		res, err := bootstrap.Join(ctx, h, opts)
		return res, nil, err
	}
	if ln == nil {
		var lc net.ListenConfig
		var err error
		if ln, err = lc.Listen(ctx, "tcp", bootstrapBind(addr)); err != nil {
			return bootstrap.Result{}, nil, fmt.Errorf("rank 0: all-gather listener for %s: %w", addr, err)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type served struct {
		res bootstrap.Result
		err error
	}
	done := make(chan served, 1)
	go func() {
		res, err := bootstrap.Serve(ctx, ln, h.Size, opts)
		if err != nil {
			cancel(err) // rank 0's own Join must not wait for a gather that is over
		}
		done <- served{res, err}
	}()
	res, joinErr := bootstrap.Join(ctx, h, opts)
	if joinErr != nil {
		cancel(joinErr) // the others then hear why at once, not at the timeout
	}
	s := <-done
	if s.err != nil {
		return bootstrap.Result{}, nil, s.err
	}
	if joinErr != nil {
		return bootstrap.Result{}, nil, joinErr
	}
	return res, s.res.Seen, nil
}

// rankHosts is the host of each rank when the node list says (rank r runs
// on the r-th host: one rank per node, or a node file that repeats each
// host once per rank), else nil.
func rankHosts(nodes []string, size int) []string {
	if len(nodes) == size {
		return nodes
	}
	if u := unique(nodes); len(u) == size {
		return u
	}
	return nil
}

// helloFor builds this rank's hello.
func helloFor(r, size int, host, endpoint, jobID string, log *slog.Logger) bootstrap.Hello {
	ifaces, err := bootstrap.LocalInterfaces()
	if err != nil {
		log.Warn("copper-launch: listing interfaces for the provenance record", "err", err)
	}
	return bootstrap.Hello{Rank: r, Size: size, Host: host, Endpoint: endpoint, Interfaces: slices.Clip(ifaces), JobID: jobID}
}
