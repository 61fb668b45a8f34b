package bootstrap

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Hello is what each rank tells rank 0 about itself.
type Hello struct {
	Rank       int
	Size       int
	Host       string
	Endpoint   string   // host:port its copper-node listens on
	Interfaces []string // provenance, e.g. "hsn0=10.1.2.3"
	JobID      string   // this rank's proposal, usually from the scheduler
	// Nonce is fresh for every connection (Join draws it): rank 0's
	// result for this rank is tagged with it, so it cannot be replayed.
	Nonce []byte
}

// Validate checks a hello's fields; rank 0 and Join apply the same rules.
func (h Hello) Validate() error {
	switch {
	case h.Size < 1 || h.Size > MaxRanks:
		return fmt.Errorf("hello: size %d outside 1..%d", h.Size, MaxRanks)
	case h.Rank < 0 || h.Rank >= h.Size:
		return fmt.Errorf("hello: rank %d outside 0..%d", h.Rank, h.Size-1)
	case h.Host == "" || len(h.Host) > maxHostLen || !utf8.ValidString(h.Host):
		return fmt.Errorf("hello from rank %d: host %q must be 1 to %d bytes of UTF-8", h.Rank, h.Host, maxHostLen)
	case h.Endpoint == "" || len(h.Endpoint) > maxEndpointLen || !utf8.ValidString(h.Endpoint):
		return fmt.Errorf("hello from rank %d: endpoint %q must be 1 to %d bytes of UTF-8", h.Rank, h.Endpoint, maxEndpointLen)
	case len(h.JobID) > maxJobIDLen || !utf8.ValidString(h.JobID):
		return fmt.Errorf("hello from rank %d: job id of %d bytes (max %d, UTF-8)", h.Rank, len(h.JobID), maxJobIDLen)
	case len(h.Interfaces) > maxInterfaces:
		return fmt.Errorf("hello from rank %d: %d interfaces (max %d)", h.Rank, len(h.Interfaces), maxInterfaces)
	case len(h.Nonce) != NonceLen:
		return fmt.Errorf("hello from rank %d: nonce of %d bytes (want %d)", h.Rank, len(h.Nonce), NonceLen)
	}
	for _, s := range h.Interfaces {
		if len(s) > maxIfaceLen || !utf8.ValidString(s) {
			return fmt.Errorf("hello from rank %d: interface entry of %d bytes (max %d, UTF-8)", h.Rank, len(s), maxIfaceLen)
		}
	}
	return nil
}

// The hello body is binary, as the result is: rank 0 decodes one per
// rank, and reflection-driven JSON (with the stack growth its recursion
// costs a fresh goroutine) was a fifth of its CPU per rank.
//
//	uvarint rank | uvarint size | str host | str endpoint | str job id |
//	uvarint n | n × str interface | nonce (NonceLen bytes)
//
// where str is a uvarint length then that many bytes.

// appendHello appends h's body to b without checking it (encodeHello
// does; tests build invalid bodies with this).
func appendHello(b []byte, h Hello) []byte {
	b = binary.AppendUvarint(b, uint64(h.Rank))
	b = binary.AppendUvarint(b, uint64(h.Size))
	b = appendString(b, h.Host)
	b = appendString(b, h.Endpoint)
	b = appendString(b, h.JobID)
	b = binary.AppendUvarint(b, uint64(len(h.Interfaces)))
	for _, s := range h.Interfaces {
		b = appendString(b, s)
	}
	return append(b, h.Nonce...)
}

// encodeHello returns the hello payload: the body, then its tag over
// rank 0's challenge and the body.
func encodeHello(h Hello, key, challenge []byte) ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	b := appendHello(make([]byte, 0, 64+len(h.Host)+len(h.Endpoint)+len(h.JobID)+NonceLen+TagLen), h)
	if len(b)+TagLen > MaxHelloFrame {
		return nil, fmt.Errorf("hello from rank %d: %d bytes exceeds the cap of %d", h.Rank, len(b)+TagLen, MaxHelloFrame)
	}
	return append(b, helloTag(key, challenge, b)...), nil
}

// errBadTag marks a message that does not verify with this job's key.
var errBadTag = errors.New("tag does not verify")

// decodeHello checks the tag, over the challenge rank 0 sent on this
// connection, before looking at anything else: bytes from someone without
// the key are never parsed, and a hello recorded elsewhere is refused.
func decodeHello(payload, key, challenge []byte) (Hello, error) {
	if len(payload) < TagLen {
		return Hello{}, fmt.Errorf("hello of %d bytes has no %d-byte tag: the sender does not speak copper bootstrap v%d with a job key", len(payload), TagLen, Version)
	}
	body, tag := payload[:len(payload)-TagLen], payload[len(payload)-TagLen:]
	if !hmac.Equal(tag, helloTag(key, challenge, body)) {
		return Hello{}, fmt.Errorf("hello %w: the sender does not hold this job's key (is key_file the same file on every node?), or replayed a hello made for another connection", errBadTag)
	}
	h, err := parseHello(body)
	if err != nil {
		return Hello{}, fmt.Errorf("hello: %w", err)
	}
	if err := h.Validate(); err != nil {
		return Hello{}, err
	}
	return h, nil
}

// parseHello decodes a hello body's shape; Validate checks its fields.
// Within one protocol version both ends agree on every field, so
// trailing bytes are refused.
func parseHello(body []byte) (Hello, error) {
	d := wireDecoder{s: string(body)} // one allocation; the strings are slices of it
	rank, size := d.uvarint(), d.uvarint()
	if d.err == nil && (rank > MaxRanks || size > MaxRanks) {
		return Hello{}, fmt.Errorf("rank %d of size %d: both must be at most %d", rank, size, MaxRanks)
	}
	h := Hello{Rank: int(rank), Size: int(size)}
	h.Host = d.str("host", maxHostLen)
	h.Endpoint = d.str("endpoint", maxEndpointLen)
	h.JobID = d.str("job id", maxJobIDLen)
	n := d.uvarint()
	if d.err == nil && n > maxInterfaces {
		return Hello{}, fmt.Errorf("rank %d: %d interfaces (max %d)", rank, n, maxInterfaces)
	}
	if d.err == nil && n > 0 {
		h.Interfaces = make([]string, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		h.Interfaces = append(h.Interfaces, d.str("interface entry", maxIfaceLen))
	}
	nonce := d.take("nonce", NonceLen)
	switch {
	case d.err != nil:
		return Hello{}, d.err
	case len(d.s) != 0:
		return Hello{}, fmt.Errorf("rank %d: %d bytes of trailing data", rank, len(d.s))
	}
	h.Nonce = []byte(nonce)
	return h, nil
}
