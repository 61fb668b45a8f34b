package net

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"syscall"
	"testing"

	"github.com/cloudwego/netpoll"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

var sampleAttr = op.Attr{
	Dev: 0xfd01, Ino: math.MaxUint64, Mode: syscall.S_IFREG | 0o644, Nlink: 1,
	Uid: 1000, Gid: math.MaxUint32, Rdev: 7, Size: 1 << 40, Blocks: -1, Blksize: math.MinInt32,
	AtimeNs: -1, MtimeNs: math.MaxInt64, CtimeNs: math.MinInt64,
}

// successCases are results that must survive encode → decode unchanged.
func successCases() []struct {
	name string
	op   op.Op
	res  op.Result
} {
	return []struct {
		name string
		op   op.Op
		res  op.Result
	}{
		{"ready", op.IsReady, op.Result{Ready: true}},
		{"not ready", op.IsReady, op.Result{}},
		{"getattr", op.Getattr, op.Result{Attr: sampleAttr}},
		{"getattr zero attr", op.Getattr, op.Result{}},
		{"empty dir", op.Readdir, op.Result{Entries: []op.DirEntry{}}},
		{"dir", op.Readdir, op.Result{Entries: []op.DirEntry{
			{Name: "a", Mode: syscall.S_IFREG, Ino: 1},
			{Name: "sub", Mode: syscall.S_IFDIR, Ino: 2},
			{Name: "link", Mode: syscall.S_IFLNK, Ino: math.MaxUint64},
		}}},
		{"255-byte name", op.Readdir, op.Result{Entries: []op.DirEntry{{Name: strings.Repeat("n", op.MaxNameLen), Ino: 3}}}},
		{"UTF-8 names", op.Readdir, op.Result{Entries: []op.DirEntry{
			{Name: "naïve.py", Mode: syscall.S_IFREG}, {Name: "日本語", Mode: syscall.S_IFDIR}, {Name: "🦀 crab", Mode: syscall.S_IFREG},
		}}},
		{"relative link", op.Readlink, op.Result{Target: "../lib/libz.so.1"}},
		{"absolute UTF-8 link", op.Readlink, op.Result{Target: "/opt/ünïcode/bin"}},
		{"longest link", op.Readlink, op.Result{Target: strings.Repeat("x", op.MaxPathLen)}},
		{"empty link", op.Readlink, op.Result{Target: ""}},
		{"0-byte file", op.Read, op.Result{Attr: op.Attr{Mode: syscall.S_IFREG}, Data: []byte{}}},
		{"small file", op.Read, op.Result{Attr: sampleAttr, Data: []byte("print('hi')\n")}},
		{"chunk", op.Chunk, op.Result{Attr: sampleAttr, Data: bytes.Repeat([]byte{7, 0}, 1<<19)}},
		{"last chunk of one byte", op.Chunk, op.Result{Attr: sampleAttr, Data: []byte{9}}},
		{"1 MiB file", op.Read, op.Result{Attr: sampleAttr, Data: bytes.Repeat([]byte{0, 1, 0xff}, 1<<20/3)}},
		{"empty dirplus", op.DirPlus, op.Result{Plus: []op.PlusEntry{}}},
		{"dirplus", op.DirPlus, op.Result{Plus: []op.PlusEntry{
			{Name: "__init__.py", Attr: sampleAttr},
			{Name: "lib", Attr: op.Attr{Mode: syscall.S_IFLNK | 0o777, Ino: 7}, Target: "../lib64", HasTarget: true},
			{Name: "unreadable link", Attr: op.Attr{Mode: syscall.S_IFLNK | 0o777}},
			{Name: "日本語", Attr: op.Attr{Mode: syscall.S_IFDIR | 0o755}},
		}}},
		{"dirplus with files", op.DirPlus, op.Result{Plus: []op.PlusEntry{
			{Name: "a.pyc", Attr: op.Attr{Mode: syscall.S_IFREG | 0o644, Size: 5}, Data: []byte("hello"), HasData: true},
			{Name: "b", Attr: op.Attr{Mode: syscall.S_IFREG | 0o644, Size: 0}, Data: []byte{}, HasData: true},
			{Name: "big.so", Attr: op.Attr{Mode: syscall.S_IFREG | 0o755, Size: 1 << 30}},
			{Name: "c", Attr: op.Attr{Mode: syscall.S_IFREG | 0o644, Size: 2 << 10}, Data: bytes.Repeat([]byte{1, 2}, 1<<10), HasData: true},
		}}},
		{"dirplus page with more", op.DirPlusNext, op.Result{More: true, Plus: []op.PlusEntry{
			{Name: strings.Repeat("n", op.MaxNameLen), Attr: sampleAttr},
			{Name: "z", Attr: op.Attr{Mode: syscall.S_IFLNK}, Target: strings.Repeat("x", op.MaxPathLen), HasTarget: true},
		}}},
	}
}

var sampleErrnos = []syscall.Errno{
	syscall.ENOENT, syscall.ENOTDIR, syscall.EACCES, syscall.ELOOP, syscall.ENAMETOOLONG,
	syscall.EISDIR, syscall.EINVAL, syscall.EIO, syscall.ESTALE, syscall.EFBIG, syscall.Errno(math.MaxUint32),
}

func TestResponseRoundTrip(t *testing.T) {
	for i, tc := range successCases() {
		t.Run(tc.name, func(t *testing.T) {
			id := uint64(i) * 0x0101010101010101
			frame, err := AppendResponse([]byte("prefix"), id, tc.op, tc.res)
			require.NoError(t, err)
			require.Equal(t, "prefix", string(frame[:6]), "AppendResponse must append")
			frame = frame[6:]
			require.Len(t, frame, HeaderSize+responsePayloadSize(tc.op, tc.res), "size estimate is exact")

			h, err := DecodeHeader(frame)
			require.NoError(t, err)
			assert.Equal(t, Header{Kind: KindResponse, Op: tc.op, ID: id, Length: uint32(len(frame) - HeaderSize)}, h)
			got, err := DecodeResponse(tc.op, frame[HeaderSize:])
			require.NoError(t, err)
			assert.Equal(t, tc.res, got)
		})
	}
}

func TestErrnoRoundTrip(t *testing.T) {
	for _, o := range op.All {
		for _, errno := range sampleErrnos {
			t.Run(o.String()+"/"+errno.Error(), func(t *testing.T) {
				// Fields beside the errno are not sent: a failure carries only its errno.
				in := op.Result{Errno: errno, Ready: true, Attr: sampleAttr, Target: "t", Data: []byte("d"),
					Entries: []op.DirEntry{{Name: "x"}}}
				frame, err := AppendResponse(nil, 9, o, in)
				require.NoError(t, err)
				require.Len(t, frame, HeaderSize+4)
				got, err := DecodeResponse(o, frame[HeaderSize:])
				require.NoError(t, err)
				assert.Equal(t, op.Fail(errno), got)
			})
		}
	}
}

func TestRequestRoundTrip(t *testing.T) {
	for _, o := range op.All {
		for _, path := range []string{"/", "/usr/lib/python3/dist-packages/numpy/__init__.py", "/日本語/ü"} {
			frame := AppendRequest(nil, 42, o, path)
			h, err := DecodeHeader(frame)
			require.NoError(t, err)
			assert.Equal(t, Header{Kind: KindRequest, Op: o, ID: 42, Length: uint32(len(path))}, h)
			assert.Equal(t, path, string(frame[HeaderSize:]))
		}
	}
}

func TestHeaderLayout(t *testing.T) {
	got := AppendHeader(nil, Header{Kind: KindResponse, Op: op.Read, ID: 0x0102030405060708, Length: 0x0a0b0c0d})
	want := []byte{'C', 0xCE, 5, 5, 5, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d}
	assert.Equal(t, want, got)
}

func TestAppendResponseRejects(t *testing.T) {
	tests := []struct {
		name string
		op   op.Op
		res  op.Result
		want string
	}{
		{"unknown op", op.Op(99), op.Result{}, "unknown"},
		{"errno beyond 32 bits", op.Getattr, op.Result{Errno: syscall.Errno(1 << 40)}, "32 bits"},
		{"empty name", op.Readdir, op.Result{Entries: []op.DirEntry{{Name: ""}}}, "invalid directory entry name"},
		{"dot", op.Readdir, op.Result{Entries: []op.DirEntry{{Name: "."}}}, "invalid directory entry name"},
		{"dot dot", op.Readdir, op.Result{Entries: []op.DirEntry{{Name: ".."}}}, "invalid directory entry name"},
		{"slash", op.Readdir, op.Result{Entries: []op.DirEntry{{Name: "a/b"}}}, "contains '/'"},
		{"NUL", op.Readdir, op.Result{Entries: []op.DirEntry{{Name: "a\x00b"}}}, "contains '/' or NUL"},
		{"256-byte name", op.Readdir, op.Result{Entries: []op.DirEntry{{Name: strings.Repeat("n", 256)}}}, "exceeds 255"},
		{"long target", op.Readlink, op.Result{Target: strings.Repeat("t", op.MaxPathLen+1)}, "exceeds 4096"},
		{"NUL target", op.Readlink, op.Result{Target: "a\x00"}, "NUL"},
		{"dirplus bad name", op.DirPlus, op.Result{Plus: []op.PlusEntry{{Name: ".."}}}, "invalid directory entry name"},
		{"dirplus unsorted", op.DirPlus, op.Result{Plus: []op.PlusEntry{{Name: "b"}, {Name: "a"}}}, "not strictly sorted"},
		{"dirplus duplicate", op.DirPlusNext, op.Result{Plus: []op.PlusEntry{{Name: "a"}, {Name: "a"}}}, "not strictly sorted"},
		{"dirplus NUL target", op.DirPlus, op.Result{Plus: []op.PlusEntry{{Name: "l", Target: "a\x00", HasTarget: true}}}, "NUL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendResponse([]byte("keep"), 1, tc.op, tc.res)
			require.ErrorContains(t, err, tc.want)
			assert.Equal(t, "keep", string(b), "b is left as it was")
		})
	}
}

// payload builds a response payload from pieces: uint8/16/32/64 are
// encoded big-endian, strings and byte slices are copied.
// regAttr is an encoded attr of a regular file of size bytes.
func regAttr(size int64) []byte {
	return appendAttr(nil, op.Attr{Mode: syscall.S_IFREG | 0o644, Size: size})
}

func payload(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case uint8:
			b = append(b, v)
		case uint16:
			b = binary.BigEndian.AppendUint16(b, v)
		case uint32:
			b = binary.BigEndian.AppendUint32(b, v)
		case uint64:
			b = binary.BigEndian.AppendUint64(b, v)
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		default:
			panic("payload: unsupported part")
		}
	}
	return b
}

func TestDecodeResponseRejects(t *testing.T) {
	attr := appendAttr(nil, sampleAttr)
	entry := func(name string) []byte {
		return payload(uint32(syscall.S_IFREG), uint64(1), uint16(len(name)), name)
	}
	tests := []struct {
		name    string
		op      op.Op
		payload []byte
		want    string
	}{
		{"unknown op", op.Op(0), payload(uint32(0)), "unknown"},
		{"empty", op.Getattr, nil, "truncated u32"},
		{"short errno", op.Getattr, []byte{0, 0}, "truncated u32"},
		{"errno with trailing bytes", op.Read, payload(uint32(syscall.ENOENT), uint8(0)), "1 trailing bytes"},
		{"missing ready", op.IsReady, payload(uint32(0)), "truncated byte"},
		{"ready flag 2", op.IsReady, payload(uint32(0), uint8(2)), "neither 0 nor 1"},
		{"ready trailing", op.IsReady, payload(uint32(0), uint8(1), uint8(1)), "trailing"},
		{"short attr", op.Getattr, payload(uint32(0), attr[:AttrSize-1]), "truncated attr"},
		{"attr trailing", op.Getattr, payload(uint32(0), attr, uint8(0)), "trailing"},
		{"missing count", op.Readdir, payload(uint32(0)), "truncated u32"},
		{"count beyond payload", op.Readdir, payload(uint32(0), uint32(math.MaxUint32)), "cannot fit"},
		{"count above entries", op.Readdir, payload(uint32(0), uint32(2), entry("aaaaaaaaaaaaaaaaaaaaaa")), "truncated"},
		{"name length beyond payload", op.Readdir, payload(uint32(0), uint32(1), uint32(0), uint64(0), uint16(200), "x"), "truncated field"},
		{"dot dot entry", op.Readdir, payload(uint32(0), uint32(1), entry("..")), "invalid directory entry name"},
		{"slash in entry", op.Readdir, payload(uint32(0), uint32(1), entry("a/b")), "contains '/'"},
		{"empty entry", op.Readdir, payload(uint32(0), uint32(1), uint32(0), uint64(0), uint16(0), "abc"), "invalid directory entry name"},
		{"256-byte entry", op.Readdir, payload(uint32(0), uint32(1), entry(strings.Repeat("n", 256))), "exceeds 255"},
		{"dir trailing", op.Readdir, payload(uint32(0), uint32(1), entry("a"), uint8(0)), "trailing"},
		{"dirplus more flag 2", op.DirPlus, payload(uint32(0), uint8(2), uint32(0)), "neither 0 nor 1"},
		{"dirplus count beyond payload", op.DirPlus, payload(uint32(0), uint8(0), uint32(math.MaxUint32)), "cannot fit"},
		{"dirplus target flag 2", op.DirPlus, payload(uint32(0), uint8(0), uint32(1), uint16(1), "a", attr, uint8(2), uint8(0)), "neither 0 nor 1"},
		{"dirplus dot entry", op.DirPlus, payload(uint32(0), uint8(0), uint32(1), uint16(1), ".", attr, uint8(0), uint8(0)), "invalid directory entry name"},
		{"dirplus unsorted", op.DirPlusNext, payload(uint32(0), uint8(0), uint32(2), uint16(1), "b", attr, uint8(0), uint8(0), uint16(1), "a", attr, uint8(0), uint8(0)), "not strictly sorted"},
		{"dirplus without data flag (version 3 layout)", op.DirPlus, payload(uint32(0), uint8(0), uint32(1), uint16(1), "a", attr, uint8(0)), "cannot fit"},
		{"dirplus data flag 2", op.DirPlus, payload(uint32(0), uint8(0), uint32(1), uint16(1), "a", attr, uint8(0), uint8(2)), "neither 0 nor 1"},
		{"dirplus data beyond payload", op.DirPlus, payload(uint32(0), uint8(0), uint32(1), uint16(1), "a", regAttr(4), uint8(0), uint8(1), uint32(4), "abc"), "truncated field"},
		{"dirplus data of another size", op.DirPlus, payload(uint32(0), uint8(0), uint32(1), uint16(1), "a", regAttr(4), uint8(0), uint8(1), uint32(3), "abc"), "of size 4"},
		{"dirplus data of a directory", op.DirPlus, payload(uint32(0), uint8(0), uint32(1), uint16(1), "a", appendAttr(nil, op.Attr{Mode: syscall.S_IFDIR}), uint8(0), uint8(1), uint32(0)), "not a regular file"},
		{"dirplus target beyond payload", op.DirPlus, payload(uint32(0), uint8(0), uint32(1), uint16(1), "l", attr, uint8(1), uint32(99), "x"), "truncated field"},
		{"dirplus trailing", op.DirPlus, payload(uint32(0), uint8(0), uint32(0), uint8(0)), "trailing"},
		{"target beyond payload", op.Readlink, payload(uint32(0), uint32(10), "abc"), "truncated field"},
		{"NUL target", op.Readlink, payload(uint32(0), uint32(2), "a\x00"), "NUL"},
		{"long target", op.Readlink, payload(uint32(0), uint32(op.MaxPathLen+1), strings.Repeat("t", op.MaxPathLen+1)), "exceeds 4096"},
		{"read without attr", op.Read, payload(uint32(0), uint32(0)), "truncated attr"},
		{"data beyond payload", op.Read, payload(uint32(0), attr, uint32(5), "abcd"), "truncated field"},
		{"huge data length", op.Read, payload(uint32(0), attr, uint32(math.MaxUint32)), "truncated field"},
		{"read trailing", op.Read, payload(uint32(0), attr, uint32(1), "ab"), "trailing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := DecodeResponse(tc.op, tc.payload)
			require.ErrorIs(t, err, ErrProtocol)
			assert.ErrorContains(t, err, tc.want)
			assert.Equal(t, op.Result{}, res)
		})
	}
}

func TestDecodeHeaderRejects(t *testing.T) {
	valid := AppendHeader(nil, Header{Kind: KindRequest, Op: op.Getattr, ID: 1, Length: 3})
	edit := func(i int, v byte) []byte {
		b := bytes.Clone(valid)
		b[i] = v
		return b
	}
	handshake := func(k Kind, o op.Op, id uint64, n uint32) []byte {
		return AppendHeader(nil, Header{Kind: k, Op: o, ID: id, Length: n})
	}
	tests := []struct {
		name   string
		header []byte
		want   string
	}{
		{"short", valid[:HeaderSize-1], "header of 19 bytes"},
		{"bad magic", edit(0, 'X'), "bad magic"},
		{"bad magic second byte", edit(1, 0xCF), "bad magic"},
		{"version 0", edit(2, 0), "unsupported version 0"},
		{"version 1 (no server proof)", edit(2, 1), "unsupported version 1"},
		{"version 2 (no dirplus)", edit(2, 2), "unsupported version 2"},
		{"version 3 (no files in a dirplus)", edit(2, 3), "unsupported version 3 (this copper speaks 5"},
		{"version 4 (handshake proofs without the endpoint)", edit(2, 4), "unsupported version 4"},
		{"version 6", edit(2, 6), "unsupported version 6"},
		{"kind 0", edit(3, 0), "unknown frame kind(0)"},
		{"kind 8", edit(3, 8), "unknown frame kind(8)"},
		{"op 0 in request", edit(4, 0), "unknown op(0)"},
		{"op 9 in request", edit(4, 9), "unknown op(9)"},
		{"op 9 in response", handshake(KindResponse, op.Op(9), 1, 4), "unknown op(9)"},
		{"reserved byte 5", edit(5, 1), "reserved"},
		{"reserved byte 7", edit(7, 0x80), "reserved"},
		{"hello with op", handshake(KindHello, op.Read, 0, NonceSize), "hello frame with op"},
		{"auth with id", handshake(KindAuth, 0, 3, 0), "auth frame with op 0 and id 3"},
		{"short nonce", handshake(KindHello, 0, 0, NonceSize-1), "hello frame with 31 payload bytes"},
		{"odd auth size", handshake(KindAuth, 0, 0, 5), "auth frame with 5 payload bytes"},
		{"v1 auth size", handshake(KindAuth, 0, 0, MACSize), "auth frame with 32 payload bytes, want 64"},
		{"empty auth", handshake(KindAuth, 0, 0, 0), "auth frame with 0 payload bytes, want 64"},
		{"empty auth-ok", handshake(KindAuthOK, 0, 0, 0), "auth-ok frame with 0 payload bytes, want 32"},
		{"auth-ok with a byte", handshake(KindAuthOK, 0, 0, 1), "auth-ok frame with 1 payload bytes"},
		{"ping with op", handshake(KindPing, op.Read, 1, 0), "ping frame with op 5 and 0 payload bytes"},
		{"ping with payload", handshake(KindPing, 0, 1, 4), "ping frame with op 0 and 4 payload bytes"},
		{"pong with payload", handshake(KindPong, 0, 1, 1), "pong frame with op 0 and 1 payload bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeHeader(tc.header)
			require.ErrorIs(t, err, ErrProtocol)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// linkBuffer returns a netpoll reader holding data, as a connection's
// input buffer would.
func linkBuffer(t testing.TB, data []byte) *netpoll.LinkBuffer {
	lb := netpoll.NewLinkBuffer()
	t.Cleanup(func() { _ = lb.Close() })
	_, err := lb.WriteBinary(bytes.Clone(data))
	require.NoError(t, err)
	require.NoError(t, lb.Flush())
	return lb
}

func TestReadFrame(t *testing.T) {
	request := AppendRequest(nil, 5, op.Readdir, "/usr/lib")
	tests := []struct {
		name      string
		data      []byte
		max       uint32
		wantErr   string // empty: success
		wantClean bool
	}{
		{name: "request", data: request, max: 100},
		{name: "payload at the cap", data: request, max: uint32(len("/usr/lib"))},
		{name: "empty stream", data: nil, max: 100, wantErr: "", wantClean: true},
		{name: "truncated header", data: request[:HeaderSize-1], max: 100, wantErr: "truncated header: 19 of 20 bytes"},
		{name: "truncated payload", data: request[:len(request)-1], max: 100, wantErr: "truncated request payload: 7 of 8 bytes"},
		{name: "oversized", data: request, max: 7, wantErr: "8 payload bytes exceeds the 7-byte cap"},
		{name: "oversized without payload", data: request[:HeaderSize], max: 7, wantErr: "exceeds the 7-byte cap"},
		{name: "garbage", data: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), max: 100, wantErr: "bad magic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lb := linkBuffer(t, tc.data)
			h, p, err := readFrame(lb, tc.max)
			switch {
			case tc.wantClean:
				var fe *frameError
				require.ErrorAs(t, err, &fe)
				assert.True(t, fe.clean)
			case tc.wantErr != "":
				require.ErrorIs(t, err, ErrProtocol)
				assert.ErrorContains(t, err, tc.wantErr)
			default:
				require.NoError(t, err)
				assert.Equal(t, Header{Kind: KindRequest, Op: op.Readdir, ID: 5, Length: 8}, h)
				assert.Equal(t, "/usr/lib", string(p))
				assert.Zero(t, lb.Len(), "whole frame consumed")
			}
		})
	}
}

// seedFrames are valid frames of every kind, for fuzz seed corpora.
func seedFrames(t testing.TB) [][]byte {
	frames := [][]byte{
		append(AppendHeader(nil, Header{Kind: KindHello, Length: NonceSize}), make([]byte, NonceSize)...),
		AppendHeader(nil, Header{Kind: KindAuth}),
		append(AppendHeader(nil, Header{Kind: KindAuth, Length: NonceSize + MACSize}), bytes.Repeat([]byte{7}, NonceSize+MACSize)...),
		append(AppendHeader(nil, Header{Kind: KindAuthOK, Length: MACSize}), bytes.Repeat([]byte{9}, MACSize)...),
		AppendRequest(nil, 1, op.Getattr, "/a/b"),
		AppendPing(nil, 7),
		AppendHeader(nil, Header{Kind: KindPong, ID: 7}),
	}
	for i, tc := range successCases() {
		if len(tc.res.Data) > 4096 {
			continue // keep the corpus small
		}
		f, err := AppendResponse(nil, uint64(i), tc.op, tc.res)
		require.NoError(t, err)
		frames = append(frames, f)
	}
	f, err := AppendResponse(nil, 1, op.Read, op.Fail(syscall.ENOENT))
	require.NoError(t, err)
	return append(frames, f)
}

func FuzzDecodeHeader(f *testing.F) {
	for _, frame := range seedFrames(f) {
		f.Add(frame[:HeaderSize])
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: example\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		_, parsed := parseHeader(b)
		require.Equal(t, parsed, headerError(b) == nil, "the fast check and the error path agree")
		if err != nil {
			return
		}
		require.Equal(t, b[:HeaderSize], AppendHeader(nil, h), "accepted header must re-encode identically")
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, frame := range seedFrames(f) {
		if h, err := DecodeHeader(frame); err == nil && h.Kind == KindResponse {
			f.Add(uint8(h.Op), frame[HeaderSize:])
		}
	}
	f.Add(uint8(op.Readdir), payload(uint32(0), uint32(math.MaxUint32)))
	f.Fuzz(func(t *testing.T, o uint8, p []byte) {
		res, err := DecodeResponse(op.Op(o), p)
		q := bytes.Clone(p) // a netpoll buffer, reused after the call
		borrowed, berr := decodeResponse(op.Op(o), q, true)
		require.Equal(t, err == nil, berr == nil, "a borrowed payload decodes like an owned one")
		if err != nil {
			return
		}
		for i := range q {
			q[i] ^= 0xa5
		}
		require.Equal(t, res, borrowed, "nothing of a borrowed payload is kept")
		if len(borrowed.Data) > 0 {
			require.NotSame(t, &p[len(p)-len(borrowed.Data)], &borrowed.Data[0], "data of a borrowed payload is copied out of it")
		}
		for _, e := range borrowed.Plus {
			if e.HasData {
				require.Equal(t, e.Attr.Size, int64(len(e.Data)), "a dirplus entry's data is its whole file")
				require.True(t, e.Attr.IsRegular())
			}
		}
		again, err := appendResponsePayload(nil, op.Op(o), res)
		require.NoError(t, err, "an accepted response must be encodable")
		require.Equal(t, p, again, "accepted response must re-encode identically")
		require.Equal(t, len(p), responsePayloadSize(op.Op(o), res))
	})
}

// FuzzReadFrame feeds a byte stream through the reader the server and
// client use: it must never panic, and every frame it accepts must
// re-encode to exactly the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	frames := seedFrames(f)
	for _, frame := range frames {
		f.Add(frame)
	}
	f.Add(bytes.Join(frames, nil))
	f.Add(AppendHeader(nil, Header{Kind: KindRequest, Op: op.Read, ID: 1, Length: math.MaxUint32}))
	f.Fuzz(func(t *testing.T, stream []byte) {
		lb := linkBuffer(t, stream)
		consumed := 0
		for {
			h, p, err := readFrame(lb, 1<<16)
			if err != nil {
				_ = lb.Release()
				return
			}
			frame := append(AppendHeader(nil, h), p...) // before Release: p is borrowed
			_ = lb.Release()
			require.Equal(t, stream[consumed:consumed+len(frame)], frame)
			consumed += len(frame)
		}
	})
}

func TestAppendResponseHeadPlusTailIsTheFrame(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	res := op.Result{Attr: sampleAttr, Data: data}
	whole, err := AppendResponse(nil, 3, op.Read, res)
	require.NoError(t, err)
	for _, tail := range []int{0, 1, len(data) / 2, len(data)} {
		head, err := appendResponseHead(nil, 3, op.Read, res, tail)
		require.NoError(t, err)
		assert.Equal(t, whole, append(head, data[len(data)-tail:]...), "tail %d", tail)
	}
}
