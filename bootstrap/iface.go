package bootstrap

import (
	"fmt"
	"net"
)

// LocalInterfaces lists this host's addresses on interfaces that are up and
// not loopback, as "name=address" ("hsn0=10.1.2.3"), for Hello.Interfaces:
// when a rank's endpoint is unreachable, rank 0's record shows what else
// the node could have offered.
func LocalInterfaces() ([]string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("bootstrap: listing interfaces: %w", err)
	}
	var out []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("bootstrap: addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				out = append(out, ifc.Name+"="+ipn.IP.String())
			}
		}
		if len(out) >= maxInterfaces {
			return out[:maxInterfaces], nil
		}
	}
	return out, nil
}
