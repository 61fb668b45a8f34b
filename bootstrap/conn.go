package bootstrap

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// accept runs until the verdict, holding at most size+spareConns live
// connections so that strangers cannot exhaust rank 0's descriptors.
func (g *gather) accept() {
	defer g.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		select {
		case g.slots <- struct{}{}:
		case <-g.done:
			return
		}
		c, err := g.ln.Accept()
		if err != nil {
			<-g.slots
			select {
			case <-g.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				g.log.Error("bootstrap: listener closed before the gather finished", "addr", g.addr)
				return
			}
			// Typically EMFILE: wait for connections to finish, as net/http does.
			g.log.Warn("bootstrap: accept failed; retrying", "addr", g.addr, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-g.done:
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		g.wg.Add(1)
		go g.handle(c)
	}
}

// handle reads one hello, registers it, then waits on the connection so
// that a rank that hangs up before the verdict is unregistered.
func (g *gather) handle(c net.Conn) {
	defer g.wg.Done()
	defer func() { <-g.slots }()
	defer c.Close()
	peer := c.RemoteAddr().String()

	g.setPending(c, true)
	helloWait := time.Now().Add(min(maxHelloWait, g.opts.Timeout))
	c.SetDeadline(helloWait)
	challenge := make([]byte, NonceLen)
	rand.Read(challenge) // crypto/rand.Read never fails (Go ≥ 1.24)
	if _, err := c.Write(encodeFrame(kindChallenge, challenge)); err != nil {
		g.setPending(c, false)
		g.log.Debug("bootstrap: connection gone before its challenge", "addr", g.addr, "peer", peer, "err", err)
		return
	}
	c.SetWriteDeadline(time.Time{})
	h, err := readHello(c, g.opts.Key, challenge)
	g.setPending(c, false)
	if err != nil {
		select {
		case <-g.done: // closed by the verdict, not the peer's fault
			return
		default:
		}
		g.log.Error("bootstrap: dropped connection", "addr", g.addr, "peer", peer, "err", err)
		if errors.Is(err, errBadTag) {
			g.mu.Lock()
			g.badTags++
			g.lastBadTag = peer
			g.mu.Unlock()
		}
		g.reply(c, fmt.Sprintf("rank 0 at %s dropped this connection: %v", g.addr, err))
		return
	}
	c.SetReadDeadline(time.Time{})

	reg := registration{conn: c, hello: h, peer: peer}
	select {
	case g.register <- reg:
	case <-g.done:
		if g.failure != "" {
			g.reply(c, g.failure)
		} else {
			g.reply(c, fmt.Sprintf("rank %d (host %s) joined after the gather had completed: is rank %d running twice?",
				h.Rank, h.Host, h.Rank))
		}
		return
	}
	// Nothing more is expected from the rank: Read returns when it hangs
	// up, or when the verdict has been written and the connection closed.
	var b [1]byte
	n, err := c.Read(b[:])
	if n > 0 {
		err = errors.New("unexpected bytes after the hello")
		g.log.Error("bootstrap: protocol violation", "addr", g.addr, "peer", peer, "rank", h.Rank, "err", err)
	}
	select {
	case g.lost <- lostConn{reg, err}:
	case <-g.done:
	}
}

func readHello(c net.Conn, key, challenge []byte) (Hello, error) {
	k, payload, err := readFrame(c, MaxHelloFrame)
	if err != nil {
		return Hello{}, err
	}
	if k != kindHello {
		return Hello{}, fmt.Errorf("expected a hello frame, got %s", k)
	}
	return decodeHello(payload, key, challenge)
}

// checkKey refuses to gather without a usable job key.
func checkKey(key []byte) error {
	if len(key) < MinKeyLen {
		return fmt.Errorf("bootstrap: job key of %d bytes: want at least %d (key_file)", len(key), MinKeyLen)
	}
	return nil
}

// reply sends a best-effort error frame on a connection about to close,
// then half-closes and drains a little: closing a socket with unread input
// makes the kernel send a reset, which can destroy the reply in flight.
func (g *gather) reply(c net.Conn, msg string) {
	c.SetWriteDeadline(time.Now().Add(replyLinger))
	if _, err := c.Write(encodeFrame(kindError, []byte(truncate(msg, MaxHelloFrame)))); err != nil {
		return
	}
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(replyLinger))
	io.Copy(io.Discard, io.LimitReader(c, MaxHelloFrame))
}

func (g *gather) setPending(c net.Conn, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if on {
		select {
		case <-g.done: // closePending may have run already
			c.Close()
			return
		default:
		}
		g.pending[c] = struct{}{}
	} else {
		delete(g.pending, c)
	}
}

// closePending unblocks handlers still waiting for a hello after the verdict.
func (g *gather) closePending() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.pending {
		c.Close()
	}
}
