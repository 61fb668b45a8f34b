package bootstrap

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"time"
)

// RemoteError is rank 0's reason for failing the gather, as received by a
// rank. Every waiting rank gets the same Reason.
type RemoteError struct {
	Addr   string // rank 0's bootstrap address
	Reason string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("bootstrap: rank 0 at %s failed the gather: %s", e.Addr, e.Reason)
}

// Join sends h to rank 0 at opts.Addr and waits for the verdict. It dials
// with exponential backoff (RetryInitial doubling to RetryMax, jittered)
// until opts.Timeout has passed since the call, then fails naming the
// address. Once connected it waits for the verdict up to Timeout plus a
// quarter, so that rank 0, whose own deadline is Timeout from a start no
// later than this connection, always speaks first. A connection lost
// before the verdict is redialled while the dial deadline lasts (rank 0
// forgets a rank whose connection closed). Each attempt sends h with a
// fresh nonce (h.Nonce is ignored), tagged with opts.Key, and accepts only
// a result tagged for that nonce. The returned Result has no Seen:
// provenance stays at rank 0.
func Join(ctx context.Context, h Hello, opts Options) (Result, error) {
	opts = opts.withDefaults()
	if err := checkKey(opts.Key); err != nil {
		return Result{}, err
	}
	h.Nonce = make([]byte, NonceLen)
	if _, err := encodeHello(h, opts.Key, nil); err != nil { // fail early on a bad hello
		return Result{}, fmt.Errorf("bootstrap: %w", err)
	}
	dialDeadline := time.Now().Add(opts.Timeout)
	backoff := opts.RetryInitial
	attempts := 0
	for {
		attempts++
		res, retry, err := joinOnce(ctx, h, opts)
		if err == nil || !retry {
			return res, err
		}
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("bootstrap: joining rank 0 at %s as rank %d: %w (last error: %v)",
				opts.Addr, h.Rank, context.Cause(ctx), err)
		}
		wait := backoff/2 + mrand.N(backoff/2+1) // jitter spreads 10,000 redials
		if time.Now().Add(wait).After(dialDeadline) {
			return Result{}, fmt.Errorf("bootstrap: rank 0 at %s unreachable from rank %d after %s (%d attempts): %w",
				opts.Addr, h.Rank, opts.Timeout, attempts, err)
		}
		opts.Logger.Debug("bootstrap: retrying", "addr", opts.Addr, "rank", h.Rank, "attempt", attempts, "err", err, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, opts.RetryMax)
	}
}

// joinOnce makes one attempt. retry reports whether the failure was in the
// transport (worth redialling) rather than a verdict or a bad result.
func joinOnce(ctx context.Context, h Hello, opts Options) (Result, bool, error) {
	d := net.Dialer{Timeout: min(opts.Timeout, 10*time.Second)}
	c, err := d.DialContext(ctx, "tcp", opts.Addr)
	if err != nil {
		return Result{}, true, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	verdictWait := opts.Timeout + opts.Timeout/4
	c.SetDeadline(time.Now().Add(verdictWait))

	challenge, err := readChallenge(c)
	if errors.Is(err, errVersion) {
		return Result{}, false, fmt.Errorf("bootstrap: rank 0 at %s: %w", opts.Addr, err)
	}
	if err != nil {
		// A rank 0 of an older copper sends none: it waits for the hello,
		// then drops the connection.
		return Result{}, true, fmt.Errorf("reading rank 0's challenge (a copper older than bootstrap v%d sends none: every rank must run the same copper): %w", Version, err)
	}
	h.Nonce = make([]byte, NonceLen)
	rand.Read(h.Nonce) // crypto/rand.Read never fails (Go ≥ 1.24)
	payload, err := encodeHello(h, opts.Key, challenge)
	if err != nil {
		return Result{}, false, fmt.Errorf("bootstrap: %w", err)
	}
	if _, err := c.Write(encodeFrame(kindHello, payload)); err != nil {
		return Result{}, true, fmt.Errorf("sending hello: %w", err)
	}
	k, payload, err := readFrame(c, MaxResultFrame)
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && ctx.Err() == nil {
			return Result{}, false, fmt.Errorf("bootstrap: rank %d got no verdict from rank 0 at %s within %s: %w",
				h.Rank, opts.Addr, verdictWait, err)
		}
		return Result{}, true, fmt.Errorf("connection lost before the verdict: %w", err)
	}
	switch k {
	case kindError:
		return Result{}, false, &RemoteError{Addr: opts.Addr, Reason: string(payload)}
	case kindResult:
	default:
		return Result{}, false, fmt.Errorf("bootstrap: rank 0 at %s sent a %s frame instead of a verdict", opts.Addr, k)
	}
	body, err := openResult(payload, opts.Key, h.Nonce)
	if err != nil {
		return Result{}, false, fmt.Errorf("bootstrap: rank %d: the result from rank 0 at %s %w", h.Rank, opts.Addr, err)
	}
	res, err := decodeResult(body, maxResultRaw)
	if err != nil {
		return Result{}, false, fmt.Errorf("bootstrap: from rank 0 at %s: %w", opts.Addr, err)
	}
	// The book must be the job this rank believes in, with this rank in it.
	if len(res.Book) != h.Size {
		return Result{}, false, fmt.Errorf("bootstrap: rank 0 at %s sent a book of %d ranks, rank %d expects %d",
			opts.Addr, len(res.Book), h.Rank, h.Size)
	}
	if e := res.Book[h.Rank]; e.Host != h.Host || e.Endpoint != h.Endpoint {
		return Result{}, false, fmt.Errorf("bootstrap: rank 0 at %s lists rank %d as %s %s, not %s %s",
			opts.Addr, h.Rank, e.Host, e.Endpoint, h.Host, h.Endpoint)
	}
	return res, false, nil
}

// openResult checks a result payload's tag for this connection's nonce and
// returns the compressed body. Nothing from the result is used before its
// tag verifies: not even inflated, so a stranger cannot make a rank
// decompress a bomb.
func openResult(payload, key, nonce []byte) ([]byte, error) {
	if len(payload) < TagLen {
		return nil, fmt.Errorf("has no tag (%d bytes): not a copper bootstrap v%d rank 0", len(payload), Version)
	}
	body, tag := payload[:len(payload)-TagLen], payload[len(payload)-TagLen:]
	if !hmac.Equal(tag, resultTag(key, nonce, sha256.Sum256(body))) {
		return nil, fmt.Errorf("%w: forged, replayed, or rank 0 holds another key_file (is it the same file on every node?)", errBadTag)
	}
	return body, nil
}

// readChallenge reads the frame rank 0 opens every connection with.
func readChallenge(c net.Conn) ([]byte, error) {
	k, payload, err := readFrame(c, MaxHelloFrame)
	switch {
	case err != nil:
		return nil, err
	case k != kindChallenge:
		return nil, fmt.Errorf("rank 0 opened with a %s frame, not a challenge", k)
	case len(payload) != NonceLen:
		return nil, fmt.Errorf("challenge of %d bytes, want %d", len(payload), NonceLen)
	}
	return payload, nil
}
