package net

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// MinTokenLen is the shortest job token a Server or Client accepts: there
// is no unauthenticated mode, so a node cannot be started open by mistake.
const MinTokenLen = 16

// Labels keep the two directions' MACs apart: a server's proof can never
// be replayed as a client's, or the other way round.
const (
	clientLabel = "copper client v2"
	serverLabel = "copper server v2"
)

// handshakeMAC is HMAC-SHA256(token, label || nonceS || nonceC). Both
// nonces are in it, so a proof is bound to one connection: neither side
// can replay one it saw on another.
func handshakeMAC(token []byte, label string, nonceS, nonceC []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(label))
	m.Write(nonceS)
	m.Write(nonceC)
	return m.Sum(nil)
}

func checkToken(token []byte) error {
	if len(token) < MinTokenLen {
		return fmt.Errorf("cnet: job token of %d bytes: want at least %d (peers must authenticate)", len(token), MinTokenLen)
	}
	return nil
}
