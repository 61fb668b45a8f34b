package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"syscall"

	"github.com/hpc-copper/copper/op"
)

// Frame constants; see the package documentation for the layout.
const (
	HeaderSize = 20 // bytes before every payload
	Version    = 5  // the only protocol version this package speaks (3: dirplus; 4: files in a dirplus; 5: the server's endpoint in the handshake proofs)
	NonceSize  = 32 // a handshake nonce (hello; first half of auth)
	MACSize    = 32 // HMAC-SHA256 in auth and auth-ok payloads
	AttrSize   = 84 // encoded op.Attr

	magic0, magic1 = 'C', 0xCE
	minEntrySize   = 4 + 8 + 2 + 1 // mode, ino, name length, a name of one byte
	// name length, a name of one byte, attr, target flag, data flag
	minPlusEntrySize = 2 + 1 + AttrSize + 1 + 1
)

// ErrProtocol is wrapped by every error about malformed frames or
// payloads, and by a Client's error when its connection broke because of one.
var ErrProtocol = errors.New("protocol violation")

// Kind says what a frame is.
type Kind uint8

const (
	KindHello    Kind = 1 // server→client: server nonce
	KindAuth     Kind = 2 // client→server: client nonce and client MAC
	KindAuthOK   Kind = 3 // server→client: server MAC
	KindRequest  Kind = 4 // client→server: op and path
	KindResponse Kind = 5 // server→client: op.Result
)

// kindInfo is what DecodeHeader checks per kind.
type kindInfo struct {
	name      string
	handshake bool // op and id must be zero
	heartbeat bool // ping or pong: op zero, empty (checkHeartbeatHeader)
	size      int  // exact payload size; -1: any (up to MaxFrame)
}

// info is the one table of frame kinds: a new kind is one case here
// (plus its handling in server.go and client.go).
func (k Kind) info() (kindInfo, bool) {
	switch k {
	case KindHello:
		return kindInfo{name: "hello", handshake: true, size: NonceSize}, true
	case KindAuth:
		return kindInfo{name: "auth", handshake: true, size: NonceSize + MACSize}, true
	case KindAuthOK:
		return kindInfo{name: "auth-ok", handshake: true, size: MACSize}, true
	case KindRequest:
		return kindInfo{name: "request", size: -1}, true
	case KindResponse:
		return kindInfo{name: "response", size: -1}, true
	case KindPing:
		return kindInfo{name: "ping", heartbeat: true, size: -1}, true
	case KindPong:
		return kindInfo{name: "pong", heartbeat: true, size: -1}, true
	}
	return kindInfo{}, false
}

func (k Kind) String() string {
	if info, ok := k.info(); ok {
		return info.name
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Header is a decoded frame header.
type Header struct {
	Kind   Kind
	Op     op.Op  // zero for handshake kinds
	ID     uint64 // request id; zero for handshake kinds
	Length uint32 // payload bytes that follow
}

// AppendHeader appends the 20-byte encoding of h to b.
func AppendHeader(b []byte, h Header) []byte {
	b = append(b, magic0, magic1, Version, byte(h.Kind), byte(h.Op), 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, h.ID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// DecodeHeader decodes and checks the first HeaderSize bytes of b: magic,
// version, kind, reserved bytes, the op matching the kind, and the fixed
// payload sizes of handshake frames. It does not apply Config.MaxFrame.
func DecodeHeader(b []byte) (Header, error) {
	if h, ok := parseHeader(b); ok {
		return h, nil
	}
	if err := headerError(b); err != nil {
		return Header{}, err
	}
	return Header{}, fmt.Errorf("%w: malformed header % x", ErrProtocol, b[:HeaderSize])
}

// parseHeader is DecodeHeader's check without building an error: it runs
// for every frame on netpoll's reader goroutines, which start with a small
// stack, and the formatting calls of the error paths made its frame large
// enough to grow (copy) that stack on every frame.
func parseHeader(b []byte) (Header, bool) {
	if len(b) < HeaderSize || b[0] != magic0 || b[1] != magic1 || b[2] != Version || b[5]|b[6]|b[7] != 0 {
		return Header{}, false
	}
	h := Header{
		Kind:   Kind(b[3]),
		Op:     op.Op(b[4]),
		ID:     binary.BigEndian.Uint64(b[8:16]),
		Length: binary.BigEndian.Uint32(b[16:20]),
	}
	info, ok := h.Kind.info()
	switch {
	case !ok:
		return Header{}, false
	case info.heartbeat:
		if h.Op != 0 || h.Length != 0 {
			return Header{}, false
		}
	case info.handshake && (h.Op != 0 || h.ID != 0):
		return Header{}, false
	case !info.handshake && !h.Op.Valid():
		return Header{}, false
	case info.size >= 0 && h.Length != uint32(info.size):
		return Header{}, false
	}
	return h, true
}

// headerError says why parseHeader refused b; it is nil for a header
// parseHeader accepts (FuzzDecodeHeader holds the two to that).
//
//go:noinline
func headerError(b []byte) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("%w: header of %d bytes, want %d", ErrProtocol, len(b), HeaderSize)
	}
	if b[0] != magic0 || b[1] != magic1 {
		return fmt.Errorf("%w: bad magic %q", ErrProtocol, b[:2])
	}
	if b[2] != Version {
		return fmt.Errorf("%w: unsupported version %d (this copper speaks %d; every node of a job must run the same copper)", ErrProtocol, b[2], Version)
	}
	if b[5]|b[6]|b[7] != 0 {
		return fmt.Errorf("%w: non-zero reserved bytes % x", ErrProtocol, b[5:8])
	}
	h := Header{
		Kind:   Kind(b[3]),
		Op:     op.Op(b[4]),
		ID:     binary.BigEndian.Uint64(b[8:16]),
		Length: binary.BigEndian.Uint32(b[16:20]),
	}
	info, ok := h.Kind.info()
	switch {
	case !ok:
		return fmt.Errorf("%w: unknown frame %v", ErrProtocol, h.Kind)
	case info.heartbeat:
		return checkHeartbeatHeader(h)
	case info.handshake && (h.Op != 0 || h.ID != 0):
		return fmt.Errorf("%w: %v frame with op %d and id %d, want 0 and 0", ErrProtocol, h.Kind, h.Op, h.ID)
	case !info.handshake && !h.Op.Valid():
		return fmt.Errorf("%w: %v frame with unknown %v", ErrProtocol, h.Kind, h.Op)
	case info.size >= 0 && h.Length != uint32(info.size):
		return fmt.Errorf("%w: %v frame with %d payload bytes, want %d", ErrProtocol, h.Kind, h.Length, info.size)
	}
	return nil
}

// AppendRequest appends a whole request frame for (o, path) to b.
func AppendRequest(b []byte, id uint64, o op.Op, path string) []byte {
	b = AppendHeader(b, Header{Kind: KindRequest, Op: o, ID: id, Length: uint32(len(path))})
	return append(b, path...)
}

// AppendResponse appends a whole response frame carrying r to b. It fails,
// leaving b as it was, for a result the decoder would reject (an invalid
// entry name or link target, a field too long for its length prefix).
func AppendResponse(b []byte, id uint64, o op.Op, r op.Result) ([]byte, error) {
	start := len(b)
	b = AppendHeader(b, Header{Kind: KindResponse, Op: o, ID: id})
	b, err := appendResponsePayload(b, o, r)
	if err != nil {
		return b[:start], err
	}
	n := len(b) - start - HeaderSize
	if n > math.MaxUint32 {
		return b[:start], fmt.Errorf("cnet: %v response of %d bytes overflows the length field", o, n)
	}
	binary.BigEndian.PutUint32(b[start+16:], uint32(n))
	return b, nil
}

// appendResponseHead is AppendResponse for a Read result whose last
// tailLen data bytes are left out, to be sent separately; the header's
// length counts them.
func appendResponseHead(b []byte, id uint64, o op.Op, r op.Result, tailLen int) ([]byte, error) {
	if tailLen == 0 {
		return AppendResponse(b, id, o, r)
	}
	start := len(b)
	r.Data = r.Data[:len(r.Data)-tailLen]
	b, err := AppendResponse(b, id, o, r)
	if err != nil {
		return b, err
	}
	n := uint64(binary.BigEndian.Uint32(b[start+16:])) + uint64(tailLen)
	dataLen := uint64(binary.BigEndian.Uint32(b[len(b)-len(r.Data)-4:])) + uint64(tailLen)
	if n > math.MaxUint32 || dataLen > math.MaxUint32 {
		return b[:start], fmt.Errorf("cnet: read response of %d bytes overflows the length field", n)
	}
	binary.BigEndian.PutUint32(b[start+16:], uint32(n))
	binary.BigEndian.PutUint32(b[len(b)-len(r.Data)-4:], uint32(dataLen))
	return b, nil
}

// responsePayloadSize is the exact payload size appendResponsePayload
// produces for a valid result, so that frames are allocated once.
func responsePayloadSize(o op.Op, r op.Result) int {
	n := 4
	if r.Errno != 0 {
		return n
	}
	switch o {
	case op.IsReady:
		n++
	case op.Getattr:
		n += AttrSize
	case op.Readdir:
		n += 4
		for _, e := range r.Entries {
			n += 4 + 8 + 2 + len(e.Name)
		}
	case op.Readlink:
		n += 4 + len(r.Target)
	case op.Read, op.Chunk:
		n += AttrSize + 4 + len(r.Data)
	case op.DirPlus, op.DirPlusNext:
		n += PlusPageSize(r.Plus)
	}
	return n
}

func appendResponsePayload(b []byte, o op.Op, r op.Result) ([]byte, error) {
	if !o.Valid() {
		return b, fmt.Errorf("cnet: response for unknown %v", o)
	}
	if uint64(r.Errno) > math.MaxUint32 {
		return b, fmt.Errorf("cnet: %v errno %d does not fit 32 bits", o, uint64(r.Errno))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(r.Errno))
	if r.Errno != 0 {
		return b, nil
	}
	switch o {
	case op.IsReady:
		ready := byte(0)
		if r.Ready {
			ready = 1
		}
		b = append(b, ready)
	case op.Getattr:
		b = appendAttr(b, r.Attr)
	case op.Readdir:
		if len(r.Entries) > math.MaxUint32 {
			return b, fmt.Errorf("cnet: readdir of %d entries overflows the count field", len(r.Entries))
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.Entries)))
		for _, e := range r.Entries {
			if err := checkName(e.Name); err != nil {
				return b, err
			}
			b = binary.BigEndian.AppendUint32(b, e.Mode)
			b = binary.BigEndian.AppendUint64(b, e.Ino)
			b = binary.BigEndian.AppendUint16(b, uint16(len(e.Name)))
			b = append(b, e.Name...)
		}
	case op.Readlink:
		if err := checkTarget(r.Target); err != nil {
			return b, err
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.Target)))
		b = append(b, r.Target...)
	case op.Read, op.Chunk:
		if len(r.Data) > math.MaxUint32 {
			return b, fmt.Errorf("cnet: read of %d bytes overflows the length field", len(r.Data))
		}
		b = appendAttr(b, r.Attr)
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.Data)))
		b = append(b, r.Data...)
	case op.DirPlus, op.DirPlusNext:
		return appendPlus(b, r)
	}
	return b, nil
}

// DecodeResponse decodes a response payload for operation o. Result.Data
// aliases payload (no copy: the caller hands over a buffer it owns);
// names and targets are copied. Trailing bytes are an error.
func DecodeResponse(o op.Op, payload []byte) (op.Result, error) {
	return decodeResponse(o, payload, false)
}

// decodeResponse is DecodeResponse; borrowed says payload is a netpoll
// buffer released after the call, so Result.Data is copied out of it (the
// one copy of file data on the receiving side: the caller keeps the
// answer in its cache).
func decodeResponse(o op.Op, payload []byte, borrowed bool) (op.Result, error) {
	if !o.Valid() {
		return op.Result{}, fmt.Errorf("%w: response for unknown %v", ErrProtocol, o)
	}
	d := decoder{b: payload, what: o.String()}
	res := op.Result{Errno: syscall.Errno(d.u32())}
	if res.Errno == 0 {
		switch o {
		case op.IsReady:
			switch d.u8() {
			case 0:
			case 1:
				res.Ready = true
			default:
				d.fail("ready flag is neither 0 nor 1")
			}
		case op.Getattr:
			res.Attr = d.attr()
		case op.Readdir:
			res.Entries = d.entries()
		case op.Readlink:
			res.Target = string(d.bytes(d.u32()))
			if d.err == nil {
				if err := checkTarget(res.Target); err != nil {
					d.err = fmt.Errorf("%w: %w", ErrProtocol, err)
				}
			}
		case op.Read, op.Chunk:
			res.Attr = d.attr()
			res.Data = d.bytes(d.u32())
			if borrowed && res.Data != nil {
				res.Data = append(make([]byte, 0, len(res.Data)), res.Data...) // non-nil when empty
			}
		case op.DirPlus, op.DirPlusNext:
			res.Plus, res.More = d.plus(borrowed)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return op.Result{}, d.err
	}
	return res, nil
}

func appendAttr(b []byte, a op.Attr) []byte {
	b = binary.BigEndian.AppendUint64(b, a.Dev)
	b = binary.BigEndian.AppendUint64(b, a.Ino)
	b = binary.BigEndian.AppendUint32(b, a.Mode)
	b = binary.BigEndian.AppendUint32(b, a.Nlink)
	b = binary.BigEndian.AppendUint32(b, a.Uid)
	b = binary.BigEndian.AppendUint32(b, a.Gid)
	b = binary.BigEndian.AppendUint64(b, a.Rdev)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(a.Blocks))
	b = binary.BigEndian.AppendUint32(b, uint32(a.Blksize))
	b = binary.BigEndian.AppendUint64(b, uint64(a.AtimeNs))
	b = binary.BigEndian.AppendUint64(b, uint64(a.MtimeNs))
	return binary.BigEndian.AppendUint64(b, uint64(a.CtimeNs))
}

// checkName enforces what a directory entry name can be on Linux, so a
// broken or hostile peer cannot plant "../x" or "a/b" in a listing.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("cnet: invalid directory entry name %q", name)
	case len(name) > op.MaxNameLen:
		return fmt.Errorf("cnet: directory entry name of %d bytes exceeds %d", len(name), op.MaxNameLen)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("cnet: directory entry name %q contains '/' or NUL", name)
	}
	return nil
}

func checkTarget(target string) error {
	switch {
	case len(target) > op.MaxPathLen:
		return fmt.Errorf("cnet: link target of %d bytes exceeds %d", len(target), op.MaxPathLen)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("cnet: link target %q contains NUL", target)
	}
	return nil
}

// decoder reads big-endian fields from a payload; after the first error
// every read returns zero, so callers check err once at the end.
type decoder struct {
	b    []byte
	what string // op name, for messages
	err  error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s response: %s", ErrProtocol, d.what, msg)
	}
	d.b = nil
}

func (d *decoder) take(n int, field string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail(fmt.Sprintf("truncated %s: %d of %d bytes", field, len(d.b), n))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() byte {
	if p := d.take(1, "byte"); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2, "u16"); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4, "u32"); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8, "u64"); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// bytes returns the next n bytes, or nil after an error; a valid empty
// field is a non-nil empty slice so that a 0-byte file stays distinct.
func (d *decoder) bytes(n uint32) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < uint64(n) {
		d.fail(fmt.Sprintf("truncated field: %d of %d bytes", len(d.b), n))
		return nil
	}
	return d.take(int(n), "field")
}

func (d *decoder) attr() op.Attr {
	if d.err == nil && len(d.b) < AttrSize {
		d.fail(fmt.Sprintf("truncated attr: %d of %d bytes", len(d.b), AttrSize))
	}
	return op.Attr{
		Dev:     d.u64(),
		Ino:     d.u64(),
		Mode:    d.u32(),
		Nlink:   d.u32(),
		Uid:     d.u32(),
		Gid:     d.u32(),
		Rdev:    d.u64(),
		Size:    int64(d.u64()),
		Blocks:  int64(d.u64()),
		Blksize: int32(d.u32()),
		AtimeNs: int64(d.u64()),
		MtimeNs: int64(d.u64()),
		CtimeNs: int64(d.u64()),
	}
}

func (d *decoder) entries() []op.DirEntry {
	count := d.u32()
	// Bound the allocation by what the payload can hold, not by the claim.
	if d.err == nil && uint64(count)*minEntrySize > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("%d entries cannot fit in %d bytes", count, len(d.b)))
	}
	if d.err != nil {
		return nil
	}
	entries := make([]op.DirEntry, 0, count)
	for range count {
		e := op.DirEntry{Mode: d.u32(), Ino: d.u64()}
		e.Name = string(d.bytes(uint32(d.u16())))
		if d.err != nil {
			return nil
		}
		if err := checkName(e.Name); err != nil {
			d.err = fmt.Errorf("%w: %w", ErrProtocol, err)
			return nil
		}
		entries = append(entries, e)
	}
	return entries
}
