package net

import (
	"context"
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
	endpoint   string // the name its handshake proofs carry (serverEndpoint)
	loop       netpoll.EventLoop
	served     chan struct{} // closed when the event loop's Serve returned
	base       context.Context
	cancel     context.CancelFunc // cancels every handler's context

	mu       sync.Mutex
	closing  bool                     // Shutdown began: no new connections or requests
	conns    map[*serverConn]struct{} // open connections, closed at the end of Shutdown
	inflight sync.WaitGroup           // handlers running; Add only under mu while !closing
	readers  sync.WaitGroup           // connection readers; Add only under mu while !closing
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
	sc       *serverConn
	h        Header
	path     string
	res      op.Result // the answer, when answered
	answered bool      // no handler to run: res is written as it is
}

// maxIdleWorkers bounds the workers kept waiting after a burst; beyond it
// a worker that finishes exits. Each holds a stack of a few KiB.
const maxIdleWorkers = 32

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
		endpoint:   serverEndpoint(cfg.Endpoint, addr, ln.Addr().String()),
		served:     make(chan struct{}),
		base:       base,
		cancel:     cancel,
		conns:      make(map[*serverConn]struct{}),
		shutdown:   make(chan struct{}),
		jobs:       make(chan job),
		stopped:    make(chan struct{}),
	}
	// No OnRequest: each connection has a reader goroutine of its own
	// (serverconn.go), so netpoll leaves closing it to that reader.
	s.loop, err = netpoll.NewEventLoop(nil, netpoll.WithOnPrepare(s.onPrepare))
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
		sc.wake() // its reader closes it
	}
	if rerr := s.awaitReaders(ctx); err == nil {
		err = rerr
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

// request answers one request: on this reader when it is answered at
// once (a path that fails op.CheckRequest, or Config.Peek's answer of at
// most maxReaderAnswer bytes), otherwise on a worker: handlers block on
// their own parents, and one slow path must not hold up the others (nor
// the pings this reader answers). Answering on the reader saves handing
// the request to a worker goroutine and waking it, a tenth of a small
// round trip's CPU.
func (s *Server) request(sc *serverConn, h Header, path string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	j := job{sc: sc, h: h, path: path}
	if errno := op.CheckRequest(h.Op, path); errno != 0 {
		j.res, j.answered = op.Fail(errno), true
	} else if s.cfg.Peek != nil {
		j.res, j.answered = s.peek(h.Op, path)
	}
	if j.answered && responsePayloadSize(h.Op, j.res) <= maxReaderAnswer {
		s.serve(j)
		return
	}
	select {
	case s.jobs <- j:
	default:
		go s.work(j)
	}
}

// maxReaderAnswer bounds an answer the reader writes itself: writing a
// larger one would hold up reading the connection's other requests.
const maxReaderAnswer = 256 << 10

// peek runs Config.Peek, turning a panic into "not answered": the
// handler then answers, and reports its own failure.
func (s *Server) peek(o op.Op, path string) (res op.Result, ok bool) {
	defer func() {
		if v := recover(); v != nil {
			s.cfg.Logger.Error("cnet: peek panic", "op", o, "path", path, "panic", v, "stack", string(debug.Stack()))
			res, ok = op.Result{}, false
		}
	}()
	return s.cfg.Peek(o, path)
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

// serve answers one request: it runs the handler unless j holds the
// answer already.
func (s *Server) serve(j job) {
	defer s.inflight.Done()
	sc, h, path, res := j.sc, j.h, j.path, j.res
	if !j.answered {
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
