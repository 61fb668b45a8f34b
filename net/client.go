package net

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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
	nonceS     []byte        // the server's hello nonce; set and read by onRequest only
	nonceC     [NonceSize]byte
	lastHeard  atomic.Int64 // unix ns of the last frame, or of the first call after a quiet spell

	wmu sync.Mutex // one writer at a time: netpoll's writer is not concurrent

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
		return nil, fmt.Errorf("cnet: dial %s: %w", addr, err)
	}
	c := &Client{
		addr:       addr,
		cfg:        cfg,
		maxPayload: uint32(cfg.MaxFrame),
		conn:       conn,
		ready:      make(chan struct{}),
		pending:    make(map[uint64]*pendingCall),
		done:       make(chan struct{}),
	}
	// Reading happens in netpoll's OnRequest so that closing from another
	// goroutine is serialized with it by netpoll itself.
	_ = conn.AddCloseCallback(func(netpoll.Connection) error {
		c.fail(errPeerClosed)
		return nil
	})
	if err := conn.SetOnRequest(c.onRequest); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cnet: dial %s: %w", addr, err)
	}
	if !conn.IsActive() { // closed before the callbacks were in place
		c.fail(errPeerClosed)
	}

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
	pc := &pendingCall{op: o, ch: make(chan reply, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return op.Result{}, fmt.Errorf("cnet: call %v %q: %w", o, path, err)
	}
	if len(c.pending) == 0 {
		c.heard() // silence counts only while calls are outstanding
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = pc
	c.mu.Unlock()

	if err := c.send(ctx, AppendRequest(make([]byte, 0, HeaderSize+len(path)), id, o, path)); err != nil {
		// A frame may be half written: the stream is unusable for everyone.
		c.fail(fmt.Errorf("writing request: %w", err))
	}
	select {
	case rep := <-pc.ch:
		if rep.err != nil {
			return op.Result{}, fmt.Errorf("cnet: call %v %q: %w", o, path, rep.err)
		}
		return rep.res, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return op.Result{}, ctx.Err()
	}
}

// send writes one frame. A ctx deadline bounds the write, so a peer that
// stops reading cannot hold callers past their deadline.
func (c *Client) send(ctx context.Context, frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		_ = c.conn.SetWriteDeadline(d)
		defer c.conn.SetWriteDeadline(time.Time{})
	}
	_, err := c.conn.Write(frame)
	return err
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

	_ = c.conn.Close()
	for _, pc := range pending {
		pc.ch <- reply{err: c.err}
	}
}

// onRequest reads one frame from the server; netpoll calls it again while
// input remains, one call at a time.
func (c *Client) onRequest(_ context.Context, conn netpoll.Connection) error {
	r := conn.Reader()
	h, payload, err := readFrame(r, c.maxPayload)
	_ = r.Release() // the payload is a copy
	if err == nil {
		c.heard()
		err = c.handle(h, payload)
	}
	if err != nil {
		var fe *frameError
		if errors.As(err, &fe) && fe.clean {
			err = fmt.Errorf("%w: %w", errPeerClosed, err)
		} else {
			c.cfg.Logger.Error("cnet: closing connection", "addr", c.addr, "err", err)
		}
		c.fail(err)
	}
	return nil
}

func (c *Client) handle(h Header, payload []byte) error {
	switch stage := c.stage.Load(); {
	case stage == stageHello && h.Kind == KindHello:
		c.nonceS = payload
		rand.Read(c.nonceC[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
		frame := AppendHeader(make([]byte, 0, HeaderSize+NonceSize+MACSize), Header{Kind: KindAuth, Length: NonceSize + MACSize})
		frame = append(frame, c.nonceC[:]...)
		frame = append(frame, handshakeMAC(c.cfg.Token, clientLabel, c.nonceS, c.nonceC[:])...)
		c.stage.Store(stageAuth)
		return c.send(context.Background(), frame)
	case stage == stageAuth && h.Kind == KindAuthOK:
		// The server must prove it knows the token before any request
		// goes out: an impostor parent must not serve forged files.
		if !hmac.Equal(payload, handshakeMAC(c.cfg.Token, serverLabel, c.nonceS, c.nonceC[:])) {
			return fmt.Errorf("%w: the server at %s does not know the job token (its auth-ok does not verify): not a peer of this job", ErrAuthFailed, c.addr)
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

func (c *Client) deliver(h Header, payload []byte) error {
	c.mu.Lock()
	pc, ok := c.pending[h.ID]
	c.mu.Unlock()
	if !ok { // the caller gave up (ctx ended); its answer is dropped
		return nil
	}
	if pc.op != h.Op {
		return fmt.Errorf("%w: response %d is %v, the request was %v", ErrProtocol, h.ID, h.Op, pc.op)
	}
	// On error the call stays pending, so fail reports the broken
	// connection to it after the violation has been logged.
	res, err := DecodeResponse(h.Op, payload)
	if err != nil {
		return err
	}
	c.mu.Lock()
	_, ok = c.pending[h.ID]
	delete(c.pending, h.ID)
	c.mu.Unlock()
	if ok {
		pc.ch <- reply{res: res}
	}
	return nil
}
