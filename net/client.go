package net

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudwego/netpoll"

	"github.com/hpc-copper/copper/op"
)

// Client is one authenticated connection to one server, carrying many
// concurrent Calls. It never reconnects: once the connection breaks every
// pending and later Call fails with an error wrapping ErrClosed and the
// address, and the caller dials again or fails over.
type Client struct {
	addr       string
	cfg        Config
	maxPayload uint32
	conn       netpoll.Connection
	ready      chan struct{} // closed on auth-ok
	stage      atomic.Int32  // handshake progress, read by Dial to explain a failure
	nonceS     []byte        // the server's hello nonce; set and read by the reader only
	nonceC     [NonceSize]byte
	lastHeard  atomic.Int64 // unix ns of the last frame, or of the first call after a quiet spell

	w    frameWriter
	bufs framePool // request frames

	calls sync.Pool // *pendingCall, reused with its channel

	// cmu orders waking the reader (shutdown of the socket, from any
	// goroutine) before the reader's Close, so the descriptor is never
	// shut down after it was closed and perhaps reused.
	cmu    sync.Mutex
	fd     int  // the connection's socket
	closed bool // the reader closed the connection

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]*pendingCall
	err     error         // why the connection is gone; set once
	done    chan struct{} // closed when err is set
}

// Handshake stages of a Client.
const (
	stageHello  int32 = iota // waiting for hello
	stageAuth                // auth sent, waiting for auth-ok
	stageActive              // authenticated
)

type pendingCall struct {
	op op.Op
	ch chan reply // buffered: the reader never blocks on a caller
}

// newCall returns a pendingCall for o with an empty channel.
func (c *Client) newCall(o op.Op) *pendingCall {
	pc, ok := c.calls.Get().(*pendingCall)
	if !ok {
		pc = &pendingCall{ch: make(chan reply, 1)}
	}
	pc.op = o
	return pc
}

// recycle keeps pc for a later call. Only a call whose reply was received,
// or that was taken out of pending before any reply was sent, may be
// recycled: otherwise a late reply would reach the next call.
func (c *Client) recycle(pc *pendingCall) { c.calls.Put(pc) }

type reply struct {
	res op.Result
	err error
}

// errClosedByCaller and errPeerClosed are the causes behind ErrClosed.
var (
	errClosedByCaller = errors.New("closed by caller")
	errPeerClosed     = errors.New("closed by peer")
)

// Dial connects to addr and authenticates with cfg.Token both ways, within
// cfg.DialTimeout and ctx. A server that rejects the token, or that cannot
// prove it knows the token, makes it fail with an error wrapping
// ErrAuthFailed; no request has been sent to it.
func Dial(ctx context.Context, addr string, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cnet: dial %s: %w", addr, err)
	}
	deadline := time.Now().Add(cfg.DialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	budget := time.Until(deadline)
	if budget <= 0 { // netpoll would take it as "no timeout"
		return nil, fmt.Errorf("cnet: dial %s: %w", addr, context.DeadlineExceeded)
	}
	conn, err := netpoll.DialConnection("tcp", addr, budget)
	if err != nil {
		return nil, fmt.Errorf("cnet: dial %s: %w: %w", addr, ErrConnect, err)
	}
	fdc, ok := conn.(interface{ Fd() int })
	if !ok { // every netpoll TCP connection has one
		_ = conn.Close()
		return nil, fmt.Errorf("cnet: dial %s: connection %T has no descriptor", addr, conn)
	}
	c := &Client{
		fd:         fdc.Fd(),
		addr:       addr,
		cfg:        cfg,
		maxPayload: uint32(cfg.MaxFrame),
		conn:       conn,
		w:          frameWriter{conn: conn},
		ready:      make(chan struct{}),
		pending:    make(map[uint64]*pendingCall),
		done:       make(chan struct{}),
	}
	go c.readLoop()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-c.ready:
		if cfg.HeartbeatTimeout > 0 {
			go c.watch(cfg.HeartbeatTimeout)
		}
		return c, nil
	case <-c.done:
		select {
		case <-c.ready: // authenticated, then broke: Calls will report it
			return c, nil
		default:
		}
		if c.stage.Load() == stageAuth && errors.Is(c.err, errPeerClosed) {
			return nil, fmt.Errorf("cnet: dial %s: %w: server closed the connection after the auth frame (wrong or missing token?)", addr, ErrAuthFailed)
		}
		return nil, fmt.Errorf("cnet: dial %s: handshake: %w", addr, c.err)
	case <-ctx.Done():
		c.fail(ctx.Err())
		return nil, fmt.Errorf("cnet: dial %s: handshake: %w", addr, ctx.Err())
	case <-timer.C:
		err := fmt.Errorf("handshake timed out after %v: %w", cfg.DialTimeout, os.ErrDeadlineExceeded)
		c.fail(err)
		return nil, fmt.Errorf("cnet: dial %s: %w", addr, err)
	}
}

// Addr is the server address the client was dialed to.
func (c *Client) Addr() string { return c.addr }

// Call sends one request and waits for its answer. The error is only about
// transport or ctx: a filesystem error is an errno in the result. When ctx
// ends first Call returns ctx.Err() and the late answer is dropped. A path
// that fails op.CheckPath is answered locally with that errno. A DirPlus
// answered in pages is fetched whole: Call asks for each next page
// (DirPlusNext after the last name so far) and returns the whole listing.
func (c *Client) Call(ctx context.Context, o op.Op, path string) (op.Result, error) {
	res, err := c.call(ctx, o, path)
	if err != nil || o != op.DirPlus || !res.More {
		return res, err
	}
	for res.More {
		if len(res.Plus) == 0 {
			return op.Result{}, fmt.Errorf("cnet: dirplus %q from %s: %w: empty page with more to follow", path, c.addr, ErrProtocol)
		}
		last := res.Plus[len(res.Plus)-1].Name
		page, err := c.call(ctx, op.DirPlusNext, op.Join(path, last))
		if err != nil {
			return op.Result{}, err
		}
		if !page.OK() {
			return page, nil // the listing changed under the pages: the caller sees why
		}
		if len(page.Plus) == 0 && page.More {
			// Asking again from the same name would loop until ctx ends.
			return op.Result{}, fmt.Errorf("cnet: dirplus %q from %s: %w: empty page after %q with more to follow", path, c.addr, ErrProtocol, last)
		}
		if len(page.Plus) > 0 && page.Plus[0].Name <= last {
			return op.Result{}, fmt.Errorf("cnet: dirplus %q from %s: %w: page starts at %q, not after %q",
				path, c.addr, ErrProtocol, page.Plus[0].Name, last)
		}
		res.Plus, res.More = append(res.Plus, page.Plus...), page.More
	}
	return res, nil
}

func (c *Client) call(ctx context.Context, o op.Op, path string) (op.Result, error) {
	if !o.Valid() {
		return op.Result{}, fmt.Errorf("cnet: call %v %q to %s: unknown operation", o, path, c.addr)
	}
	if errno := op.CheckRequest(o, path); errno != 0 {
		return op.Fail(errno), nil // what the server would answer, without the round trip
	}
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	pc := c.newCall(o)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.recycle(pc)
		return op.Result{}, fmt.Errorf("cnet: call %v %q: %w", o, path, err)
	}
	if len(c.pending) == 0 {
		c.heard() // silence counts only while calls are outstanding
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = pc
	c.mu.Unlock()

	if err := c.sendRequest(ctx, id, o, path); err != nil {
		// A frame may be half written: the stream is unusable for everyone.
		c.fail(fmt.Errorf("writing request: %w", err))
	}
	select {
	case rep := <-pc.ch:
		c.recycle(pc)
		if rep.err != nil {
			return op.Result{}, fmt.Errorf("cnet: call %v %q: %w", o, path, rep.err)
		}
		return rep.res, nil
	case <-ctx.Done():
		c.mu.Lock()
		_, waiting := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if waiting { // no reply was or will be sent to pc
			c.recycle(pc)
		}
		return op.Result{}, ctx.Err()
	}
}

// sendRequest writes one request frame, built in a pooled buffer.
func (c *Client) sendRequest(ctx context.Context, id uint64, o op.Op, path string) error {
	buf := c.bufs.get()
	*buf = AppendRequest((*buf)[:0], id, o, path)
	err := c.send(ctx, *buf)
	c.bufs.put(buf) // written or queued: copied either way
	return err
}

// send writes one frame. A ctx deadline bounds the write, so a peer that
// stops reading cannot hold callers past their deadline.
func (c *Client) send(ctx context.Context, frame []byte) error {
	d, _ := ctx.Deadline()
	return c.w.write(d, frame)
}

// Close closes the connection; pending Calls fail with ErrClosed.
func (c *Client) Close() error {
	c.fail(errClosedByCaller)
	return nil
}

// fail records why the connection is gone (once), closes it and fails every
// pending Call.
func (c *Client) fail(cause error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = fmt.Errorf("connection to %s: %w: %w", c.addr, ErrClosed, cause)
	pending := c.pending
	c.pending = nil
	close(c.done)
	c.mu.Unlock()

	c.wakeReader()
	for _, pc := range pending {
		pc.ch <- reply{err: c.err}
	}
}

// readLoop is the connection's one reader, from the handshake until the
// connection fails; then it closes the connection. A long-lived reader
// goroutine, rather than netpoll's OnRequest, saves starting a goroutine
// (and growing its stack) for every response: netpoll runs OnRequest on a
// pooled goroutine that exits as soon as the input is drained, which in a
// request/response exchange is after every frame. Netpoll does not
// serialize a Close with a reader of its own, so only this goroutine
// closes the connection; others wake it (wakeReader).
func (c *Client) readLoop() {
	r := c.conn.Reader()
	for {
		h, payload, err := readFrame(r, c.maxPayload)
		if err == nil {
			c.heard()
			if h.Kind == KindResponse && c.stage.Load() == stageActive {
				err = c.deliver(h, payload) // copies what it keeps of the borrowed payload
			} else {
				err = c.handle(h, payload)
			}
		}
		_ = r.Release()
		if err != nil {
			c.readFailed(err)
			break
		}
	}
	c.cmu.Lock()
	c.closed = true
	c.cmu.Unlock()
	_ = c.conn.Close()
}

// wakeReader makes the reader's blocked read fail, so that it closes the
// connection: shutting the socket down tells the peer and the poller at
// once.
func (c *Client) wakeReader() {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if !c.closed {
		_ = syscall.Shutdown(c.fd, syscall.SHUT_RDWR)
	}
}

// readFailed fails the connection for a frame that could not be read or
// broke the protocol. A read that failed because the connection was failed
// already (Close, a heartbeat timeout: wakeReader) says nothing new.
func (c *Client) readFailed(err error) {
	c.mu.Lock()
	failed := c.err != nil
	c.mu.Unlock()
	if failed {
		return
	}
	var fe *frameError
	if errors.As(err, &fe) && fe.clean {
		err = fmt.Errorf("%w: %w", errPeerClosed, err)
	} else {
		c.cfg.Logger.Error("cnet: closing connection", "addr", c.addr, "err", err)
	}
	c.fail(err)
}

//go:noinline
func (c *Client) handle(h Header, payload []byte) error {
	switch stage := c.stage.Load(); {
	case stage == stageHello && h.Kind == KindHello:
		c.nonceS = bytes.Clone(payload)
		rand.Read(c.nonceC[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
		frame := AppendHeader(make([]byte, 0, HeaderSize+NonceSize+MACSize), Header{Kind: KindAuth, Length: NonceSize + MACSize})
		frame = append(frame, c.nonceC[:]...)
		frame = append(frame, handshakeMAC(c.cfg.Token, clientLabel, c.addr, c.nonceS, c.nonceC[:])...)
		c.stage.Store(stageAuth)
		return c.send(context.Background(), frame)
	case stage == stageAuth && h.Kind == KindAuthOK:
		// The server must prove it knows the token before any request
		// goes out: an impostor parent must not serve forged files.
		if !hmac.Equal(payload, handshakeMAC(c.cfg.Token, serverLabel, c.addr, c.nonceS, c.nonceC[:])) {
			return fmt.Errorf("%w: the server at %s does not know the job token, or is not the node at that address (its auth-ok does not verify): not a peer of this job", ErrAuthFailed, c.addr)
		}
		c.stage.Store(stageActive)
		close(c.ready)
		return nil
	case stage == stageActive && h.Kind == KindResponse:
		return c.deliver(h, payload)
	case stage == stageActive && h.Kind == KindPong:
		return nil // heard() already noted it
	default:
		return fmt.Errorf("%w: unexpected %v frame in handshake stage %d", ErrProtocol, h.Kind, stage)
	}
}

//go:noinline
func opMismatch(h Header, want op.Op) error {
	return fmt.Errorf("%w: response %d is %v, the request was %v", ErrProtocol, h.ID, h.Op, want)
}

func (c *Client) deliver(h Header, payload []byte) error {
	c.mu.Lock()
	pc, ok := c.pending[h.ID]
	var want op.Op
	if ok {
		want = pc.op // read under mu: once the caller gives up, pc is reused
	}
	c.mu.Unlock()
	if !ok { // the caller gave up (ctx ended); its answer is dropped
		return nil
	}
	if want != h.Op {
		return opMismatch(h, want)
	}
	// On error the call stays pending, so fail reports the broken
	// connection to it after the violation has been logged.
	var rep reply
	var err error
	if rep.res, err = decodeResponse(h.Op, payload, !ownedPayload(h)); err != nil { // see readFrame
		return err
	}
	c.mu.Lock()
	pc, ok = c.pending[h.ID]
	delete(c.pending, h.ID)
	c.mu.Unlock()
	if ok {
		pc.ch <- rep
	}
	return nil
}
