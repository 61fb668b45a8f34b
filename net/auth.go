package net

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	stdnet "net"
)

// MinTokenLen is the shortest job token a Server or Client accepts: there
// is no unauthenticated mode, so a node cannot be started open by mistake.
const MinTokenLen = 16

// Labels keep the two directions' MACs apart: a server's proof can never
// be replayed as a client's, or the other way round.
const (
	clientLabel = "copper client v3"
	serverLabel = "copper server v3"
)

// handshakeMAC is HMAC-SHA256(token, label || len(endpoint) || endpoint ||
// nonceS || nonceC). Both nonces are in it, so a proof is bound to one
// connection: neither side can replay one it saw on another. The endpoint
// is the server's address as the client dialed it (its book entry): a
// process that a child dials in its parent's place cannot relay the
// child's handshake to another node, whose proofs name another endpoint.
func handshakeMAC(token []byte, label, endpoint string, nonceS, nonceC []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(label))
	var n [2]byte
	binary.BigEndian.PutUint16(n[:], uint16(len(endpoint)))
	m.Write(n[:])
	m.Write([]byte(endpoint))
	m.Write(nonceS)
	m.Write(nonceC)
	return m.Sum(nil)
}

// serverEndpoint is the name a server's proofs carry: the one configured,
// else the address it was asked to listen on, as its peers dial it; with
// port 0, the address bound.
func serverEndpoint(configured, asked, bound string) string {
	if configured != "" {
		return configured
	}
	if _, port, err := stdnet.SplitHostPort(asked); err == nil && port == "0" {
		return bound
	}
	return asked
}

func checkToken(token []byte) error {
	if len(token) < MinTokenLen {
		return fmt.Errorf("cnet: job token of %d bytes: want at least %d (peers must authenticate)", len(token), MinTokenLen)
	}
	return nil
}
