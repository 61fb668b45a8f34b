package net

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	stdnet "net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// hangGuard bounds every blocking step of a test; reaching it is a
// failure, never a measurement.
const hangGuard = 10 * time.Second

// echo answers with data derived from the path, so that every answer can
// be checked and a misdelivered one is noticed.
func echo(_ context.Context, o op.Op, path string) op.Result {
	if strings.HasPrefix(path, "/errno/") {
		var n int
		fmt.Sscanf(path, "/errno/%d", &n)
		return op.Fail(syscall.Errno(n))
	}
	attr := op.Attr{Ino: uint64(len(path)), Size: int64(len(path)), Mode: syscall.S_IFREG | 0o644, MtimeNs: int64(len(path)) << 20}
	switch o {
	case op.IsReady:
		return op.Result{Ready: len(path)%2 == 0}
	case op.Getattr:
		return op.Result{Attr: attr}
	case op.Readdir:
		return op.Result{Entries: []op.DirEntry{
			{Name: fmt.Sprintf("a-%d", len(path)), Mode: syscall.S_IFREG, Ino: 1},
			{Name: "b", Mode: syscall.S_IFDIR, Ino: attr.Ino},
		}}
	case op.Readlink:
		return op.Result{Target: "target-of" + path}
	case op.Read:
		return op.Result{Attr: attr, Data: bytes.Repeat([]byte(path), 3)}
	}
	return op.Fail(syscall.ENOSYS)
}

// logBuffer collects a server's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// line returns the first log line containing every one of parts.
func (l *logBuffer) line(parts ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
next:
	for sc.Scan() {
		for _, p := range parts {
			if !strings.Contains(sc.Text(), p) {
				continue next
			}
		}
		return sc.Text()
	}
	return ""
}

func testLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			lb.mu.Lock()
			t.Logf("log:\n%s", lb.buf.String())
			lb.mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// testToken is the job token of every test server and client that does
// not test authentication itself.
var testToken = []byte("net-test-job-token-0123456789")

// tok gives cfg the test token unless it has one.
func tok(cfg Config) Config {
	if cfg.Token == nil {
		cfg.Token = testToken
	}
	return cfg
}

func startServer(t *testing.T, h Handler, cfg Config) *Server {
	t.Helper()
	s, err := Listen(context.Background(), "127.0.0.1:0", h, tok(cfg))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

func dial(t *testing.T, addr string, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	c, err := Dial(ctx, addr, tok(cfg))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

func TestCallEveryOp(t *testing.T) {
	s := startServer(t, echo, Config{})
	c := dial(t, s.Addr(), Config{})
	for _, o := range op.All {
		if o == op.Chunk {
			continue // its path is a ChunkReq: TestCallChunk
		}
		for _, path := range []string{"/", "/usr/lib/libc.so.6", "/日本語/naïve.py", "/" + strings.Repeat("n", op.MaxNameLen)} {
			res, err := c.Call(callCtx(t), o, path)
			require.NoError(t, err)
			assert.Equal(t, echo(nil, o, path), res, "%v %s", o, path)
		}
	}
}

func TestLargeReads(t *testing.T) {
	sizes := []int{0, inlineData, inlineData + 1, 128 << 10, DefaultMaxFrame - 4 - AttrSize - 4} // the last one fills MaxFrame exactly
	s := startServer(t, func(_ context.Context, _ op.Op, path string) op.Result {
		var n int
		fmt.Sscanf(path, "/file/%d", &n)
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		return op.Result{Attr: op.Attr{Size: int64(n)}, Data: data}
	}, Config{})
	c := dial(t, s.Addr(), Config{})
	for _, n := range sizes {
		res, err := c.Call(callCtx(t), op.Read, fmt.Sprintf("/file/%d", n))
		require.NoError(t, err)
		require.Len(t, res.Data, n)
		assert.Equal(t, int64(n), res.Attr.Size)
		for i, b := range res.Data {
			if b != byte(i*7) {
				t.Fatalf("size %d: byte %d is %d, want %d", n, i, b, byte(i*7))
			}
		}
	}
}

func TestErrnoTravelsUnchanged(t *testing.T) {
	s := startServer(t, echo, Config{})
	c := dial(t, s.Addr(), Config{})
	for _, o := range op.All {
		if o == op.Chunk {
			continue // its path is a ChunkReq: TestCallChunk
		}
		for _, errno := range sampleErrnos {
			res, err := c.Call(callCtx(t), o, fmt.Sprintf("/errno/%d", uint32(errno)))
			require.NoError(t, err)
			assert.Equal(t, op.Fail(errno), res, "%v %v", o, errno)
		}
	}
}

func TestBadPathAnsweredWithCheckPathErrno(t *testing.T) {
	handled := make(chan string, 10)
	s := startServer(t, func(ctx context.Context, o op.Op, path string) op.Result {
		handled <- path
		return echo(ctx, o, path)
	}, Config{})
	c := dial(t, s.Addr(), Config{})
	long := "/" + strings.Repeat("n", op.MaxNameLen+1)
	for _, path := range []string{"", "relative", "/a/", "/a//b", "/a/./b", "/a/../b", "/a\x00b", long} {
		want := op.Fail(op.CheckPath(path))
		require.NotZero(t, want.Errno)

		// The server answers a bad path itself, as the client does locally.
		raw := rawDial(t, s.Addr(), testToken)
		raw.send(t, AppendRequest(nil, 77, op.Getattr, path))
		h, p := raw.recv(t)
		assert.Equal(t, Header{Kind: KindResponse, Op: op.Getattr, ID: 77, Length: 4}, h)
		res, err := DecodeResponse(op.Getattr, p)
		require.NoError(t, err)
		assert.Equal(t, want, res, "server answer for %q", path)

		res, err = c.Call(callCtx(t), op.Getattr, path)
		require.NoError(t, err)
		assert.Equal(t, want, res, "client answer for %q", path)
	}
	assert.Empty(t, handled, "the handler never sees a bad path")
}

func TestThousandConcurrentCallsOnOneClient(t *testing.T) {
	s := startServer(t, echo, Config{})
	c := dial(t, s.Addr(), Config{})
	const n = 1000
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o := op.All[i%(len(op.All)-1)] // not Chunk: its path is a ChunkReq
			path := fmt.Sprintf("/dir%d/file-%d", i%7, i)
			res, err := c.Call(callCtx(t), o, path)
			switch {
			case err != nil:
				errs <- err
			case !assert.ObjectsAreEqual(echo(nil, o, path), res):
				errs <- fmt.Errorf("%v %s: wrong answer %+v", o, path, res)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// blocker is a handler that holds paths under /block until released.
type blocker struct {
	started chan string
	release chan struct{}
	ctxDone chan string // paths whose handler saw its ctx end
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 100), release: make(chan struct{}), ctxDone: make(chan string, 100)}
}

func (b *blocker) handle(ctx context.Context, o op.Op, path string) op.Result {
	if strings.HasPrefix(path, "/block") {
		b.started <- path
		select {
		case <-b.release:
		case <-ctx.Done():
			b.ctxDone <- path
			return op.Fail(syscall.EINTR)
		}
	}
	return echo(ctx, o, path)
}

func (b *blocker) waitStarted(t *testing.T, path string) {
	t.Helper()
	select {
	case got := <-b.started:
		require.Equal(t, path, got)
	case <-time.After(hangGuard):
		t.Fatalf("handler for %s never started", path)
	}
}

type callResult struct {
	res op.Result
	err error
}

func callAsync(c *Client, ctx context.Context, o op.Op, path string) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		res, err := c.Call(ctx, o, path)
		ch <- callResult{res, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan callResult) callResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(hangGuard):
		t.Fatal("call never returned")
		return callResult{}
	}
}

func TestSlowHandlerDoesNotBlockOthers(t *testing.T) {
	b := newBlocker()
	s := startServer(t, b.handle, Config{})
	c := dial(t, s.Addr(), Config{})

	slow := callAsync(c, callCtx(t), op.Read, "/block/slow")
	b.waitStarted(t, "/block/slow")
	for _, o := range op.All[:len(op.All)-1] { // not Chunk: its path is a ChunkReq
		res, err := c.Call(callCtx(t), o, "/fast")
		require.NoError(t, err)
		assert.Equal(t, echo(nil, o, "/fast"), res)
	}
	select {
	case <-slow:
		t.Fatal("slow call answered before its handler was released")
	default:
	}
	close(b.release)
	r := await(t, slow)
	require.NoError(t, r.err)
	assert.Equal(t, echo(nil, op.Read, "/block/slow"), r.res)
}

func TestCallContextEnds(t *testing.T) {
	b := newBlocker()
	s := startServer(t, b.handle, Config{})
	c := dial(t, s.Addr(), Config{})

	ctx, cancel := context.WithCancel(context.Background())
	pending := callAsync(c, ctx, op.Getattr, "/block/cancelled")
	b.waitStarted(t, "/block/cancelled")
	cancel()
	r := await(t, pending)
	assert.Equal(t, context.Canceled, r.err)

	deadlineCtx, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	timedOut := callAsync(c, deadlineCtx, op.Getattr, "/block/deadline")
	r = await(t, timedOut)
	assert.Equal(t, context.DeadlineExceeded, r.err)

	// The late answers are dropped; the connection keeps working.
	close(b.release)
	for i := range 20 {
		path := fmt.Sprintf("/after/%d", i)
		res, err := c.Call(callCtx(t), op.Getattr, path)
		require.NoError(t, err)
		assert.Equal(t, echo(nil, op.Getattr, path), res)
	}

	_, err := c.Call(ctx, op.Getattr, "/already-cancelled")
	assert.Equal(t, context.Canceled, err)
}

func TestHandlerContextEndsWithConnection(t *testing.T) {
	b := newBlocker()
	s := startServer(t, b.handle, Config{})
	c := dial(t, s.Addr(), Config{})
	pending := callAsync(c, callCtx(t), op.Read, "/block/orphan")
	b.waitStarted(t, "/block/orphan")
	require.NoError(t, c.Close())

	r := await(t, pending)
	require.ErrorIs(t, r.err, ErrClosed)
	select {
	case path := <-b.ctxDone:
		assert.Equal(t, "/block/orphan", path)
	case <-time.After(hangGuard):
		t.Fatal("handler context did not end when its connection closed")
	}
	_, err := c.Call(callCtx(t), op.Getattr, "/x")
	require.ErrorIs(t, err, ErrClosed)
}

func TestBrokenConnectionFailsPendingAndLaterCalls(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	s := startServer(t, b.handle, Config{})
	c := dial(t, s.Addr(), Config{})
	pending := callAsync(c, callCtx(t), op.Readdir, "/block/pending")
	b.waitStarted(t, "/block/pending")

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, s.Shutdown(expired), context.Canceled, "a handler was still running")

	r := await(t, pending)
	require.ErrorIs(t, r.err, ErrClosed)
	assert.ErrorContains(t, r.err, s.Addr())
	_, err := c.Call(callCtx(t), op.Getattr, "/later")
	require.ErrorIs(t, err, ErrClosed)
	assert.ErrorContains(t, err, s.Addr())
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	b := newBlocker()
	logger, _ := testLogger(t)
	s := startServer(t, b.handle, Config{Logger: logger})
	c := dial(t, s.Addr(), Config{})
	inflight := callAsync(c, callCtx(t), op.Read, "/block/inflight")
	b.waitStarted(t, "/block/inflight")

	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(callCtx(t)) }()
	// Once new connections are refused Shutdown has begun, and it must
	// still be waiting for the handler.
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		late, err := Dial(ctx, s.Addr(), tok(Config{}))
		if err == nil {
			_ = late.Close()
		}
		return err != nil
	}, hangGuard, 10*time.Millisecond)
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a handler was running", err)
	default:
	}

	close(b.release)
	r := await(t, inflight)
	require.NoError(t, r.err)
	assert.Equal(t, echo(nil, op.Read, "/block/inflight"), r.res)
	select {
	case err := <-shutdown:
		require.NoError(t, err)
	case <-time.After(hangGuard):
		t.Fatal("Shutdown never returned")
	}
	_, err := c.Call(callCtx(t), op.Getattr, "/after-shutdown")
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, s.Shutdown(callCtx(t)), "Shutdown is idempotent")
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name         string
		server       []byte
		client       []byte
		wantAuthFail bool
	}{
		{name: "matching token", server: []byte("job-4711-secret-x"), client: []byte("job-4711-secret-x")},
		{name: "wrong token", server: []byte("job-4711-secret-x"), client: []byte("job-4712-secret-x"), wantAuthFail: true},
		{name: "token prefix", server: []byte("job-4711-secret-xy"), client: []byte("job-4711-secret-x"), wantAuthFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logger, logs := testLogger(t)
			s := startServer(t, echo, Config{Token: tc.server, Logger: logger})
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			c, err := Dial(ctx, s.Addr(), Config{Token: tc.client})
			if tc.wantAuthFail {
				require.ErrorIs(t, err, ErrAuthFailed)
				assert.ErrorContains(t, err, "authentication failed")
				assert.ErrorContains(t, err, s.Addr())
				require.Eventually(t, func() bool { return logs.line("authentication failed") != "" }, hangGuard, 5*time.Millisecond)
				return
			}
			require.NoError(t, err)
			defer c.Close()
			res, err := c.Call(callCtx(t), op.Getattr, "/ok")
			require.NoError(t, err)
			assert.Equal(t, echo(nil, op.Getattr, "/ok"), res)
		})
	}
}

// There is no unauthenticated mode: both ends refuse to run without a
// token of MinTokenLen bytes.
func TestTokenRequired(t *testing.T) {
	for _, token := range [][]byte{nil, {}, []byte("fifteen bytes..")} {
		_, err := Listen(context.Background(), "127.0.0.1:0", echo, Config{Token: token})
		require.ErrorContains(t, err, fmt.Sprintf("job token of %d bytes: want at least %d", len(token), MinTokenLen))
		_, err = Dial(callCtx(t), "127.0.0.1:1", Config{Token: token})
		require.ErrorContains(t, err, fmt.Sprintf("job token of %d bytes: want at least %d", len(token), MinTokenLen))
	}
}

// impostor is a hand-written server that speaks the handshake but cannot
// prove the job token, then pushes a forged answer. It records every
// frame the client sends after its auth frame.
type impostor struct {
	ln       stdnet.Listener
	mu       sync.Mutex
	received []Kind
}

func startImpostor(t *testing.T, authOK func(nonceS, auth []byte) []byte) *impostor {
	t.Helper()
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	im := &impostor{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(hangGuard))
		nonceS := bytes.Repeat([]byte{7}, NonceSize)
		if _, err := conn.Write(append(AppendHeader(nil, Header{Kind: KindHello, Length: NonceSize}), nonceS...)); err != nil {
			return
		}
		auth := make([]byte, HeaderSize+NonceSize+MACSize)
		if _, err := io.ReadFull(conn, auth); err != nil {
			return
		}
		mac := authOK(nonceS, auth[HeaderSize:])
		frame := append(AppendHeader(nil, Header{Kind: KindAuthOK, Length: uint32(len(mac))}), mac...)
		// The forged file content, ready for request 1.
		frame, _ = AppendResponse(frame, 1, op.Read, op.Result{Data: []byte("forged")})
		if _, err := conn.Write(frame); err != nil {
			return
		}
		for {
			hb := make([]byte, HeaderSize)
			if _, err := io.ReadFull(conn, hb); err != nil {
				return
			}
			im.mu.Lock()
			im.received = append(im.received, Kind(hb[3]))
			im.mu.Unlock()
		}
	})
	return im
}

// TestClientRefusesImpostorServer: a server that cannot prove the job
// token is refused before any request is sent, so a child never takes
// answers from an impostor parent.
func TestClientRefusesImpostorServer(t *testing.T) {
	other := []byte("another-jobs-token-0123")
	tests := []struct {
		name   string
		authOK func(nonceS, auth []byte) []byte
	}{
		{name: "another job's token", authOK: func(nonceS, auth []byte) []byte {
			return handshakeMAC(other, serverLabel, "", nonceS, auth[:NonceSize])
		}},
		{name: "the job's token, another node's endpoint (a relay)", authOK: func(nonceS, auth []byte) []byte {
			return handshakeMAC(testToken, serverLabel, "127.0.0.1:1", nonceS, auth[:NonceSize])
		}},
		{name: "zero MAC", authOK: func([]byte, []byte) []byte { return make([]byte, MACSize) }},
		{name: "empty auth-ok (version 1 style)", authOK: func([]byte, []byte) []byte { return nil }},
		{name: "reflects the client's MAC", authOK: func(_, auth []byte) []byte { return auth[NonceSize:] }},
		{name: "right MAC for another nonce", authOK: func(nonceS, _ []byte) []byte {
			return handshakeMAC(testToken, serverLabel, "", nonceS, make([]byte, NonceSize))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im := startImpostor(t, tc.authOK)
			addr := im.ln.Addr().String()
			c, err := Dial(callCtx(t), addr, Config{Token: testToken})
			if c != nil {
				res, cerr := c.Call(callCtx(t), op.Read, "/etc/passwd")
				t.Fatalf("dial succeeded; a call returned %q, %v", res.Data, cerr)
			}
			require.Error(t, err)
			assert.ErrorContains(t, err, addr)
			if !strings.Contains(tc.name, "empty") { // that one fails as a malformed frame
				require.ErrorIs(t, err, ErrAuthFailed)
				assert.ErrorContains(t, err, "does not know the job token")
			}
			im.mu.Lock()
			defer im.mu.Unlock()
			assert.Empty(t, im.received, "the client sent frames after its auth")
		})
	}
}

func TestDialFailures(t *testing.T) {
	// A port nobody listens on.
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = Dial(callCtx(t), closedAddr, tok(Config{}))
	require.Error(t, err)
	assert.ErrorContains(t, err, closedAddr)

	// A server that never says hello: the handshake times out.
	silent, err := stdnet.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Close() })
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	_, err = Dial(callCtx(t), silent.Addr().String(), tok(Config{DialTimeout: 50 * time.Millisecond}))
	require.ErrorContains(t, err, "handshake timed out")

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Dial(cancelled, silent.Addr().String(), tok(Config{}))
	require.ErrorIs(t, err, context.Canceled)

	for _, max := range []int64{-1, MinMaxFrame - 1, 1 << 32} {
		_, err = Dial(callCtx(t), silent.Addr().String(), tok(Config{MaxFrame: max}))
		require.ErrorContains(t, err, "MaxFrame")
	}
	_, err = Dial(callCtx(t), silent.Addr().String(), tok(Config{DialTimeout: -time.Second}))
	require.ErrorContains(t, err, "DialTimeout")
}

// rawConn speaks the protocol by hand, to send what a Client never would.
type rawConn struct {
	stdnet.Conn
	nonce []byte
}

// rawConnect connects and reads the hello.
func rawConnect(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := stdnet.DialTimeout("tcp", addr, hangGuard)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(hangGuard)))
	rc := &rawConn{Conn: conn}
	h, p := rc.recv(t)
	require.Equal(t, Header{Kind: KindHello, Length: NonceSize}, h)
	rc.nonce = p
	return rc
}

// rawDial connects and authenticates by the documented rule: auth =
// nonce_c || HMAC-SHA256(token, "copper client v3" || len16(addr) || addr
// || nonce_s || nonce_c), and checks the server's auth-ok =
// HMAC-SHA256(token, "copper server v3" || len16(addr) || addr || nonce_s
// || nonce_c), addr being the address dialed.
func rawDial(t *testing.T, addr string, token []byte) *rawConn {
	t.Helper()
	rc := rawConnect(t, addr)
	rc.send(t, rawAuth(token, addr, rc.nonce, bytes.Repeat([]byte{3}, NonceSize)))
	h, p := rc.recv(t)
	require.Equal(t, Header{Kind: KindAuthOK, Length: MACSize}, h)
	require.Equal(t, rawMAC(token, "copper server v3", addr, rc.nonce, bytes.Repeat([]byte{3}, NonceSize)), p,
		"auth-ok proves the server knows the token")
	return rc
}

// rawMAC is a handshake MAC computed independently of handshakeMAC.
func rawMAC(token []byte, label, endpoint string, nonceS, nonceC []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte(label))
	m.Write([]byte{byte(len(endpoint) >> 8), byte(len(endpoint))})
	m.Write([]byte(endpoint))
	m.Write(nonceS)
	m.Write(nonceC)
	return m.Sum(nil)
}

// rawAuth is an auth frame computed independently of handshakeMAC.
func rawAuth(token []byte, endpoint string, nonceS, nonceC []byte) []byte {
	frame := AppendHeader(nil, Header{Kind: KindAuth, Length: NonceSize + MACSize})
	return append(append(frame, nonceC...), rawMAC(token, "copper client v3", endpoint, nonceS, nonceC)...)
}

func (rc *rawConn) send(t *testing.T, b []byte) {
	t.Helper()
	_, err := rc.Write(b)
	require.NoError(t, err)
}

func (rc *rawConn) recv(t *testing.T) (Header, []byte) {
	t.Helper()
	hb := make([]byte, HeaderSize)
	_, err := io.ReadFull(rc, hb)
	require.NoError(t, err)
	h, err := DecodeHeader(hb)
	require.NoError(t, err)
	p := make([]byte, h.Length)
	_, err = io.ReadFull(rc, p)
	require.NoError(t, err)
	return h, p
}

// requireClosedByServer reads until the server closes the connection.
func (rc *rawConn) requireClosedByServer(t *testing.T) {
	t.Helper()
	_, err := io.Copy(io.Discard, rc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("waiting for the server to close: %v", err)
	}
}

func TestServerClosesMisbehavingConnection(t *testing.T) {
	token := []byte("secret-of-this-test")
	header := func(kind Kind, o op.Op, length uint32) []byte {
		return AppendHeader(nil, Header{Kind: kind, Op: o, ID: 1, Length: length})
	}
	withByte := func(b []byte, i int, v byte) []byte { b[i] = v; return b }
	tests := []struct {
		name      string
		skipAuth  bool
		send      []byte
		halfClose bool // then close our write side: the frame can never complete
		wantLog   string
	}{
		{name: "garbage", send: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), wantLog: "bad magic"},
		{name: "garbage before auth", skipAuth: true, send: bytes.Repeat([]byte{0xff}, 64), wantLog: "bad magic"},
		{name: "unknown version", send: withByte(AppendRequest(nil, 1, op.Getattr, "/a"), 2, 9), wantLog: "unsupported version 9"},
		{name: "unknown kind", send: withByte(AppendRequest(nil, 1, op.Getattr, "/a"), 3, 42), wantLog: "unknown frame kind(42)"},
		{name: "unknown op", send: withByte(AppendRequest(nil, 1, op.Getattr, "/a"), 4, 99), wantLog: "unknown op(99)"},
		{name: "reserved bits", send: withByte(AppendRequest(nil, 1, op.Getattr, "/a"), 6, 1), wantLog: "non-zero reserved"},
		{name: "oversized length", send: header(KindRequest, op.Read, DefaultMaxFrame+1), wantLog: "exceeds the 11534336-byte cap"},
		{name: "maximal length", send: header(KindRequest, op.Read, 0xffffffff), wantLog: "exceeds"},
		{name: "truncated header", send: AppendRequest(nil, 1, op.Getattr, "/a")[:11], halfClose: true, wantLog: "truncated header: 11 of 20"},
		{name: "truncated payload", send: append(header(KindRequest, op.Getattr, 100), "/abc"...), halfClose: true, wantLog: "truncated request payload"},
		{name: "request before auth", skipAuth: true, send: AppendRequest(nil, 1, op.Getattr, "/a"), wantLog: "unexpected request frame (authenticated: false)"},
		{name: "bad auth size", skipAuth: true, send: append(AppendHeader(nil, Header{Kind: KindAuth, Length: 5}), "12345"...), wantLog: "auth frame with 5 payload bytes"},
		{name: "v1 auth (MAC only)", skipAuth: true, send: append(AppendHeader(nil, Header{Kind: KindAuth, Length: MACSize}), make([]byte, MACSize)...), wantLog: "auth frame with 32 payload bytes, want 64"},
		{name: "wrong mac", skipAuth: true, send: append(AppendHeader(nil, Header{Kind: KindAuth, Length: NonceSize + MACSize}), make([]byte, NonceSize+MACSize)...), wantLog: "authentication failed"},
		{name: "mac for another token", skipAuth: true, send: rawAuth([]byte("another-token-0123456"), "", make([]byte, NonceSize), make([]byte, NonceSize)), wantLog: "authentication failed"},
		{name: "second auth", send: append(AppendHeader(nil, Header{Kind: KindAuth, Length: NonceSize + MACSize}), make([]byte, NonceSize+MACSize)...), wantLog: "unexpected auth frame (authenticated: true)"},
		{name: "response from client", send: append(header(KindResponse, op.Getattr, 4), 0, 0, 0, 0), wantLog: "unexpected response frame"},
	}
	logger, logs := testLogger(t)
	s := startServer(t, echo, Config{Token: token, Logger: logger})
	good := dial(t, s.Addr(), Config{Token: token})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rc *rawConn
			if tc.skipAuth {
				rc = rawConnect(t, s.Addr())
			} else {
				rc = rawDial(t, s.Addr(), token)
			}
			rc.send(t, tc.send)
			if tc.halfClose {
				require.NoError(t, rc.Conn.(*stdnet.TCPConn).CloseWrite())
			}
			rc.requireClosedByServer(t)
			require.Eventually(t, func() bool {
				return logs.line("remote="+rc.LocalAddr().String(), tc.wantLog) != ""
			}, hangGuard, 5*time.Millisecond, "log line with %q", tc.wantLog)

			// Other connections are unaffected.
			res, err := good.Call(callCtx(t), op.Readlink, "/still/serving")
			require.NoError(t, err)
			assert.Equal(t, echo(nil, op.Readlink, "/still/serving"), res)
		})
	}
}

func TestServerClosesUnauthenticatedConnection(t *testing.T) {
	logger, logs := testLogger(t)
	s := startServer(t, echo, Config{DialTimeout: 50 * time.Millisecond, Logger: logger})
	rc := rawConnect(t, s.Addr()) // says nothing after the hello
	rc.requireClosedByServer(t)
	require.Eventually(t, func() bool {
		return logs.line("remote="+rc.LocalAddr().String(), "no authentication within DialTimeout") != ""
	}, hangGuard, 5*time.Millisecond)

	// An authenticated connection outlives the timeout.
	c := dial(t, s.Addr(), Config{})
	<-time.After(100 * time.Millisecond)
	res, err := c.Call(callCtx(t), op.IsReady, "/")
	require.NoError(t, err)
	assert.Equal(t, echo(nil, op.IsReady, "/"), res)
}

func TestOversizedResponseAnsweredEFBIG(t *testing.T) {
	logger, logs := testLogger(t)
	big := func(context.Context, op.Op, string) op.Result {
		return op.Result{Data: make([]byte, MinMaxFrame)}
	}
	s := startServer(t, big, Config{MaxFrame: MinMaxFrame, Logger: logger})
	c := dial(t, s.Addr(), Config{MaxFrame: MinMaxFrame})
	res, err := c.Call(callCtx(t), op.Read, "/big")
	require.NoError(t, err)
	assert.Equal(t, op.Fail(syscall.EFBIG), res)
	assert.NotEmpty(t, logs.line("exceeds MaxFrame"))
}

func TestUnencodableResponseAnsweredEIO(t *testing.T) {
	logger, logs := testLogger(t)
	bad := func(context.Context, op.Op, string) op.Result {
		return op.Result{Entries: []op.DirEntry{{Name: "../escape"}}}
	}
	s := startServer(t, bad, Config{Logger: logger})
	c := dial(t, s.Addr(), Config{})
	res, err := c.Call(callCtx(t), op.Readdir, "/dir")
	require.NoError(t, err)
	assert.Equal(t, op.Fail(syscall.EIO), res)
	assert.NotEmpty(t, logs.line("unencodable response", "../escape"))
}

// fakeServer accepts one connection, does the handshake and then lets the
// test write arbitrary frames, to check the client's defences.
func fakeServer(t *testing.T, afterAuth func(conn stdnet.Conn, req Header)) string {
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(hangGuard))
		nonceS := make([]byte, NonceSize)
		conn.Write(append(AppendHeader(nil, Header{Kind: KindHello, Length: NonceSize}), nonceS...))
		auth := make([]byte, HeaderSize+NonceSize+MACSize)
		if _, err := io.ReadFull(conn, auth); err != nil {
			return
		}
		mac := handshakeMAC(testToken, serverLabel, ln.Addr().String(), nonceS, auth[HeaderSize:HeaderSize+NonceSize])
		conn.Write(append(AppendHeader(nil, Header{Kind: KindAuthOK, Length: MACSize}), mac...))
		hb := make([]byte, HeaderSize)
		if _, err := io.ReadFull(conn, hb); err != nil {
			return
		}
		req, err := DecodeHeader(hb)
		if err != nil {
			return
		}
		io.CopyN(io.Discard, conn, int64(req.Length))
		afterAuth(conn, req)
		io.Copy(io.Discard, conn) // until the client closes
	}()
	return ln.Addr().String()
}

func TestClientClosesOnBadResponse(t *testing.T) {
	tests := []struct {
		name  string
		reply func(req Header) []byte
		want  string
	}{
		{"garbage", func(Header) []byte { return bytes.Repeat([]byte("x"), 40) }, "bad magic"},
		{"wrong op", func(req Header) []byte {
			f, _ := AppendResponse(nil, req.ID, op.Readlink, op.Result{Target: "t"})
			return f
		}, "response 1 is readlink, the request was getattr"},
		{"malformed payload", func(req Header) []byte {
			return append(AppendHeader(nil, Header{Kind: KindResponse, Op: req.Op, ID: req.ID, Length: 5}), 0, 0, 0, 0, 9)
		}, "truncated attr"},
		{"oversized", func(req Header) []byte {
			return AppendHeader(nil, Header{Kind: KindResponse, Op: req.Op, ID: req.ID, Length: MinMaxFrame + 1})
		}, "exceeds the 8192-byte cap"},
		{"truncated", func(req Header) []byte {
			return AppendHeader(nil, Header{Kind: KindResponse, Op: req.Op, ID: req.ID, Length: 100})[:HeaderSize]
		}, "truncated response payload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, func(conn stdnet.Conn, req Header) {
				conn.Write(tc.reply(req))
				if tc.name == "truncated" {
					conn.(*stdnet.TCPConn).CloseWrite()
				}
			})
			logger, logs := testLogger(t)
			c := dial(t, addr, Config{MaxFrame: MinMaxFrame, Logger: logger})
			_, err := c.Call(callCtx(t), op.Getattr, "/a")
			require.ErrorIs(t, err, ErrProtocol)
			assert.ErrorContains(t, err, tc.want)
			assert.ErrorContains(t, err, addr)
			assert.NotEmpty(t, logs.line("closing connection", tc.want))
			_, err = c.Call(callCtx(t), op.Getattr, "/b")
			require.ErrorIs(t, err, ErrClosed)
		})
	}
}

func TestListenErrors(t *testing.T) {
	_, err := Listen(context.Background(), "127.0.0.1:0", nil, tok(Config{}))
	require.ErrorContains(t, err, "nil handler")
	_, err = Listen(context.Background(), "127.0.0.1:0", echo, tok(Config{MaxFrame: 1 << 33}))
	require.ErrorContains(t, err, "MaxFrame")
	s := startServer(t, echo, Config{})
	_, err = Listen(context.Background(), s.Addr(), echo, tok(Config{}))
	require.ErrorContains(t, err, s.Addr())
}

func TestCallUnknownOp(t *testing.T) {
	s := startServer(t, echo, Config{})
	c := dial(t, s.Addr(), Config{})
	_, err := c.Call(callCtx(t), op.Op(0), "/a")
	require.ErrorContains(t, err, "unknown operation")
}

func TestShutdownRightAfterListen(t *testing.T) {
	// The event loop may not have registered its listener yet.
	for range 20 {
		s, err := Listen(context.Background(), "127.0.0.1:0", echo, tok(Config{}))
		require.NoError(t, err)
		require.NoError(t, s.Shutdown(callCtx(t)))
		_, err = Dial(callCtx(t), s.Addr(), tok(Config{}))
		require.Error(t, err, "nothing listens after Shutdown")
	}
}

func TestHandlerPanicAnsweredEIO(t *testing.T) {
	logger, logs := testLogger(t)
	h := func(_ context.Context, _ op.Op, path string) op.Result {
		if path == "/boom" {
			panic("bug on one path")
		}
		return op.Result{Target: "fine"}
	}
	s := startServer(t, h, Config{Logger: logger})
	c := dial(t, s.Addr(), Config{})
	res, err := c.Call(callCtx(t), op.Readlink, "/boom")
	require.NoError(t, err)
	assert.Equal(t, op.Fail(syscall.EIO), res)
	assert.NotEmpty(t, logs.line("handler panic", "bug on one path"))
	// The server and the connection keep serving.
	res, err = c.Call(callCtx(t), op.Readlink, "/ok")
	require.NoError(t, err)
	assert.Equal(t, "fine", res.Target)
}

// TestAbandonedCallsNeverAnswerLaterOnes: calls whose ctx ends while their
// answer is on its way give their records back for reuse; a late answer
// must never reach the call that reuses one. Every call that succeeds gets
// the answer to its own path.
func TestAbandonedCallsNeverAnswerLaterOnes(t *testing.T) {
	s := startServer(t, func(ctx context.Context, o op.Op, path string) op.Result {
		time.Sleep(time.Duration(len(path)%5) * 100 * time.Microsecond)
		return echo(ctx, o, path)
	}, Config{})
	c := dial(t, s.Addr(), Config{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				path := fmt.Sprintf("/g%d/%d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%4)*150*time.Microsecond)
				res, err := c.Call(ctx, op.Getattr, path)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("%s: %v", path, err)
					}
					continue
				}
				if !assert.ObjectsAreEqual(echo(nil, op.Getattr, path), res) {
					t.Errorf("%s: the answer to another call: %+v", path, res)
				}
			}
		})
	}
	wg.Wait()
}

// TestDialNothingListeningIsErrConnect: a connect that nobody accepts is
// told apart from a refused handshake (the node's readiness probe retries
// the former at its first interval, see node.ErrNotListening).
func TestDialNothingListeningIsErrConnect(t *testing.T) {
	l, err := stdnet.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // the port is now free: connects are refused
	_, err = Dial(t.Context(), addr, Config{Token: []byte("0123456789abcdef"), DialTimeout: 5 * time.Second})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrConnect)
	assert.NotErrorIs(t, err, ErrAuthFailed)
	assert.Contains(t, err.Error(), addr)
}
