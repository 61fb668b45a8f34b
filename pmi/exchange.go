package pmi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func (c *Client) checkKV(key, value string) error {
	if key == "" || len(key) >= c.maxes.Key {
		return fmt.Errorf("pmi: key %q: want 1..%d bytes (keylen_max=%d)", key, c.maxes.Key-1, c.maxes.Key)
	}
	if len(value) >= c.maxes.Value {
		return fmt.Errorf("pmi: value for key %s: %d bytes, want fewer than vallen_max=%d", key, len(value), c.maxes.Value)
	}
	return nil
}

// call1 sends a PMI-1 line and reads the reply, which must be want.
func (c *Client) call1(ctx context.Context, req Message, want string) (Message, error) {
	line, err := EncodeLine(req)
	if err != nil {
		return Message{}, err
	}
	if err := c.send(ctx, req.Cmd, line); err != nil {
		return Message{}, err
	}
	m, err := c.read1(ctx, req.Cmd)
	if err != nil {
		return Message{}, err
	}
	if m.Cmd != want {
		return Message{}, fmt.Errorf("pmi: reply to %s: got cmd=%s, want cmd=%s (%s)", req.Cmd, m.Cmd, want, format(m))
	}
	return m, nil
}

func (c *Client) read1(ctx context.Context, after string) (Message, error) {
	stop := c.bound(ctx)
	line, err := readLine(c.r)
	stop()
	if err != nil {
		return Message{}, c.ioErr(ctx, "reading the reply to "+after, err)
	}
	m, err := DecodeLine(line)
	if err != nil {
		return Message{}, fmt.Errorf("pmi: reply to %s: %w", after, err)
	}
	return m, nil
}

// call2 sends a PMI-2 frame and reads the reply, which must be want.
func (c *Client) call2(ctx context.Context, req Message, want string) (Message, error) {
	frame, err := EncodeFrame(req)
	if err != nil {
		return Message{}, err
	}
	if err := c.send(ctx, req.Cmd, frame); err != nil {
		return Message{}, err
	}
	stop := c.bound(ctx)
	body, err := readFrame(c.r)
	stop()
	if err != nil {
		return Message{}, c.ioErr(ctx, "reading the reply to "+req.Cmd, err)
	}
	m, err := DecodeFrameBody(body)
	if err != nil {
		return Message{}, fmt.Errorf("pmi: reply to %s: %w", req.Cmd, err)
	}
	if m.Cmd != want {
		return Message{}, fmt.Errorf("pmi: reply to %s: got cmd=%s, want cmd=%s (%s)", req.Cmd, m.Cmd, want, format(m))
	}
	return m, nil
}

// send writes one whole message in one write: Slurm reads a PMI-1 init
// with a single read().
func (c *Client) send(ctx context.Context, cmd string, b []byte) error {
	stop := c.bound(ctx)
	_, err := c.conn.Write(b)
	stop()
	if err != nil {
		return c.ioErr(ctx, "sending "+cmd, err)
	}
	return nil
}

// bound makes the connection's I/O end at ctx's deadline or
// cancellation; the returned func lifts that.
func (c *Client) bound(ctx context.Context) func() {
	deadline, _ := ctx.Deadline()
	c.conn.SetDeadline(deadline) // zero: none
	cancelled := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() {
		cancelled()
		c.conn.SetDeadline(time.Time{})
	}
}

func (c *Client) ioErr(ctx context.Context, what string, err error) error {
	// The connection's deadline is the context's and may fire a moment
	// before the context's own timer: wait for it, so the error carries
	// the context's cause.
	if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("pmi: %s: %s: %w (%v)", c.src, what, context.Cause(ctx), err)
	}
	return fmt.Errorf("pmi: %s: %s: %w", c.src, what, err)
}

// checkRC fails a reply whose rc field is present and not 0.
func checkRC(m Message, what string) error {
	rc, ok := m.Get("rc")
	if !ok || rc == "0" {
		return nil
	}
	if _, err := strconv.Atoi(rc); err != nil {
		return fmt.Errorf("pmi: reply to %s: field rc=%q is not an integer", what, rc)
	}
	msg, _ := m.Get("msg")
	if msg == "" {
		msg, _ = m.Get("errmsg")
	}
	return fmt.Errorf("pmi: %s failed: rc=%s msg=%q", what, rc, msg)
}

// intField reads an integer field of at least min.
func intField(m Message, what, key string, min int) (int, error) {
	raw, ok := m.Get(key)
	if !ok {
		return 0, fmt.Errorf("pmi: reply to %s: field %s is missing (%s)", what, key, format(m))
	}
	v, err := strconv.Atoi(raw)
	if err != nil || v < min {
		return 0, fmt.Errorf("pmi: reply to %s: field %s=%q: want an integer ≥ %d", what, key, raw, min)
	}
	return v, nil
}

// format renders a decoded message for an error.
func format(m Message) string {
	var b strings.Builder
	b.WriteString("cmd=" + m.Cmd)
	for _, f := range m.Fields {
		b.WriteString(" " + f.Key + "=" + f.Value)
	}
	return clip(b.String())
}
