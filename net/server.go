package net

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudwego/netpoll"

	"github.com/hpc-copper/copper/op"
)

// Server accepts connections, authenticates them and runs the Handler for
// every request on a worker goroutine, many in flight per connection.
type Server struct {
	handler    Handler
	cfg        Config
	maxPayload uint32
	addr       string
	loop       netpoll.EventLoop
	served     chan struct{} // closed when the event loop's Serve returned
	base       context.Context
	cancel     context.CancelFunc // cancels every handler's context

	mu       sync.Mutex
	closing  bool                     // Shutdown began: no new connections or requests
	conns    map[*serverConn]struct{} // open connections, closed at the end of Shutdown
	inflight sync.WaitGroup           // handlers running; Add only under mu while !closing
	shutdown chan struct{}            // closed when Shutdown finished

	// Workers: a request goes to a worker that waits on jobs, or to a new
	// one when none waits. A worker keeps its grown stack from request to
	// request; a goroutine per request paid a start and one or two stack
	// growths each time (a seventh of the CPU of a 4 KiB round trip).
	jobs    chan job      // unbuffered: a send succeeds only when a worker waits
	idle    atomic.Int32  // workers waiting on jobs, at most maxIdleWorkers
	stopped chan struct{} // closed at the end of Shutdown: waiting workers exit

	bufs framePool // response frames
}

// job is one request handed to a worker.
type job struct {
	sc   *serverConn
	h    Header
	path string
}

// maxIdleWorkers bounds the workers kept waiting after a burst; beyond it
// a worker that finishes exits. Each holds a stack of a few KiB.
const maxIdleWorkers = 32

// serverConn is the server's state for one connection. Reading happens
// only in netpoll's OnConnect/OnRequest callbacks, which netpoll runs one
// at a time per connection; writes come from any goroutine through w.
type serverConn struct {
	conn   netpoll.Connection
	remote string
	ctx    context.Context // handlers' context; ends when the connection closes
	cancel context.CancelFunc
	nonce  [NonceSize]byte
	authed atomic.Bool // set by OnRequest, read by the auth timer
	w      frameWriter
}

type connKey struct{}

// Listen starts a server on addr ("host:port"; port 0 picks one). ctx is
// the parent of every handler's context: cancelling it abandons in-flight
// work but does not stop the server; Shutdown does.
func Listen(ctx context.Context, addr string, h Handler, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("cnet: listen %s: nil handler", addr)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cnet: listen %s: %w", addr, err)
	}
	ln, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cnet: listen %s: %w", addr, err)
	}
	base, cancel := context.WithCancel(ctx)
	s := &Server{
		handler:    h,
		cfg:        cfg,
		maxPayload: uint32(cfg.MaxFrame),
		addr:       ln.Addr().String(),
		served:     make(chan struct{}),
		base:       base,
		cancel:     cancel,
		conns:      make(map[*serverConn]struct{}),
		shutdown:   make(chan struct{}),
		jobs:       make(chan job),
		stopped:    make(chan struct{}),
	}
	s.loop, err = netpoll.NewEventLoop(s.onRequest, netpoll.WithOnConnect(s.onConnect))
	if err != nil {
		cancel()
		_ = ln.Close()
		return nil, fmt.Errorf("cnet: listen %s: %w", addr, err)
	}
	go func() {
		defer close(s.served)
		if err := s.loop.Serve(ln); err != nil {
			s.cfg.Logger.Debug("cnet: event loop stopped", "addr", s.addr, "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on, with the chosen port.
func (s *Server) Addr() string { return s.addr }

// Shutdown stops taking connections and requests, waits until in-flight
// handlers have answered or ctx ends, then closes every connection. It
// returns ctx's error if handlers were still running. Requests that arrive
// during the drain are not answered: their clients see the connection
// close and fail over.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		select {
		case <-s.shutdown:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.closing = true
	s.mu.Unlock()
	defer close(s.shutdown)

	drained := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(drained)
	}()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = fmt.Errorf("cnet: shutdown %s: handlers still running: %w", s.addr, ctx.Err())
	}
	s.cancel()

	s.mu.Lock()
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	for _, sc := range conns {
		_ = sc.conn.Close()
	}
	s.stopLoop()
	close(s.stopped)
	return err
}

// stopLoop closes the listener and waits for Serve to return. The event
// loop ignores a Shutdown that comes before Serve has registered the
// listener, so it is repeated until Serve is seen to return.
func (s *Server) stopLoop() {
	idle, cancel := context.WithCancel(context.Background())
	cancel() // our connections are closed already: nothing to wait for
	for {
		_ = s.loop.Shutdown(idle)
		select {
		case <-s.served:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *Server) onConnect(ctx context.Context, conn netpoll.Connection) context.Context {
	sc := &serverConn{conn: conn, remote: conn.RemoteAddr().String(), w: frameWriter{conn: conn}}
	sc.ctx, sc.cancel = context.WithCancel(s.base)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sc.cancel()
		_ = conn.Close()
		return ctx
	}
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	// A peer that never authenticates must not hold a connection forever.
	authTimer := time.AfterFunc(s.cfg.DialTimeout, func() {
		if !sc.authed.Load() {
			s.cfg.Logger.Warn("cnet: closing connection: no authentication within DialTimeout",
				"remote", sc.remote, "timeout", s.cfg.DialTimeout)
			_ = conn.Close()
		}
	})
	_ = conn.AddCloseCallback(func(netpoll.Connection) error {
		authTimer.Stop()
		sc.cancel()
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
		return nil
	})
	rand.Read(sc.nonce[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	frame := AppendHeader(make([]byte, 0, HeaderSize+NonceSize), Header{Kind: KindHello, Length: NonceSize})
	if err := sc.write(append(frame, sc.nonce[:]...)); err != nil {
		s.cfg.Logger.Debug("cnet: sending hello failed", "remote", sc.remote, "err", err)
	}
	return context.WithValue(ctx, connKey{}, sc)
}

// onRequest reads one frame; netpoll calls it again while input remains.
func (s *Server) onRequest(ctx context.Context, conn netpoll.Connection) error {
	sc, ok := ctx.Value(connKey{}).(*serverConn)
	if !ok { // refused in onConnect
		return conn.Close()
	}
	r := conn.Reader()
	defer r.Release()
	h, payload, err := readFrame(r, s.maxPayload) // payload is valid until Release
	switch {
	case err != nil:
		return s.readFailed(sc, err)
	case h.Kind == KindRequest && sc.authed.Load():
		s.dispatch(sc, h, string(payload))
		return nil
	default:
		return s.onControl(sc, h, payload)
	}
}

// readFailed logs why a frame could not be read and closes the connection.
// It and onControl are kept out of onRequest so that the request path's
// stack frame stays small (see parseHeader).
//
//go:noinline
func (s *Server) readFailed(sc *serverConn, err error) error {
	var fe *frameError
	if errors.As(err, &fe) && fe.clean {
		s.cfg.Logger.Debug("cnet: connection ended", "remote", sc.remote, "err", err)
	} else {
		s.cfg.Logger.Error("cnet: closing connection", "remote", sc.remote, "err", err)
	}
	return sc.conn.Close()
}

// onControl handles every frame but an authenticated request: the
// handshake, pings, and frames out of turn.
//
//go:noinline
func (s *Server) onControl(sc *serverConn, h Header, payload []byte) error {
	switch {
	case !sc.authed.Load() && h.Kind == KindAuth:
		nonceC, mac := payload[:NonceSize], payload[NonceSize:]
		if !hmac.Equal(mac, handshakeMAC(s.cfg.Token, clientLabel, sc.nonce[:], nonceC)) {
			s.cfg.Logger.Warn("cnet: closing connection: authentication failed (the client does not know the job token)", "remote", sc.remote)
			return sc.conn.Close()
		}
		sc.authed.Store(true)
		// Prove we know the token too: a child must not take answers
		// from an impostor parent.
		frame := AppendHeader(make([]byte, 0, HeaderSize+MACSize), Header{Kind: KindAuthOK, Length: MACSize})
		return sc.write(append(frame, handshakeMAC(s.cfg.Token, serverLabel, sc.nonce[:], nonceC)...))
	case sc.authed.Load() && h.Kind == KindPing:
		return sc.answerPing(h)
	default:
		s.cfg.Logger.Error("cnet: closing connection", "remote", sc.remote,
			"err", fmt.Errorf("%w: unexpected %v frame (authenticated: %t)", ErrProtocol, h.Kind, sc.authed.Load()))
		return sc.conn.Close()
	}
}

// dispatch hands one request to a worker: handlers block on their own
// parents, and one slow path must not hold up the others (nor the pings
// this reader answers).
func (s *Server) dispatch(sc *serverConn, h Header, path string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	j := job{sc: sc, h: h, path: path}
	select {
	case s.jobs <- j:
	default:
		go s.work(j)
	}
}

// work serves j, then waits for the next job while fewer than
// maxIdleWorkers wait, until Shutdown has finished.
func (s *Server) work(j job) {
	for {
		s.serve(j)
		if s.idle.Add(1) > maxIdleWorkers {
			s.idle.Add(-1)
			return
		}
		select {
		case j = <-s.jobs:
			s.idle.Add(-1)
		case <-s.stopped:
			s.idle.Add(-1)
			return
		}
	}
}

// serve answers one request.
func (s *Server) serve(j job) {
	defer s.inflight.Done()
	sc, h, path := j.sc, j.h, j.path
	var res op.Result
	if errno := op.CheckRequest(h.Op, path); errno != 0 {
		res = op.Fail(errno)
	} else {
		res = s.callHandler(sc, h.Op, path)
	}
	if h.Op == op.DirPlus || h.Op == op.DirPlusNext {
		res = cutPage(res, min(int64(s.maxPayload), MaxPlusPage))
	}
	buf := s.bufs.get()
	head, tail := s.encodeResponse(sc, h, path, res, (*buf)[:0])
	if err := sc.write(head, tail); err != nil {
		s.cfg.Logger.Debug("cnet: response not sent", "remote", sc.remote, "op", h.Op, "path", path, "err", err)
	}
	*buf = head
	s.bufs.put(buf) // written (copied into netpoll's buffer) or queued (copied)
}

// MaxPlusPage bounds a dirplus page: about 7,000 entries of 60-byte
// names, so nearly every directory is one page, while a huge one does not
// cost a frame buffer of MaxFrame per response. A smaller MaxFrame cuts
// smaller pages.
const MaxPlusPage = 1 << 20

// cutPage keeps the entries of a dirplus answer that fit limit payload
// bytes, at least one (an entry is at most about 4.5 KiB, MaxFrame at
// least 8 KiB), and sets More when it left some out.
func cutPage(res op.Result, limit int64) op.Result {
	if !res.OK() {
		return res
	}
	size := int64(4 + PlusPageSize(nil))
	for i, e := range res.Plus {
		size += int64(PlusEntrySize(e))
		if size > limit && i > 0 {
			res.Plus, res.More = res.Plus[:i:i], true
			return res
		}
	}
	return res
}

// inlineData is the largest Read answer copied into the response frame;
// larger data is written by a second Write straight from the result,
// which saves a copy of the data for the price of a system call.
const inlineData = 32 << 10

// encodeResponse frames res as a head and, for large Read data, a tail to
// be written right after it. A result the peer would reject as a protocol
// violation is replaced by an errno so that one bad answer does not cost
// the whole connection: EFBIG when it exceeds MaxFrame, EIO otherwise.
func (s *Server) encodeResponse(sc *serverConn, h Header, path string, res op.Result, buf []byte) (head, tail []byte) {
	size := responsePayloadSize(h.Op, res)
	if size > int(s.maxPayload) {
		s.cfg.Logger.Error("cnet: response exceeds MaxFrame, answering EFBIG",
			"remote", sc.remote, "op", h.Op, "path", path, "bytes", size, "max_frame", s.maxPayload)
		res = op.Fail(syscall.EFBIG)
		size = responsePayloadSize(h.Op, res)
	}
	if (h.Op == op.Read || h.Op == op.Chunk) && res.Errno == 0 && len(res.Data) > inlineData {
		tail = res.Data
		size -= len(tail)
	}
	head, err := appendResponseHead(slices.Grow(buf, HeaderSize+size), h.ID, h.Op, res, len(tail))
	if err != nil {
		s.cfg.Logger.Error("cnet: unencodable response, answering EIO",
			"remote", sc.remote, "op", h.Op, "path", path, "err", err)
		head, _ = AppendResponse(head[:0], h.ID, h.Op, op.Fail(syscall.EIO))
		tail = nil
	}
	return head, tail
}

// write sends one frame made of the given parts (see frameWriter).
func (sc *serverConn) write(parts ...[]byte) error {
	return sc.w.write(time.Time{}, parts...)
}

// callHandler runs the handler, turning a panic into EIO for that one
// request: a bug on one path must not take down a node that a whole
// subtree depends on. The panic is logged with its stack.
func (s *Server) callHandler(sc *serverConn, o op.Op, path string) (res op.Result) {
	defer func() {
		if v := recover(); v != nil {
			s.cfg.Logger.Error("cnet: handler panic", "op", o, "path", path, "panic", v, "stack", string(debug.Stack()))
			res = op.Fail(syscall.EIO)
		}
	}()
	return s.handler(sc.ctx, o, path)
}
