package testkit

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// FreeAddrs returns n distinct loopback addresses ("127.0.0.1:port")
// whose ports were free a moment ago. All n listeners stay open until
// every port is chosen, so no two are the same.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range listeners {
			_ = ln.Close()
		}
	}()
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err, "free loopback port %d of %d", i+1, n)
		listeners = append(listeners, ln)
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// FreeAddr returns one loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrs(t, 1)[0]
}
