package net

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudwego/netpoll"
)

// serverConn is the server's state for one connection. One reader
// goroutine per connection (readConn) reads its frames, from the hello to
// the close; writes come from any goroutine through w.
//
// A reader of its own rather than netpoll's OnRequest: netpoll runs
// OnRequest on a pooled goroutine that exits as soon as the input is
// drained, which in a request/response exchange is after every frame, so
// every request paid a goroutine start and its allocations. Without
// OnRequest netpoll leaves closing the connection to its user, and since
// netpoll does not serialize a Close with a reader of its own, only the
// reader closes it; others wake it (wake), as the Client does.
type serverConn struct {
	conn   netpoll.Connection
	fd     int // the connection's socket
	remote string
	ctx    context.Context // handlers' context; ends when the connection closes
	cancel context.CancelFunc
	nonce  [NonceSize]byte
	authed atomic.Bool // set by the reader, read by the auth timer
	w      frameWriter

	cmu    sync.Mutex // orders wake before the reader's Close (see Client.cmu)
	closed bool       // the reader closed the connection
}

// onPrepare takes a new connection: it runs before netpoll registers the
// connection with its poller, and starts the connection's reader.
func (s *Server) onPrepare(conn netpoll.Connection) context.Context {
	fdc, ok := conn.(interface{ Fd() int })
	if !ok { // every netpoll TCP connection has one
		s.cfg.Logger.Error("cnet: closing connection without a descriptor", "type", fmt.Sprintf("%T", conn))
		_ = conn.Close()
		return context.Background()
	}
	sc := &serverConn{conn: conn, fd: fdc.Fd(), remote: conn.RemoteAddr().String(), w: frameWriter{conn: conn}}
	sc.ctx, sc.cancel = context.WithCancel(s.base)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sc.cancel()
		_ = conn.Close()
		return context.Background()
	}
	s.conns[sc] = struct{}{}
	s.readers.Add(1)
	s.mu.Unlock()
	go s.readConn(sc)
	return context.Background()
}

// readConn is sc's reader: it sends the hello, reads every frame until
// the connection fails or is refused, then closes it.
func (s *Server) readConn(sc *serverConn) {
	defer s.readers.Done()
	// A peer that never authenticates must not hold a connection forever.
	authTimer := time.AfterFunc(s.cfg.DialTimeout, func() {
		if !sc.authed.Load() {
			s.cfg.Logger.Warn("cnet: closing connection: no authentication within DialTimeout",
				"remote", sc.remote, "timeout", s.cfg.DialTimeout)
			sc.wake()
		}
	})
	rand.Read(sc.nonce[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	frame := AppendHeader(make([]byte, 0, HeaderSize+NonceSize), Header{Kind: KindHello, Length: NonceSize})
	if err := sc.write(append(frame, sc.nonce[:]...)); err != nil {
		s.cfg.Logger.Debug("cnet: sending hello failed", "remote", sc.remote, "err", err)
	} else {
		r := sc.conn.Reader()
		for s.readOne(sc, r) {
		}
	}
	authTimer.Stop()
	sc.cancel()
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
	sc.cmu.Lock()
	sc.closed = true
	sc.cmu.Unlock()
	_ = sc.conn.Close()
}

// readOne reads and handles one frame; false: close the connection.
func (s *Server) readOne(sc *serverConn, r netpoll.Reader) bool {
	h, payload, err := readFrame(r, s.maxPayload) // payload is valid until Release
	keep := true
	switch {
	case err != nil:
		s.readFailed(sc, err)
		keep = false
	case h.Kind == KindRequest && sc.authed.Load():
		s.request(sc, h, string(payload))
	default:
		keep = s.onControl(sc, h, payload)
	}
	_ = r.Release()
	return keep
}

// wake makes sc's reader's blocked read fail, so that it closes the
// connection: shutting the socket down tells the peer and the poller at
// once.
func (sc *serverConn) wake() {
	sc.cmu.Lock()
	defer sc.cmu.Unlock()
	if !sc.closed {
		_ = syscall.Shutdown(sc.fd, syscall.SHUT_RDWR)
	}
}

// awaitReaders waits until every connection's reader has closed its
// connection, or ctx ends.
func (s *Server) awaitReaders(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.readers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cnet: shutdown %s: connections still closing: %w", s.addr, ctx.Err())
	}
}

// readFailed logs why a frame could not be read. It and onControl are
// kept out of readOne so that the request path's stack frame stays small.
//
//go:noinline
func (s *Server) readFailed(sc *serverConn, err error) {
	var fe *frameError
	if errors.As(err, &fe) && fe.clean {
		s.cfg.Logger.Debug("cnet: connection ended", "remote", sc.remote, "err", err)
	} else {
		s.cfg.Logger.Error("cnet: closing connection", "remote", sc.remote, "err", err)
	}
}

// onControl handles every frame but an authenticated request: the
// handshake, pings, and frames out of turn. False: close the connection.
//
//go:noinline
func (s *Server) onControl(sc *serverConn, h Header, payload []byte) bool {
	switch {
	case !sc.authed.Load() && h.Kind == KindAuth:
		nonceC, mac := payload[:NonceSize], payload[NonceSize:]
		if !hmac.Equal(mac, handshakeMAC(s.cfg.Token, clientLabel, s.endpoint, sc.nonce[:], nonceC)) {
			s.cfg.Logger.Warn("cnet: closing connection: authentication failed (the client does not know the job token, or dialed another address than this node's: a relay)",
				"remote", sc.remote, "endpoint", s.endpoint)
			return false
		}
		sc.authed.Store(true)
		// Prove we know the token too: a child must not take answers
		// from an impostor parent.
		frame := AppendHeader(make([]byte, 0, HeaderSize+MACSize), Header{Kind: KindAuthOK, Length: MACSize})
		return sc.write(append(frame, handshakeMAC(s.cfg.Token, serverLabel, s.endpoint, sc.nonce[:], nonceC)...)) == nil
	case sc.authed.Load() && h.Kind == KindPing:
		return sc.answerPing(h) == nil
	default:
		s.cfg.Logger.Error("cnet: closing connection", "remote", sc.remote,
			"err", fmt.Errorf("%w: unexpected %v frame (authenticated: %t)", ErrProtocol, h.Kind, sc.authed.Load()))
		return false
	}
}
