package bootstrap

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/tree"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, k := range []kind{kindHello, kindResult, kindError, kindChallenge} {
		for _, p := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("ab"), 1000)} {
			got, payload, err := readFrame(bytes.NewReader(encodeFrame(k, p)), MaxHelloFrame)
			require.NoError(t, err)
			assert.Equal(t, k, got)
			assert.Equal(t, len(p), len(payload))
			assert.True(t, bytes.Equal(p, payload))
		}
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "reading frame header"},
		{"short header", []byte("CB\x01"), "reading frame header"},
		{"bad magic", []byte("XX\x01\x01\x00\x00\x00\x00"), "not a copper bootstrap frame"},
		{"version 1 (untagged)", []byte("CB\x01\x01\x00\x00\x00\x00"), "frame version 1"},
		{"version 2 (JSON hello)", []byte("CB\x02\x01\x00\x00\x00\x00"), "frame version 2, this copper speaks 4"},
		{"version 3 (no challenge)", []byte("CB\x03\x01\x00\x00\x00\x00"), "frame version 3, this copper speaks 4"},
		{"version 5", []byte("CB\x05\x01\x00\x00\x00\x00"), "frame version 5"},
		{"kind zero", []byte("CB\x04\x00\x00\x00\x00\x00"), "unknown frame kind 0"},
		{"kind five", []byte("CB\x04\x05\x00\x00\x00\x00"), "unknown frame kind 5"},
		{"over cap", []byte("CB\x04\x01\x00\x01\x00\x01"), "exceeds the cap of 65536"},
		{"short payload", []byte("CB\x04\x01\x00\x00\x00\x05abc"), "reading 5-byte hello payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readFrame(bytes.NewReader(tt.in), MaxHelloFrame)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, _, err := readFrame(bytes.NewReader([]byte("CB\x01\x01\x00\x00\x00\x00")), MaxHelloFrame)
	assert.ErrorIs(t, err, errVersion)
}

// nonced is hello(rank, size) with a nonce, as Join sends it.
func nonced(rank, size int) Hello {
	h := hello(rank, size)
	h.Nonce = bytes.Repeat([]byte{byte(rank)}, NonceLen)
	return h
}

func TestHelloValidate(t *testing.T) {
	ok := nonced(2, 4)
	require.NoError(t, ok.Validate())
	tests := []struct {
		name string
		edit func(*Hello)
		want string
	}{
		{"negative rank", func(h *Hello) { h.Rank = -1 }, "rank -1 outside 0..3"},
		{"rank = size", func(h *Hello) { h.Rank = 4 }, "rank 4 outside"},
		{"huge size", func(h *Hello) { h.Size = MaxRanks + 1 }, "size 1048577"},
		{"long host", func(h *Hello) { h.Host = strings.Repeat("h", 256) }, "host"},
		{"bad utf-8 host", func(h *Hello) { h.Host = "\xff" }, "host"},
		{"long endpoint", func(h *Hello) { h.Endpoint = strings.Repeat("e", 513) }, "endpoint"},
		{"many interfaces", func(h *Hello) { h.Interfaces = make([]string, 257) }, "257 interfaces"},
		{"long interface", func(h *Hello) { h.Interfaces = []string{strings.Repeat("i", 513)} }, "interface entry"},
		{"no nonce", func(h *Hello) { h.Nonce = nil }, "nonce of 0 bytes (want 32)"},
		{"short nonce", func(h *Hello) { h.Nonce = h.Nonce[:16] }, "nonce of 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nonced(2, 4)
			tt.edit(&h)
			require.ErrorContains(t, h.Validate(), tt.want)
		})
	}
}

func TestResultRoundTrip(t *testing.T) {
	book := []tree.Entry{{Host: "a", Endpoint: "1.2.3.4:5"}, {Host: "x4000c0s0b0n0", Endpoint: "[fe80::1]:7000"},
		{Host: "x4000c0s0b0n1", Endpoint: "[fe80::1]:7001"}, {Host: "x4000c0s0b0n1", Endpoint: "[fe80::1]:7001"}, // repeats
		{Host: "x4000", Endpoint: "[fe80::1]:70"}, {Host: "y", Endpoint: "1.2.3.4:5"}}
	payload, err := encodeResult(book, "job-1")
	require.NoError(t, err)
	got, err := decodeResult(payload, maxResultRaw)
	require.NoError(t, err)
	assert.Equal(t, Result{Book: book, JobID: "job-1"}, got)
}

// testChallenge stands for the challenge rank 0 opens a connection with.
var testChallenge = bytes.Repeat([]byte{7}, NonceLen)

func TestHelloRoundTrip(t *testing.T) {
	many := nonced(7, 8)
	many.Interfaces = []string{"hsn0=10.1.2.3", "ib0=fe80::1", "ü=1"}
	empty := nonced(0, 1)
	empty.Interfaces, empty.JobID = []string{}, ""
	big := nonced(MaxRanks-1, MaxRanks)
	big.Host, big.Endpoint = strings.Repeat("h", maxHostLen), strings.Repeat("e", maxEndpointLen)
	for _, h := range []Hello{nonced(0, 1), many, empty, big} {
		p, err := encodeHello(h, testKey, testChallenge)
		require.NoError(t, err)
		got, err := decodeHello(p, testKey, testChallenge)
		require.NoError(t, err)
		if len(h.Interfaces) == 0 {
			h.Interfaces = nil // an empty list and none mean the same
		}
		assert.Equal(t, h, got)
	}
}

func TestHelloTag(t *testing.T) {
	h := nonced(1, 2)
	p, err := encodeHello(h, testKey, testChallenge)
	require.NoError(t, err)
	got, err := decodeHello(p, testKey, testChallenge)
	require.NoError(t, err)
	assert.Equal(t, h, got)

	_, err = decodeHello(p, bytes.Repeat([]byte("othr"), 8), testChallenge)
	require.ErrorIs(t, err, errBadTag)
	_, err = decodeHello(p, testKey, bytes.Repeat([]byte{9}, NonceLen))
	require.ErrorIs(t, err, errBadTag, "a hello made for another connection's challenge")
	flipped := bytes.Clone(p)
	flipped[10] ^= 1
	_, err = decodeHello(flipped, testKey, testChallenge)
	require.ErrorIs(t, err, errBadTag)
	_, err = decodeHello(p[:TagLen-1], testKey, testChallenge)
	require.ErrorContains(t, err, "has no 32-byte tag")
}

func TestOpenResult(t *testing.T) {
	body := []byte("compressed result bytes")
	nonce := bytes.Repeat([]byte{5}, NonceLen)
	frame := resultFrame(testKey, nonce, body)
	payload := frame[headerLen:]
	got, err := openResult(payload, testKey, nonce)
	require.NoError(t, err)
	assert.Equal(t, body, got)
	for name, tc := range map[string]struct{ payload, key, nonce []byte }{
		"other nonce":  {payload, testKey, bytes.Repeat([]byte{6}, NonceLen)},
		"other key":    {payload, bytes.Repeat([]byte("othr"), 8), nonce},
		"body changed": {append([]byte("C"), payload[1:]...), testKey, nonce},
	} {
		_, err := openResult(tc.payload, tc.key, tc.nonce)
		require.ErrorIs(t, err, errBadTag, name)
	}
	_, err = openResult(payload[:TagLen-1], testKey, nonce)
	require.ErrorContains(t, err, "has no tag")
}

// deflated compresses raw result bytes, to hand-craft bad payloads.
func deflated(t *testing.T, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := flate.NewWriter(&buf, flate.BestSpeed)
	require.NoError(t, err)
	_, err = zw.Write(raw)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestDecodeResultErrors(t *testing.T) {
	entry := "\x00\x01h\x00\x01e" // host "h", endpoint "e", nothing shared
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"empty", "", "truncated"},
		{"no entries", "\x00", "book of 0 entries"},
		{"too many entries", string(binary.AppendUvarint(nil, MaxRanks+1)), "book of 1048577 entries"},
		{"more entries than bytes", "\x7f" + entry, "book of 127 entries in 7 bytes"},
		{"truncated entry", "\x01\x00\x05ab", "book entry 0"},
		{"empty host", "\x01\x00\x00\x00\x01e\x01j", "empty host or endpoint"},
		{"long host", "\x01\x00" + string(binary.AppendUvarint(nil, 300)), "host of 300 bytes"},
		{"long host by sharing", "\x02" + "\x00\xff\x01" + strings.Repeat("h", 255) + "\x00\x01e" + "\xff\x01\x01h\x00\x01e\x01j",
			"book entry 1: host of 256 bytes (max 255)"},
		{"shares more than the previous", "\x02" + entry + "\x02\x01h\x00\x01e\x01j", "book entry 1: host shares 2 bytes with the previous one of 1"},
		{"first entry shares", "\x01\x01\x01h\x00\x01e\x01j", "book entry 0: host shares 1 bytes with the previous one of 0"},
		{"endpoint shares too much", "\x02" + entry + "\x00\x01h\x05\x00\x01j", "book entry 1: endpoint shares 5 bytes"},
		{"no job id", "\x01" + entry + "\x00", "empty job id"},
		{"short job id", "\x01" + entry + "\x03j", "job id: 3 bytes wanted, 1 left"},
		{"trailing (a v1 token)", "\x01" + entry + "\x01j" + strings.Repeat("t", 32), "32 bytes of trailing data"},
		{"overlong varint", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "overlong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeResult(deflated(t, []byte(tt.raw)), maxResultRaw)
			require.ErrorContains(t, err, tt.want)
		})
	}
	// A small payload that inflates past the cap is refused, not buffered.
	_, err := decodeResult(deflated(t, make([]byte, 1<<20)), 1<<16)
	require.ErrorContains(t, err, "inflates beyond 65536 bytes")
}

func TestFormatRanks(t *testing.T) {
	tests := []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{3}, "3"},
		{[]int{3, 7, 8, 9}, "3,7-9"},
		{[]int{0, 1, 2, 3}, "0-3"},
		{[]int{1, 3, 5, 6}, "1,3,5-6"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, formatRanks(tt.in), "%v", tt.in)
	}
	var scattered []int
	for r := 0; r < 2*(maxListedRanges+10); r += 2 {
		scattered = append(scattered, r)
	}
	s := formatRanks(scattered)
	assert.True(t, strings.HasPrefix(s, "0,2,4,"), s)
	assert.True(t, strings.HasSuffix(s, ",... and 10 more ranges"), s)
}

// FuzzFrame feeds arbitrary bytes to everything that parses what arrives on
// a bootstrap connection: the frame reader, then the hello or result
// checks. Random bytes stop at the tags; FuzzHelloBody and
// FuzzResultPayload reach the decoders behind them.
func FuzzFrame(f *testing.F) {
	h, err := encodeHello(nonced(1, 2), testKey, testChallenge)
	require.NoError(f, err)
	res, err := encodeResult([]tree.Entry{{Host: "a", Endpoint: "b:1"}}, "j")
	require.NoError(f, err)
	nonce := bytes.Repeat([]byte{1}, NonceLen)
	for _, seed := range [][]byte{
		encodeFrame(kindHello, h),
		resultFrame(testKey, nonce, res),
		encodeFrame(kindError, []byte("missing ranks 3,7-9 of 16")),
		encodeFrame(kindChallenge, testChallenge),
		encodeFrame(kindHello, []byte(`{"rank":0,"size":1,"host":"h","endpoint":"e","x":1}`)),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		[]byte("CB\x03\x01\xff\xff\xff\xff"),
		[]byte("CB\x02\x01\x00\x00\x00\x00"),
		nil,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, payload, err := readFrame(bytes.NewReader(data), MaxHelloFrame)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(payload), MaxHelloFrame)
		require.Equal(t, data[headerLen:headerLen+len(payload)], payload)
		switch k {
		case kindHello:
			h, err := decodeHello(payload, testKey, testChallenge)
			if err != nil {
				return
			}
			require.NoError(t, h.Validate())
			again, err := encodeHello(h, testKey, testChallenge)
			require.NoError(t, err)
			h2, err := decodeHello(again, testKey, testChallenge)
			require.NoError(t, err)
			require.Equal(t, h, h2)
		case kindResult:
			body, err := openResult(payload, testKey, nonce)
			if err != nil {
				return
			}
			r, err := decodeResult(body, 1<<20)
			if err != nil {
				return
			}
			require.NotEmpty(t, r.Book)
			again, err := encodeResult(r.Book, r.JobID)
			require.NoError(t, err)
			r2, err := decodeResult(again, 1<<20)
			require.NoError(t, err)
			require.Equal(t, r, r2)
		}
	})
}

// FuzzHelloBody fuzzes the hello body behind a valid tag: what a rank
// holding the key could send.
func FuzzHelloBody(f *testing.F) {
	many := nonced(2, 5)
	many.Interfaces = []string{"hsn0=10.0.0.1", "hsn1=10.0.0.2", "ib0=fe80::1"}
	for _, h := range []Hello{nonced(0, 1), nonced(3, 9), hello(1, 2), many} {
		b := appendHello(nil, h)
		f.Add(b)
		f.Add(b[:len(b)-1])              // nonce cut short
		f.Add(append(slices.Clip(b), 0)) // trailing byte
	}
	f.Add([]byte(`{"rank":0,"size":1,"host":"h","endpoint":"e","x":1}`))
	f.Add([]byte("\x00\x01\x01h\x01e\x00\xff\xff\x03"))       // 2^14+ interfaces
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")) // overlong rank
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := decodeHello(append(slices.Clip(body), helloTag(testKey, testChallenge, body)...), testKey, testChallenge)
		if err != nil {
			return
		}
		require.NoError(t, h.Validate())
		again, err := encodeHello(h, testKey, testChallenge)
		require.NoError(t, err)
		h2, err := decodeHello(again, testKey, testChallenge)
		require.NoError(t, err)
		require.Equal(t, h, h2)
	})
}

// FuzzResultPayload fuzzes the inflated result decoder directly: random
// bytes rarely survive inflation, so FuzzFrame alone would seldom reach it.
func FuzzResultPayload(f *testing.F) {
	for _, seed := range []string{
		"\x01\x00\x01h\x00\x01e\x01j",
		"\x02\x00\x01a\x00\x03b:1\x00\x01c\x00\x03d:2\x05job-1",
		"\x02\x00\x05node1\x00\x0610.0.1\x04\x012\x05\x012\x01j", // shared prefixes
		"\x02\x00\x01a\x00\x01b\x02\x00\x00\x00\x01j",            // shares more than the previous has
		"\x02\x00\x01a\x00\x01b\x01\x00\x01\x00\x01j",            // a whole repeat: legal
		"\x00", "\x7f\x00\x01h\x00\x01e", "\xff\xff\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := parseResult(raw)
		if err != nil {
			return
		}
		require.NotEmpty(t, r.Book)
		require.NotEmpty(t, r.JobID)
		for _, e := range r.Book {
			require.NotEmpty(t, e.Host)
			require.NotEmpty(t, e.Endpoint)
		}
		again, err := encodeResult(r.Book, r.JobID)
		require.NoError(t, err)
		r2, err := decodeResult(again, int64(len(raw)))
		require.NoError(t, err)
		require.Equal(t, r, r2)
	})
}

func TestLocalInterfaces(t *testing.T) {
	ifaces, err := LocalInterfaces()
	require.NoError(t, err)
	assert.LessOrEqual(t, len(ifaces), maxInterfaces)
	for _, s := range ifaces {
		name, addr, ok := strings.Cut(s, "=")
		require.True(t, ok, s)
		assert.NotEmpty(t, name)
		assert.NotContains(t, []string{"127.0.0.1", "::1"}, addr, "loopback listed: %s", s)
	}
	// Whatever it lists must fit in a hello.
	h := nonced(0, 1)
	h.Interfaces = ifaces
	require.NoError(t, h.Validate())
}
