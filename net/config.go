package net

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/cloudwego/netpoll"

	"github.com/hpc-copper/copper/op"
)

// Defaults applied to zero Config fields.
const (
	DefaultMaxFrame    = 11 << 20 // a 10 MiB file plus headroom
	DefaultDialTimeout = 5 * time.Second

	// MinMaxFrame is the smallest allowed MaxFrame: it fits any request
	// path and link target.
	MinMaxFrame = 8 << 10
)

// ErrAuthFailed is wrapped by Dial's error when the server rejected the
// client's token, or when the server could not prove it knows the token.
var ErrAuthFailed = errors.New("authentication failed")

// ErrConnect is wrapped by Dial's error when the TCP connect itself
// failed (nothing listening, refused, unreachable): no handshake was tried.
var ErrConnect = errors.New("connect failed")

// ErrClosed is wrapped by every Call error after the client's connection
// was closed or broke; the caller dials again or fails over.
var ErrClosed = errors.New("connection closed")

// Config is shared by Server and Client.
type Config struct {
	MaxFrame    int64         // payload cap in bytes, both ways; 0 → DefaultMaxFrame
	Token       []byte        // shared job secret, at least MinTokenLen bytes (required)
	Logger      *slog.Logger  // nil → discard
	DialTimeout time.Duration // connect plus handshake; the server's wait for auth; 0 → DefaultDialTimeout
	// HeartbeatTimeout: a client whose calls have heard no frame for this
	// long fails them with ErrHeartbeat (pinging after a quarter of it);
	// 0 = off.
	HeartbeatTimeout time.Duration
	// Endpoint (server only) is the address peers dial this server at,
	// which its handshake proofs name; "" = the address given to Listen
	// (the bound one when its port is 0). Only a server reached through a
	// forwarded port needs it.
	Endpoint string
	// Peek (server only; nil: none) answers a request from memory, or
	// says it cannot. It runs on the connection's reader before the
	// request is handed to a worker, so it must never wait (no I/O, no
	// parent, no lock held across a wait): the reader also answers the
	// connection's pings and reads its other requests. A request it
	// answers never reaches the Handler.
	Peek Peeker
}

// Peeker answers a request at once from what it holds (ok), or reports
// !ok and the Handler answers it (see Config.Peek).
type Peeker func(o op.Op, path string) (res op.Result, ok bool)

// Handler answers one request that Config.Peek did not. It runs on a
// worker goroutine, never on the connection's reader, so it may block;
// ctx ends when the requesting connection closes or the server's context
// ends.
type Handler func(ctx context.Context, o op.Op, path string) op.Result

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.MaxFrame == 0:
		c.MaxFrame = DefaultMaxFrame
	case c.MaxFrame < MinMaxFrame || c.MaxFrame > math.MaxUint32:
		return c, fmt.Errorf("cnet: MaxFrame %d outside %d..%d", c.MaxFrame, MinMaxFrame, uint64(math.MaxUint32))
	}
	if err := checkToken(c.Token); err != nil {
		return c, err
	}
	if c.DialTimeout < 0 {
		return c, fmt.Errorf("cnet: negative DialTimeout %v", c.DialTimeout)
	}
	if c.HeartbeatTimeout < 0 {
		return c, fmt.Errorf("cnet: negative HeartbeatTimeout %v", c.HeartbeatTimeout)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// frameError is a failure to read a frame: the peer went away, the bytes
// broke the protocol, or the stream ended inside a frame. Clean says the
// stream ended exactly between frames, which is an ordinary hang-up.
type frameError struct {
	err   error
	clean bool
}

func (e *frameError) Error() string { return e.err.Error() }
func (e *frameError) Unwrap() error { return e.err }

// readFrame reads one frame from r, blocking until it is complete or the
// connection fails. The payload of a Read or Chunk response is a copy the
// caller owns (its Data is kept as it is); any other payload is borrowed from r:
// valid only until the caller's r.Release, so whatever outlives the frame
// is copied out of it (a request's path, a response's decoded fields),
// which saves an allocation and a copy of every such payload. The caller
// still calls r.Release. A length above maxPayload fails before anything
// is allocated or read for it.
func readFrame(r netpoll.Reader, maxPayload uint32) (Header, []byte, error) {
	hb, err := r.Next(HeaderSize)
	if err != nil {
		return Header{}, nil, headerReadError(r, err)
	}
	h, ok := parseHeader(hb)
	if !ok || h.Length > maxPayload {
		return Header{}, nil, badHeaderError(hb, h, ok, maxPayload)
	}
	if h.Length == 0 {
		return h, nil, nil
	}
	var payload []byte
	if ownedPayload(h) {
		// File data outlives the frame (it is cached, or stored as a
		// chunk): one copy into a slice of its own, which Next would add
		// to when the payload spans netpoll's buffer nodes.
		payload, err = readOwned(r, int(h.Length))
	} else {
		payload, err = r.Next(int(h.Length))
	}
	if err != nil {
		return Header{}, nil, payloadReadError(r, h, err)
	}
	return h, payload, nil
}

// The errors of readFrame are built out of line: readFrame runs for every
// frame on a netpoll reader goroutine that starts with a small stack (see
// parseHeader).

//go:noinline
func headerReadError(r netpoll.Reader, err error) error {
	if n := r.Len(); n > 0 {
		return &frameError{err: fmt.Errorf("%w: truncated header: %d of %d bytes: %w", ErrProtocol, n, HeaderSize, err)}
	}
	return &frameError{err: err, clean: true}
}

//go:noinline
func badHeaderError(hb []byte, h Header, parsed bool, maxPayload uint32) error {
	if !parsed {
		_, err := DecodeHeader(hb)
		return &frameError{err: err}
	}
	return &frameError{err: fmt.Errorf("%w: %v frame of %d payload bytes exceeds the %d-byte cap", ErrProtocol, h.Kind, h.Length, maxPayload)}
}

//go:noinline
func payloadReadError(r netpoll.Reader, h Header, err error) error {
	return &frameError{err: fmt.Errorf("%w: truncated %v payload: %d of %d bytes: %w", ErrProtocol, h.Kind, r.Len(), h.Length, err)}
}
