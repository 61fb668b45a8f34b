package testkit

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFreeAddrs(t *testing.T) {
	addrs := FreeAddrs(t, 32)
	require.Len(t, addrs, 32)
	seen := map[string]bool{}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		require.NoError(t, err, a)
		assert.Equal(t, "127.0.0.1", host, "loopback only")
		assert.False(t, seen[a], "%s chosen twice", a)
		seen[a] = true
		// Closed again: the test can listen there.
		ln, err := net.Listen("tcp", a)
		require.NoError(t, err, a)
		require.NoError(t, ln.Close())
	}
	host, _, err := net.SplitHostPort(FreeAddr(t))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
}
