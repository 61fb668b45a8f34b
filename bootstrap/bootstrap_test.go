package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/tree"
)

// testBound keeps a broken test from hanging; it is never a speed claim.
const testBound = 30 * time.Second

// logSink is a slog.Handler that records lines so tests can wait for an
// event (a rank registered, a connection dropped) instead of sleeping.
type logSink struct {
	mu    sync.Mutex
	lines []string
	ch    chan string
}

func newLogSink() *logSink { return &logSink{ch: make(chan string, 1024)} }

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	line := b.String()
	s.mu.Lock()
	s.lines = append(s.lines, line)
	s.mu.Unlock()
	select {
	case s.ch <- line:
	default:
	}
	return nil
}

// waitFor blocks until a logged line contains every substring.
func (s *logSink) waitFor(t *testing.T, subs ...string) string {
	t.Helper()
	timeout := time.After(testBound)
	for {
		select {
		case line := <-s.ch:
			if containsAll(line, subs) {
				return line
			}
		case <-timeout:
			t.Fatalf("no log line with %q", subs)
		}
	}
}

func (s *logSink) count(subs ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if containsAll(l, subs) {
			n++
		}
	}
	return n
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// testKey is the job key of every gather in these tests.
var testKey = bytes.Repeat([]byte("k3y!"), 8)

func hello(rank, size int) Hello {
	return Hello{
		Rank: rank, Size: size,
		Host:       fmt.Sprintf("node%05d", rank),
		Endpoint:   fmt.Sprintf("10.%d.%d.%d:7000", rank>>16, (rank>>8)&255, rank&255),
		Interfaces: []string{fmt.Sprintf("hsn0=10.9.%d.%d", (rank>>8)&255, rank&255)},
		JobID:      "4242",
	}
}

type serveOutcome struct {
	res Result
	err error
}

// startServe runs Serve in the background; the channel yields its outcome.
func startServe(t testing.TB, ln net.Listener, size int, opts Options) <-chan serveOutcome {
	t.Helper()
	out := make(chan serveOutcome, 1)
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	t.Cleanup(cancel)
	go func() {
		res, err := Serve(ctx, ln, size, opts)
		out <- serveOutcome{res, err}
	}()
	return out
}

// startJoin runs Join for h in the background; the channel yields its
// outcome.
func startJoin(h Hello, opts Options) <-chan serveOutcome {
	out := make(chan serveOutcome, 1)
	go func() {
		res, err := Join(context.Background(), h, opts)
		out <- serveOutcome{res, err}
	}()
	return out
}

func await[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testBound):
		t.Fatal("timed out waiting for an outcome")
		panic("unreachable")
	}
}

// joinAll runs Join for each hello concurrently and returns outcomes by index.
func joinAll(t testing.TB, hellos []Hello, opts Options) []serveOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	out := make([]serveOutcome, len(hellos))
	var wg sync.WaitGroup
	for i, h := range hellos {
		wg.Go(func() {
			res, err := Join(ctx, h, opts)
			out[i] = serveOutcome{res, err}
		})
	}
	wg.Wait()
	return out
}

func TestGather(t *testing.T) {
	for _, size := range []int{1, 4, 2000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ln := listen(t)
			opts := Options{Key: testKey, Addr: ln.Addr().String(), Timeout: testBound}
			served := startServe(t, ln, size, opts)
			hellos := make([]Hello, size)
			for r := range hellos {
				hellos[r] = hello(r, size)
			}
			joined := joinAll(t, hellos, opts)
			srv := await(t, served)
			require.NoError(t, srv.err)

			want := make([]tree.Entry, size)
			for r, h := range hellos {
				want[r] = tree.Entry{Host: h.Host, Endpoint: h.Endpoint}
			}
			assert.Equal(t, want, srv.res.Book)
			nonces := map[string]bool{}
			for r, h := range srv.res.Seen {
				require.Len(t, h.Nonce, NonceLen, "rank %d nonce", r)
				nonces[string(h.Nonce)] = true
				h.Nonce = nil
				assert.Equal(t, hellos[r], h, "rank %d hello", r)
			}
			assert.Len(t, nonces, size, "every hello has its own nonce")
			assert.Equal(t, "4242", srv.res.JobID)
			for r, j := range joined {
				require.NoError(t, j.err, "rank %d", r)
				require.Equal(t, want, j.res.Book, "rank %d", r)
				require.Equal(t, "4242", j.res.JobID, "rank %d", r)
				require.Nil(t, j.res.Seen, "rank %d", r)
			}
		})
	}
}

func TestGatherJobID(t *testing.T) {
	tests := []struct {
		name      string
		proposals []string
		want      string // "" means a generated copper-... id
	}{
		{"rank 0 wins", []string{"a", "b", "b"}, "a"},
		{"first proposal when rank 0 has none", []string{"", "", "c", "d"}, "c"},
		{"generated when nobody proposes", []string{"", ""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t)
			opts := Options{Key: testKey, Addr: ln.Addr().String()}
			served := startServe(t, ln, len(tt.proposals), opts)
			hellos := make([]Hello, len(tt.proposals))
			for r, p := range tt.proposals {
				hellos[r] = hello(r, len(hellos))
				hellos[r].JobID = p
			}
			joined := joinAll(t, hellos, opts)
			srv := await(t, served)
			require.NoError(t, srv.err)
			if tt.want != "" {
				assert.Equal(t, tt.want, srv.res.JobID)
			} else {
				assert.Regexp(t, `^copper-[0-9a-f]{12}$`, srv.res.JobID)
			}
			for _, j := range joined {
				require.NoError(t, j.err)
				assert.Equal(t, srv.res.JobID, j.res.JobID)
			}
		})
	}
}

func TestGatherMissingRanks(t *testing.T) {
	ln := listen(t)
	opts := Options{Key: testKey, Addr: ln.Addr().String(), Timeout: 500 * time.Millisecond}
	const size = 16
	served := startServe(t, ln, size, opts)
	var hellos []Hello
	for r := range size {
		if r != 3 && (r < 7 || r > 9) {
			hellos = append(hellos, hello(r, size))
		}
	}
	// Joiners wait longer than rank 0's deadline, so they hear its reason.
	joinOpts := opts
	joinOpts.Timeout = testBound
	joined := joinAll(t, hellos, joinOpts)
	srv := await(t, served)
	require.Error(t, srv.err)
	assert.Contains(t, srv.err.Error(), "missing ranks 3,7-9 of 16 (12 joined)")
	for _, j := range joined {
		var remote *RemoteError
		require.ErrorAs(t, j.err, &remote)
		assert.Equal(t, opts.Addr, remote.Addr)
		assert.Contains(t, remote.Reason, "missing ranks 3,7-9 of 16")
		assert.Equal(t, "bootstrap: "+remote.Reason, srv.err.Error())
	}
}

// TestGatherNamesMissingHosts: with the allocation's host of each rank,
// every waiting rank hears which hosts never arrived, the first
// maxNamedHosts of them.
func TestGatherNamesMissingHosts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		missing func(r int) bool
		want    string
	}{
		{"one", 4, func(r int) bool { return r == 3 }, "missing rank 3 of 4 (3 joined); not heard from: node00003 (rank 3)"},
		{"many", 24, func(r int) bool { return r >= 10 }, "not heard from: node00010 (rank 10), node00011 (rank 11), node00012 (rank 12), node00013 (rank 13), node00014 (rank 14), node00015 (rank 15), node00016 (rank 16), node00017 (rank 17), ... and 6 more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t)
			hosts := make([]string, tc.size)
			for r := range hosts {
				hosts[r] = hello(r, tc.size).Host
			}
			opts := Options{Key: testKey, Addr: ln.Addr().String(), Timeout: 500 * time.Millisecond, Hosts: hosts}
			served := startServe(t, ln, tc.size, opts)
			var hellos []Hello
			for r := range tc.size {
				if !tc.missing(r) {
					hellos = append(hellos, hello(r, tc.size))
				}
			}
			joinOpts := opts
			joinOpts.Timeout = testBound
			joined := joinAll(t, hellos, joinOpts)
			srv := await(t, served)
			require.Error(t, srv.err)
			assert.Contains(t, srv.err.Error(), tc.want)
			for _, j := range joined {
				require.ErrorContains(t, j.err, tc.want)
			}
		})
	}
}

func TestGatherDuplicateRank(t *testing.T) {
	ln := listen(t)
	sink := newLogSink()
	opts := Options{Key: testKey, Addr: ln.Addr().String(), Logger: slog.New(sink)}
	served := startServe(t, ln, 3, opts)

	first := startJoin(hello(1, 3), opts)
	sink.waitFor(t, "rank joined", "rank=1")

	impostor := hello(1, 3)
	impostor.Host = "elsewhere"
	_, err := Join(context.Background(), impostor, opts)
	var remote *RemoteError
	require.ErrorAs(t, err, &remote)
	assert.Contains(t, remote.Reason, "rank 1 joined twice: first from host node00001")
	assert.Contains(t, remote.Reason, "again from host elsewhere")

	srv := await(t, served)
	require.ErrorContains(t, srv.err, "rank 1 joined twice")
	// The first registrant hears the same reason.
	f := await(t, first)
	require.ErrorAs(t, f.err, &remote)
	assert.Contains(t, remote.Reason, "rank 1 joined twice")
}

func TestGatherSizeMismatch(t *testing.T) {
	ln := listen(t)
	sink := newLogSink()
	opts := Options{Key: testKey, Addr: ln.Addr().String(), Logger: slog.New(sink)}
	served := startServe(t, ln, 4, opts)

	waiting := startJoin(hello(0, 4), opts)
	sink.waitFor(t, "rank joined", "rank=0")

	_, err := Join(context.Background(), hello(2, 8), opts)
	want := "rank 2 (host node00002) says the job has 8 ranks but rank 0 says 4"
	require.ErrorContains(t, err, want)
	require.ErrorContains(t, await(t, served).err, want)
	require.ErrorContains(t, await(t, waiting).err, want)
}

func TestGatherDuplicateEndpoint(t *testing.T) {
	ln := listen(t)
	opts := Options{Key: testKey, Addr: ln.Addr().String()}
	served := startServe(t, ln, 2, opts)
	a, b := hello(0, 2), hello(1, 2)
	b.Endpoint = a.Endpoint
	joined := joinAll(t, []Hello{a, b}, opts)
	require.ErrorContains(t, await(t, served).err, "share endpoint")
	for _, j := range joined {
		require.ErrorContains(t, j.err, "share endpoint")
	}
}

// rawFrame is a frame header with arbitrary fields, then the payload.
func rawFrame(magic string, version, k byte, length uint32, payload []byte) []byte {
	b := append([]byte(magic), version, k, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[4:8], length)
	return append(b, payload...)
}

func TestGatherSurvivesGarbage(t *testing.T) {
	ln := listen(t)
	sink := newLogSink()
	opts := Options{Key: testKey, Addr: ln.Addr().String(), Logger: slog.New(sink)}
	served := startServe(t, ln, 2, opts)

	h0 := hello(0, 2)
	h0.Nonce = make([]byte, NonceLen)
	validHello, err := encodeHello(h0, testKey, nil)
	require.NoError(t, err)
	// Each case's bytes are made for the connection's challenge; tagged
	// gives a body a valid tag for it, to reach the checks after it.
	type makeBytes func(challenge []byte) []byte
	fixed := func(b []byte) makeBytes { return func([]byte) []byte { return b } }
	tagged := func(body []byte) makeBytes {
		return func(ch []byte) []byte {
			return encodeFrame(kindHello, append(slices.Clip(body), helloTag(testKey, ch, body)...))
		}
	}
	body := func(h Hello) []byte { return appendHello(nil, h) }
	h1 := hello(1, 2)
	h1.Nonce = make([]byte, NonceLen)
	withRank := func(r int) Hello { h := h1; h.Rank = r; return h }
	noNonce := h1
	noNonce.Nonce = nil
	garbage := []struct {
		name  string
		bytes makeBytes
		log   string
	}{
		{"http", fixed([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), "not a copper bootstrap frame"},
		{"oversized", fixed(rawFrame("CB", Version, byte(kindHello), 1<<30, nil)), "exceeds the cap"},
		{"other version", fixed(rawFrame("CB", Version+1, byte(kindHello), uint32(len(validHello)), validHello)), "version"},
		{"version 3 (no challenge)", fixed(rawFrame("CB", 3, byte(kindHello), uint32(len(validHello)), validHello)), "frame version 3, this copper speaks 4"},
		{"wrong kind", fixed(encodeFrame(kindResult, []byte("{}"))), "expected a hello frame"},
		{"unknown kind", fixed(rawFrame("CB", Version, 99, 0, nil)), "unknown frame kind"},
		{"JSON body", tagged([]byte(`{"rank":1,"size":2,"host":"h","endpoint":"e"}`)), "hello:"},
		{"cut short", tagged(body(h1)[:10]), "hello:"},
		{"trailing data", tagged(append(body(h1), 0)), "1 bytes of trailing data"},
		{"huge rank", tagged(body(withRank(MaxRanks + 1))), "must be at most"},
		{"invalid hello", tagged(body(withRank(5))), "rank 5 outside"},
		{"no nonce", tagged(body(noNonce)), "nonce: 32 bytes wanted, 0 left"},
		{"truncated", fixed(rawFrame("CB", Version, byte(kindHello), 100, []byte("{"))), "payload"},
	}
	for _, g := range garbage {
		t.Run(g.name, func(t *testing.T) {
			c, challenge := dialRankZero(t, opts.Addr)
			_, err = c.Write(g.bytes(challenge))
			require.NoError(t, err)
			if g.name == "truncated" {
				// The payload never completes: hang up, as a crashed sender would.
				c.(*net.TCPConn).CloseWrite()
			}
			sink.waitFor(t, "dropped connection", g.log)
			// Rank 0 says why, then hangs up.
			c.SetReadDeadline(time.Now().Add(testBound))
			k, payload, err := readFrame(c, MaxHelloFrame)
			require.NoError(t, err)
			assert.Equal(t, kindError, k)
			assert.Contains(t, string(payload), g.log)
			_, err = c.Read(make([]byte, 1))
			assert.ErrorIs(t, err, io.EOF)
		})
	}

	// The gather is still alive and completes.
	joined := joinAll(t, []Hello{hello(0, 2), hello(1, 2)}, opts)
	srv := await(t, served)
	require.NoError(t, srv.err)
	for _, j := range joined {
		require.NoError(t, j.err)
		assert.Equal(t, srv.res.Book, j.res.Book)
	}
	assert.Equal(t, len(garbage), sink.count("dropped connection"))
}

func TestGatherRankRejoinsAfterHangingUp(t *testing.T) {
	ln := listen(t)
	sink := newLogSink()
	opts := Options{Key: testKey, Addr: ln.Addr().String(), Logger: slog.New(sink)}
	served := startServe(t, ln, 2, opts)

	h1 := hello(1, 2)
	h1.Nonce = make([]byte, NonceLen)
	c, challenge := dialRankZero(t, opts.Addr)
	payload, err := encodeHello(h1, testKey, challenge)
	require.NoError(t, err)
	_, err = c.Write(encodeFrame(kindHello, payload))
	require.NoError(t, err)
	sink.waitFor(t, "rank joined", "rank=1")
	c.Close()
	sink.waitFor(t, "closed before the verdict", "rank=1")

	joined := joinAll(t, []Hello{hello(0, 2), hello(1, 2)}, opts)
	require.NoError(t, await(t, served).err)
	for _, j := range joined {
		require.NoError(t, j.err)
	}
}

func TestJoinUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now

	opts := Options{Key: testKey, Addr: addr, Timeout: 300 * time.Millisecond, RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	_, err = Join(context.Background(), hello(3, 4), opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rank 0 at "+addr+" unreachable from rank 3")
	assert.Contains(t, err.Error(), "attempts")
}

func TestJoinWaitsForLateRankZero(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()

	sink := newLogSink()
	opts := Options{Key: testKey, Addr: addr, RetryInitial: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Logger: slog.New(sink)}
	joined := startJoin(hello(0, 1), opts)
	sink.waitFor(t, "retrying")
	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	served := startServe(t, ln, 1, opts)
	require.NoError(t, await(t, served).err)
	require.NoError(t, await(t, joined).err)
}

func TestJoinRejectsInvalidHello(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Hello)
		want string
	}{
		{"rank too big", func(h *Hello) { h.Rank = 4 }, "rank 4 outside 0..3"},
		{"no host", func(h *Hello) { h.Host = "" }, "host"},
		{"no endpoint", func(h *Hello) { h.Endpoint = "" }, "endpoint"},
		{"zero size", func(h *Hello) { h.Size, h.Rank = 0, 0 }, "size 0"},
		{"long job id", func(h *Hello) { h.JobID = strings.Repeat("j", 300) }, "job id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hello(1, 4)
			tt.edit(&h)
			// No address: the hello must be refused before any dialing.
			_, err := Join(context.Background(), h, Options{Key: testKey, Addr: "192.0.2.1:1"})
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// fakeRankZero answers one connection with the frame made for its hello
// (which it does not verify).
func fakeRankZero(t *testing.T, frame func(h Hello) []byte) string {
	t.Helper()
	ln := listen(t)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := c.Write(encodeFrame(kindChallenge, make([]byte, NonceLen))); err != nil {
			return
		}
		_, p, err := readFrame(c, MaxHelloFrame)
		if err != nil || len(p) < TagLen {
			return
		}
		if h, err := parseHello(p[:len(p)-TagLen]); err == nil {
			c.Write(frame(h))
		}
	}()
	return ln.Addr().String()
}

// resultFrame tags payload for nonce with key.
func resultFrame(key, nonce, payload []byte) []byte {
	return encodeFrame(kindResult, append(slices.Clip(payload), resultTag(key, nonce, sha256.Sum256(payload))...))
}

func TestJoinChecksResult(t *testing.T) {
	me := hello(1, 2)
	other := hello(0, 2)
	good := []tree.Entry{{Host: other.Host, Endpoint: other.Endpoint}, {Host: me.Host, Endpoint: me.Endpoint}}
	payload := func(book []tree.Entry) []byte {
		p, err := encodeResult(book, "j")
		require.NoError(t, err)
		return p
	}
	tagged := func(book []tree.Entry) func(Hello) []byte {
		return func(h Hello) []byte { return resultFrame(testKey, h.Nonce, payload(book)) }
	}
	fixed := func(frame []byte) func(Hello) []byte { return func(Hello) []byte { return frame } }
	otherKey := bytes.Repeat([]byte("othr"), 8)
	tests := []struct {
		name  string
		frame func(Hello) []byte
		want  string
	}{
		{"wrong size", tagged([]tree.Entry{{Host: "a", Endpoint: "b"}}), "book of 1 ranks, rank 1 expects 2"},
		{"not me", tagged([]tree.Entry{{Host: other.Host, Endpoint: other.Endpoint}, {Host: "x", Endpoint: "y"}}),
			"lists rank 1 as x y"},
		{"hello back", fixed(encodeFrame(kindHello, []byte("{}"))), "sent a hello frame"},
		{"error", fixed(encodeFrame(kindError, []byte("because"))), "failed the gather: because"},
		{"corrupt but tagged", func(h Hello) []byte { return resultFrame(testKey, h.Nonce, []byte("not deflate")) }, "inflating"},
		// Forgeries: nothing in them is used.
		{"untagged (v1 style)", fixed(encodeFrame(kindResult, payload(good)[:TagLen-1])), "has no tag"},
		{"tag made with another key", func(h Hello) []byte { return resultFrame(otherKey, h.Nonce, payload(good)) }, "rank 1: the result from rank 0 at"},
		{"replayed: tag for another nonce", func(Hello) []byte { return resultFrame(testKey, make([]byte, NonceLen), payload(good)) }, "forged, replayed"},
		{"book swapped under a valid tag", func(h Hello) []byte {
			f := resultFrame(testKey, h.Nonce, payload(good))
			forged := payload([]tree.Entry{good[0], {Host: me.Host, Endpoint: me.Endpoint + "0"}})
			return encodeFrame(kindResult, append(forged, f[len(f)-TagLen:]...))
		}, "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeRankZero(t, tt.frame)
			_, err := Join(context.Background(), me, Options{Key: testKey, Addr: addr, Timeout: testBound})
			require.ErrorContains(t, err, tt.want)
			assert.ErrorContains(t, err, addr)
		})
	}
	// The genuine article passes, so the checks above are what refuse.
	addr := fakeRankZero(t, tagged(good))
	res, err := Join(context.Background(), me, Options{Key: testKey, Addr: addr, Timeout: testBound})
	require.NoError(t, err)
	assert.Equal(t, good, res.Book)
}

// TestGatherRefusesImpostors: hellos without the job key's tag, or with a
// tag made with another key, are refused (logged with the peer address),
// never register their rank and never receive a book; the real ranks
// then gather normally.
func TestGatherRefusesImpostors(t *testing.T) {
	ln := listen(t)
	sink := newLogSink()
	opts := Options{Key: testKey, Addr: ln.Addr().String(), Logger: slog.New(sink)}
	served := startServe(t, ln, 2, opts)

	h1 := hello(1, 2)
	h1.Nonce = make([]byte, NonceLen)
	body := appendHello(nil, h1)
	otherKey := bytes.Repeat([]byte("othr"), 8)
	other := strings.Replace(string(body), "node00001", "node00009", 1)
	impostors := []struct {
		name    string
		payload func(challenge []byte) []byte
		log     string
	}{
		{"no tag (version 1 hello)", func([]byte) []byte { return body[:TagLen-1] }, "has no 32-byte tag"},
		{"untagged body", func([]byte) []byte { return body }, "does not hold this job's key"},
		{"zero tag", func([]byte) []byte { return append(slices.Clip(body), make([]byte, TagLen)...) }, "does not hold this job's key"},
		{"tag made with another key", func(ch []byte) []byte { return append(slices.Clip(body), helloTag(otherKey, ch, body)...) }, "does not hold this job's key"},
		{"tag of another body", func(ch []byte) []byte { return append([]byte(other), helloTag(testKey, ch, body)...) }, "does not hold this job's key"},
		// A hello recorded on another connection (this job's or an older
		// one's: the key outlives jobs) answers another challenge.
		{"replayed: tagged for another challenge", func([]byte) []byte {
			return append(slices.Clip(body), helloTag(testKey, make([]byte, NonceLen), body)...)
		}, "replayed a hello"},
	}
	for _, im := range impostors {
		t.Run(im.name, func(t *testing.T) {
			c, challenge := dialRankZero(t, opts.Addr)
			_, err := c.Write(encodeFrame(kindHello, im.payload(challenge)))
			require.NoError(t, err)
			sink.waitFor(t, "dropped connection", "peer="+c.LocalAddr().String(), im.log)
			c.SetReadDeadline(time.Now().Add(testBound))
			all, err := io.ReadAll(c)
			require.NoError(t, err)
			k, reason, err := readFrame(bytes.NewReader(all), MaxHelloFrame)
			require.NoError(t, err)
			assert.Equal(t, kindError, k, "an impostor gets a refusal, nothing else")
			assert.Contains(t, string(reason), im.log)
			assert.Len(t, all, headerLen+len(reason), "no bytes after the refusal")
		})
	}
	assert.Zero(t, sink.count("rank joined"), "no impostor registered a rank")

	// Rank 1, claimed by every impostor, joins as if they never came.
	joined := joinAll(t, []Hello{hello(0, 2), hello(1, 2)}, opts)
	srv := await(t, served)
	require.NoError(t, srv.err)
	for _, j := range joined {
		require.NoError(t, j.err)
		assert.Equal(t, "node00001", j.res.Book[1].Host)
	}
}

func TestKeyRequired(t *testing.T) {
	for _, key := range [][]byte{nil, make([]byte, MinKeyLen-1)} {
		_, err := Serve(context.Background(), listen(t), 1, Options{Key: key})
		require.ErrorContains(t, err, fmt.Sprintf("job key of %d bytes: want at least %d (key_file)", len(key), MinKeyLen))
		_, err = Join(context.Background(), hello(0, 1), Options{Key: key, Addr: "192.0.2.1:1"})
		require.ErrorContains(t, err, fmt.Sprintf("job key of %d bytes: want at least %d (key_file)", len(key), MinKeyLen))
	}
}

func TestServeCancelled(t *testing.T) {
	ln := listen(t)
	sink := newLogSink()
	opts := Options{Key: testKey, Addr: ln.Addr().String(), Logger: slog.New(sink)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		_, err := Serve(ctx, ln, 3, opts)
		served <- err
	}()
	waiting := make(chan error, 1)
	go func() {
		_, err := Join(context.Background(), hello(2, 3), opts)
		waiting <- err
	}()
	sink.waitFor(t, "rank joined", "rank=2")
	cancel()
	err := await(t, served)
	require.ErrorContains(t, err, "gather cancelled")
	require.ErrorContains(t, err, "missing ranks 0-1 of 3")
	require.ErrorContains(t, await(t, waiting), "missing ranks 0-1 of 3")
}

func TestJoinCancelled(t *testing.T) {
	ln := listen(t) // accepts into the backlog, never answers
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Join(ctx, hello(0, 2), Options{Key: testKey, Addr: ln.Addr().String()})
		done <- err
	}()
	cancel()
	require.ErrorIs(t, await(t, done), context.Canceled)
}

func TestServeRejectsBadSize(t *testing.T) {
	for _, size := range []int{0, -1, MaxRanks + 1} {
		_, err := Serve(context.Background(), listen(t), size, Options{Key: testKey})
		require.ErrorContains(t, err, fmt.Sprintf("job size %d", size))
	}
}

// BenchmarkGather runs the whole all-gather in this process: Serve and
// size Joins, each a real TCP connection over loopback (both ends of
// every connection are descriptors of this process).
func BenchmarkGather(b *testing.B) {
	for _, size := range []int{100, 2000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			hellos := make([]Hello, size)
			for r := range hellos {
				hellos[r] = hello(r, size)
			}
			for b.Loop() {
				ln := listen(b)
				opts := Options{Key: testKey, Addr: ln.Addr().String(), Timeout: testBound}
				served := startServe(b, ln, size, opts)
				for r, j := range joinAll(b, hellos, opts) {
					if j.err != nil {
						b.Fatalf("rank %d: %v", r, j.err)
					}
				}
				if srv := await(b, served); srv.err != nil {
					b.Fatal(srv.err)
				}
			}
		})
	}
}

// BenchmarkServe measures rank 0 alone: light clients send a pre-encoded
// hello and read the verdict without decoding it, so the time is Serve's
// (accepting, registering, encoding once, writing N copies).
func BenchmarkServe(b *testing.B) {
	for _, size := range []int{2000, 8000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			hellos := make([]Hello, size)
			for r := range hellos {
				hellos[r] = hello(r, size)
				hellos[r].Nonce = make([]byte, NonceLen)
			}
			for b.Loop() {
				ln := listen(b)
				addr := ln.Addr().String()
				served := startServe(b, ln, size, Options{Key: testKey, Addr: addr, Timeout: testBound})
				var wg sync.WaitGroup
				for r := range hellos {
					wg.Go(func() {
						c, err := net.Dial("tcp", addr)
						if err != nil {
							b.Errorf("rank %d: %v", r, err)
							return
						}
						defer c.Close()
						challenge, err := readChallenge(c)
						if err != nil {
							b.Errorf("rank %d: %v", r, err)
							return
						}
						p, err := encodeHello(hellos[r], testKey, challenge)
						if err == nil {
							_, err = c.Write(encodeFrame(kindHello, p))
						}
						if err != nil {
							b.Errorf("rank %d: %v", r, err)
							return
						}
						if k, _, err := readFrame(c, MaxResultFrame); err != nil || k != kindResult {
							b.Errorf("rank %d: %v %v", r, k, err)
						}
					})
				}
				wg.Wait()
				if srv := await(b, served); srv.err != nil {
					b.Fatal(srv.err)
				}
			}
		})
	}
}

// dialRankZero connects to rank 0 and reads the challenge it opens every
// connection with.
func dialRankZero(t *testing.T, addr string) (net.Conn, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(testBound)))
	challenge, err := readChallenge(c)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Time{}))
	return c, challenge
}
