package bootstrap

import (
	"bytes"
	"compress/flate"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hpc-copper/copper/tree"
)

// Wire format: an 8-byte header, then the payload.
//
//	magic "CB" | version u8 | kind u8 | payload length u32 (big endian)
//
// challenge: NonceLen random bytes                  (rank 0 → rank, first, on every connection)
// hello:  binary Hello || tag                        (rank → rank 0, at most MaxHelloFrame)
// result: DEFLATE of the binary result || tag        (rank 0 → rank, at most MaxResultFrame)
// error:  UTF-8 text, the reason                     (rank 0 → rank, at most MaxHelloFrame)
//
// Tags are HMAC-SHA256 with the job key (key_file), TagLen bytes:
//
//	hello tag  = HMAC(key, "copper bootstrap hello v4" || challenge || hello bytes)
//	result tag = HMAC(key, "copper bootstrap result v4" || nonce || SHA-256(DEFLATE bytes))
//
// where challenge is the one rank 0 sent on that connection, so a hello
// recorded on one connection (of this job or an older one: the key
// outlives jobs) is refused on any other, and nonce is the receiving
// rank's hello nonce, so a result is bound to the one connection that
// asked for it. The DEFLATE bytes are identical
// for every rank: rank 0 encodes and compresses them once and only the tag
// differs per rank. Compression matters because rank 0 sends N copies of
// an N-entry book; host names compress several-fold. Error frames carry
// no tag: a forged one can only make a rank fail, as dropping its
// connection could. Version 3 replaced version 2's JSON hello with the
// binary one (hello.go): decoding JSON was a fifth of rank 0's CPU per
// rank. The two do not interoperate; a frame of another version is
// refused naming both versions. Version 4 added rank 0's challenge.
const (
	Version   = 4
	headerLen = 8

	// TagLen is the HMAC-SHA256 tag ending hello and result payloads.
	TagLen = 32
	// NonceLen is the length of a hello's fresh random nonce.
	NonceLen = 32
	// MinKeyLen is the shortest job key Serve and Join accept.
	MinKeyLen = 32

	// MaxHelloFrame caps what rank 0 reads from anyone who connects.
	MaxHelloFrame = 64 << 10
	// MaxResultFrame caps the compressed result a rank accepts, and
	// maxResultRaw the result once inflated (a 1M-rank book fits).
	MaxResultFrame = 64 << 20
	maxResultRaw   = 256 << 20

	// MaxRanks bounds the job size the gather accepts.
	MaxRanks = 1 << 20

	maxHostLen     = 255
	maxEndpointLen = 512
	maxJobIDLen    = 255
	maxInterfaces  = 256
	maxIfaceLen    = 512
)

// magic opens every frame: a stranger's bytes are refused at the first two.
const magic0, magic1 = 'C', 'B'

type kind uint8

const (
	kindHello  kind = 1
	kindResult kind = 2
	kindError  kind = 3
	// kindChallenge opens every connection: rank 0's fresh NonceLen bytes
	// that the hello's tag must cover.
	kindChallenge kind = 4
)

func (k kind) String() string {
	switch k {
	case kindHello:
		return "hello"
	case kindResult:
		return "result"
	case kindError:
		return "error"
	case kindChallenge:
		return "challenge"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// errVersion marks a frame from a copper of another protocol version, so
// that the reply can say so rather than "garbage".
var errVersion = errors.New("protocol version mismatch")

// encodeFrame returns header and payload as one buffer, for a single write.
func encodeFrame(k kind, payload []byte) []byte {
	buf := make([]byte, headerLen+len(payload))
	buf[0], buf[1], buf[2], buf[3] = magic0, magic1, Version, byte(k)
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(payload)))
	copy(buf[headerLen:], payload)
	return buf
}

// readFrame reads one frame whose payload is at most max bytes. It checks
// the header before allocating, so a stranger's bytes cost nothing.
func readFrame(r io.Reader, max uint32) (kind, []byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, fmt.Errorf("reading frame header: %w", err)
	}
	if h[0] != magic0 || h[1] != magic1 {
		return 0, nil, fmt.Errorf("not a copper bootstrap frame (starts %q)", h[:4])
	}
	if h[2] != Version {
		return 0, nil, fmt.Errorf("%w: frame version %d, this copper speaks %d (every rank of a job must run the same copper)", errVersion, h[2], Version)
	}
	k := kind(h[3])
	if k != kindHello && k != kindResult && k != kindError && k != kindChallenge {
		return 0, nil, fmt.Errorf("unknown frame kind %d", h[3])
	}
	n := binary.BigEndian.Uint32(h[4:8])
	if n > max {
		return 0, nil, fmt.Errorf("%s frame of %d bytes exceeds the cap of %d", k, n, max)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("reading %d-byte %s payload: %w", n, k, err)
	}
	return k, payload, nil
}

// Labels keep the tags of different messages apart.
const (
	helloLabel  = "copper bootstrap hello v4"
	resultLabel = "copper bootstrap result v4"
)

// helloTag is HMAC(key, helloLabel || challenge || body).
func helloTag(key, challenge, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(helloLabel))
	m.Write(challenge)
	m.Write(body)
	return m.Sum(nil)
}

// resultTag is HMAC(key, resultLabel || nonce || digest), digest being
// SHA-256 of the result's DEFLATE bytes (computed once for all ranks).
func resultTag(key, nonce []byte, digest [sha256.Size]byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(resultLabel))
	m.Write(nonce)
	m.Write(digest[:])
	return m.Sum(nil)
}

// The result payload, before compression, is binary: decoding it is the
// one step every rank does over the whole book, so it avoids reflection.
// Each host and endpoint is front-coded against the previous entry's
// (the bytes they share, then the rest): a job's host names and
// addresses mostly count up, so after DEFLATE a book is about a tenth of
// what plain strings gave (50 KB → 5 KB at 10,000 ranks), and rank 0
// sends N copies of it.
//
//	uvarint n | n × (shared host | suffix | shared endpoint | suffix) |
//	str job id
//
// where shared is a uvarint count of leading bytes taken from the
// previous entry's same field ("" before the first) and suffix and str
// are a uvarint length then that many bytes. It carries no secret: the
// job's peer token is derived from the key and the job id by every
// rank, never sent.

// encodeResult builds the one compressed result every rank receives
// (before its per-rank tag).
func encodeResult(book []tree.Entry, jobID string) ([]byte, error) {
	raw := make([]byte, 0, 16*len(book)+len(jobID)+2*binary.MaxVarintLen64)
	raw = binary.AppendUvarint(raw, uint64(len(book)))
	var host, endpoint string
	for _, e := range book {
		raw = appendFront(raw, host, e.Host)
		raw = appendFront(raw, endpoint, e.Endpoint)
		host, endpoint = e.Host, e.Endpoint
	}
	raw = appendString(raw, jobID)

	var buf bytes.Buffer
	zw, err := flate.NewWriter(&buf, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("compressing result: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing result: %w", err)
	}
	if buf.Len()+TagLen > MaxResultFrame {
		return nil, fmt.Errorf("result of %d compressed bytes exceeds the cap of %d", buf.Len()+TagLen, MaxResultFrame)
	}
	return buf.Bytes(), nil
}

// appendFront appends s front-coded against prev.
func appendFront(b []byte, prev, s string) []byte {
	n := 0
	for n < len(prev) && n < len(s) && prev[n] == s[n] {
		n++
	}
	return appendString(binary.AppendUvarint(b, uint64(n)), s[n:])
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decodeResult inflates at most maxRaw bytes and checks the shape; Join
// checks the book against the rank's own hello.
func decodeResult(payload []byte, maxRaw int64) (Result, error) {
	zr := flate.NewReader(bytes.NewReader(payload))
	defer zr.Close()
	raw, err := io.ReadAll(io.LimitReader(zr, maxRaw+1))
	if err != nil {
		return Result{}, fmt.Errorf("result: inflating: %w", err)
	}
	if int64(len(raw)) > maxRaw {
		return Result{}, fmt.Errorf("result: inflates beyond %d bytes", maxRaw)
	}
	return parseResult(raw)
}

// parseResult decodes an inflated result payload.
func parseResult(raw []byte) (Result, error) {
	d := wireDecoder{s: string(raw)}
	n := d.uvarint()
	if d.err == nil && (n == 0 || n > MaxRanks) {
		return Result{}, fmt.Errorf("result: book of %d entries (want 1..%d)", n, MaxRanks)
	}
	// Each entry takes at least 4 bytes, so n is also bounded by the input.
	if d.err == nil && n > uint64(len(d.s)) {
		return Result{}, fmt.Errorf("result: book of %d entries in %d bytes", n, len(raw))
	}
	// Every host and endpoint is written once into one arena, then
	// sliced from one string: two allocations instead of 2N. spans holds
	// each entry's host and endpoint as [start, end) in the arena.
	arena := make([]byte, 0, 2*len(raw))
	spans := make([][4]int, n)
	var host, endpoint [2]int // the previous entry's spans
	for i := range spans {
		if arena, host, d.err = d.front(arena, host, "host", maxHostLen); d.err == nil {
			arena, endpoint, d.err = d.front(arena, endpoint, "endpoint", maxEndpointLen)
		}
		switch {
		case d.err != nil:
			return Result{}, fmt.Errorf("result: book entry %d: %w", i, d.err)
		case host[0] == host[1] || endpoint[0] == endpoint[1]:
			return Result{}, fmt.Errorf("result: book entry %d: empty host or endpoint", i)
		case len(arena) > maxResultRaw:
			return Result{}, fmt.Errorf("result: book entry %d: the book expands beyond %d bytes", i, maxResultRaw)
		}
		spans[i] = [4]int{host[0], host[1], endpoint[0], endpoint[1]}
	}
	jobID := d.str("job id", maxJobIDLen)
	switch {
	case d.err != nil:
		return Result{}, fmt.Errorf("result: %w", d.err)
	case len(d.s) != 0:
		return Result{}, fmt.Errorf("result: %d bytes of trailing data", len(d.s))
	case jobID == "":
		return Result{}, errors.New("result: empty job id")
	}
	all := string(arena)
	r := Result{Book: make([]tree.Entry, n), JobID: jobID}
	for i, sp := range spans {
		r.Book[i] = tree.Entry{Host: all[sp[0]:sp[1]], Endpoint: all[sp[2]:sp[3]]}
	}
	return r, nil
}

// front reads one front-coded field: the bytes it shares with prev (a
// span of arena), then its suffix. It appends the whole field to arena
// and returns its span.
func (d *wireDecoder) front(arena []byte, prev [2]int, what string, max int) ([]byte, [2]int, error) {
	shared := d.uvarint()
	if d.err == nil && shared > uint64(prev[1]-prev[0]) {
		d.err = fmt.Errorf("%s shares %d bytes with the previous one of %d", what, shared, prev[1]-prev[0])
	}
	suffix := d.str(what, max)
	if d.err != nil {
		return arena, prev, d.err
	}
	if int(shared)+len(suffix) > max {
		return arena, prev, fmt.Errorf("%s of %d bytes (max %d)", what, int(shared)+len(suffix), max)
	}
	start := len(arena)
	arena = append(arena, arena[prev[0]:prev[0]+int(shared)]...)
	arena = append(arena, suffix...)
	return arena, [2]int{start, len(arena)}, nil
}

// wireDecoder consumes s (a hello body or an inflated result); the first
// error sticks and later reads return zero values.
type wireDecoder struct {
	s   string
	err error
}

func (d *wireDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return v
		}
	}
	d.err = errors.New("truncated or overlong length")
	return 0
}

func (d *wireDecoder) str(what string, max int) string {
	n := d.uvarint()
	if d.err == nil && n > uint64(max) {
		d.err = fmt.Errorf("%s of %d bytes (max %d)", what, n, max)
	}
	return d.take(what, int(min(n, uint64(max))))
}

func (d *wireDecoder) take(what string, n int) string {
	if d.err != nil {
		return ""
	}
	if n > len(d.s) {
		d.err = fmt.Errorf("%s: %d bytes wanted, %d left", what, n, len(d.s))
		return ""
	}
	v := d.s[:n]
	d.s = d.s[n:]
	return v
}
