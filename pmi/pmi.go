// Package pmi is a client of the process-management interface that MPI
// launchers give their ranks: MPICH Hydra's mpiexec and Slurm's
// srun --mpi=pmi2 hand each rank a connection (PMI_FD, or PMI_PORT with
// PMI_ID) to a key-value space shared by the job, with a barrier. It
// speaks the PMI-1 wire ("simple PMI": newline-ended "cmd=... key=value"
// lines), which both servers accept, and the PMI-2 wire (length-prefixed
// "cmd=...;key=value;" frames), which both also accept after a PMI-1
// style init. Only what a bootstrap needs is here: init, put, barrier
// (fence), get, finalize.
//
// Every blocking call takes a context; its deadline bounds the read.
package pmi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Wire is a PMI wire protocol.
type Wire int

const (
	// Wire1 is PMI-1 ("simple PMI", version 1.1).
	Wire1 Wire = 1
	// Wire2 is PMI-2.
	Wire2 Wire = 2
)

func (w Wire) String() string { return "PMI-" + strconv.Itoa(int(w)) }

// PMI-2 has no get_maxes; these are the limits MPICH's pmi2.h and
// Slurm's pmi2 plugin both define.
const (
	pmi2KeyMax   = 64
	pmi2ValueMax = 1024
)

// ErrNotFound is returned (wrapped) by Get for a key nobody put.
var ErrNotFound = errors.New("key not found")

// Endpoint is where the launcher's PMI server is, from the environment.
type Endpoint struct {
	FD   int    // PMI_FD, an inherited connected socket; -1 if unset
	Addr string // PMI_PORT, host:port; used when FD is -1
	ID   int    // PMI_ID, this process's id for the PMI_PORT handshake; -1 if unset
	Rank int    // PMI_RANK; -1 if unset
}

// Source names the variable the connection comes from, for messages.
func (e Endpoint) Source() string {
	if e.FD >= 0 {
		return "PMI_FD=" + strconv.Itoa(e.FD)
	}
	return "PMI_PORT=" + e.Addr
}

// EndpointFromEnv reads PMI_FD, PMI_PORT, PMI_ID and PMI_RANK. ok is
// false when neither PMI_FD nor PMI_PORT is set (no PMI server: Open
// MPI's PMIx and Cray PALS do not offer one). A malformed value is an
// error naming the variable.
func EndpointFromEnv(getenv func(string) string) (e Endpoint, ok bool, err error) {
	e = Endpoint{FD: -1, ID: -1, Rank: -1}
	num := func(name string) (int, error) {
		raw := strings.TrimSpace(getenv(name))
		if raw == "" {
			return -1, nil
		}
		v, err := strconv.Atoi(raw)
		if err != nil || v < 0 {
			return -1, fmt.Errorf("pmi: %s=%q is not a non-negative integer", name, raw)
		}
		return v, nil
	}
	if e.FD, err = num("PMI_FD"); err != nil {
		return e, false, err
	}
	if e.ID, err = num("PMI_ID"); err != nil {
		return e, false, err
	}
	if e.Rank, err = num("PMI_RANK"); err != nil {
		return e, false, err
	}
	e.Addr = strings.TrimSpace(getenv("PMI_PORT"))
	if e.FD >= 0 {
		return e, true, nil
	}
	if e.Addr == "" {
		return e, false, nil
	}
	if _, _, err := net.SplitHostPort(e.Addr); err != nil {
		return e, false, fmt.Errorf("pmi: PMI_PORT=%q is not host:port: %w", e.Addr, err)
	}
	return e, true, nil
}

// Maxes are the server's length limits. A key or value must be shorter
// than its limit (the C servers count the terminating NUL).
type Maxes struct{ KVSName, Key, Value int }

// Client is one rank's PMI connection. It is not safe for concurrent use:
// PMI is a strict request/reply conversation.
type Client struct {
	conn      net.Conn
	r         *bufio.Reader
	wire      Wire
	src       string
	kvs       string // PMI-1 key-value space name
	maxes     Maxes
	rank      int // from the server, or -1
	size      int // from the server, or -1
	finalized bool
}

// Dial connects to the server at e and initializes wire: for PMI-1,
// init, get_maxes and get_my_kvsname; for PMI-2, init then fullinit. A
// PMI_FD descriptor is taken over: it is closed here (the client works
// on a close-on-exec duplicate), so no child inherits it.
func Dial(ctx context.Context, e Endpoint, wire Wire) (*Client, error) {
	if wire != Wire1 && wire != Wire2 {
		return nil, fmt.Errorf("pmi: unknown wire %d", int(wire))
	}
	conn, err := connect(ctx, e)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, maxLine), wire: wire, src: e.Source(), rank: -1, size: -1}
	if err := c.init(ctx, e); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func connect(ctx context.Context, e Endpoint) (net.Conn, error) {
	if e.FD >= 0 {
		f := os.NewFile(uintptr(e.FD), "PMI_FD")
		if f == nil {
			return nil, fmt.Errorf("pmi: PMI_FD=%d is not an open descriptor", e.FD)
		}
		conn, err := net.FileConn(f)
		f.Close() // the duplicate in conn is close-on-exec; the inherited one is not
		if err != nil {
			return nil, fmt.Errorf("pmi: PMI_FD=%d: not a socket from the launcher: %w", e.FD, err)
		}
		return conn, nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return nil, fmt.Errorf("pmi: PMI_PORT=%s: %w", e.Addr, err)
	}
	return conn, nil
}

func (c *Client) init(ctx context.Context, e Endpoint) error {
	if e.FD < 0 && e.ID >= 0 {
		if err := c.handshakePort(ctx, e.ID); err != nil {
			return err
		}
	}
	version := strconv.Itoa(int(c.wire))
	sub := map[Wire]string{Wire1: "1", Wire2: "0"}[c.wire]
	// Both wires open with a PMI-1 line: it is how the server learns which
	// wire the rest of the conversation uses.
	m, err := c.call1(ctx, Message{Cmd: "init", Fields: []Field{{"pmi_version", version}, {"pmi_subversion", sub}}}, "response_to_init")
	if err != nil {
		return err
	}
	if err := checkRC(m, "init"); err != nil {
		return err
	}
	if got, _ := m.Get("pmi_version"); got != version {
		return fmt.Errorf("pmi: %s: init: server answered pmi_version=%q, want %s", c.src, got, version)
	}
	if c.wire == Wire2 {
		return c.fullinit(ctx, e)
	}
	m, err = c.call1(ctx, Message{Cmd: "get_maxes"}, "maxes")
	if err != nil {
		return err
	}
	if err := checkRC(m, "get_maxes"); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"kvsname_max", &c.maxes.KVSName}, {"keylen_max", &c.maxes.Key}, {"vallen_max", &c.maxes.Value}} {
		if *f.dst, err = intField(m, "get_maxes", f.name, 1); err != nil {
			return err
		}
	}
	m, err = c.call1(ctx, Message{Cmd: "get_my_kvsname"}, "my_kvsname")
	if err != nil {
		return err
	}
	if err := checkRC(m, "get_my_kvsname"); err != nil {
		return err
	}
	c.kvs, _ = m.Get("kvsname")
	if c.kvs == "" {
		return fmt.Errorf("pmi: reply to get_my_kvsname: field kvsname is missing or empty (%s)", format(m))
	}
	if len(c.kvs) >= c.maxes.KVSName {
		return fmt.Errorf("pmi: reply to get_my_kvsname: field kvsname is %d bytes, not below kvsname_max=%d", len(c.kvs), c.maxes.KVSName)
	}
	return nil
}

// handshakePort is the PMI_PORT preamble: the server learns who this
// process is from PMI_ID and answers with its size, rank and debug flag.
func (c *Client) handshakePort(ctx context.Context, id int) error {
	if _, err := c.call1(ctx, Message{Cmd: "initack", Fields: []Field{{"pmiid", strconv.Itoa(id)}}}, "initack"); err != nil {
		return err
	}
	for range 3 {
		m, err := c.read1(ctx, "initack")
		if err != nil {
			return err
		}
		if m.Cmd != "set" || len(m.Fields) != 1 {
			return fmt.Errorf("pmi: after initack: got %q, want cmd=set with one field (size, rank or debug)", format(m))
		}
		switch f := m.Fields[0]; f.Key {
		case "size":
			if c.size, err = intField(m, "initack", "size", 1); err != nil {
				return err
			}
		case "rank":
			if c.rank, err = intField(m, "initack", "rank", 0); err != nil {
				return err
			}
		case "debug":
		default:
			return fmt.Errorf("pmi: after initack: unknown field %s in %q", f.Key, format(m))
		}
	}
	if c.rank < 0 || c.size < 1 || c.rank >= c.size {
		return fmt.Errorf("pmi: after initack: rank %d and size %d do not fit", c.rank, c.size)
	}
	return nil
}

func (c *Client) fullinit(ctx context.Context, e Endpoint) error {
	req := Message{Cmd: "fullinit", Fields: []Field{{"threaded", "FALSE"}}}
	// Hydra wants pmirank even over PMI_PORT, where the initack
	// handshake has told us the rank.
	switch {
	case e.Rank >= 0:
		req.Fields = append([]Field{{"pmirank", strconv.Itoa(e.Rank)}}, req.Fields...)
	case c.rank >= 0:
		req.Fields = append([]Field{{"pmirank", strconv.Itoa(c.rank)}}, req.Fields...)
	default:
		return fmt.Errorf("pmi: %s: PMI-2 fullinit needs PMI_RANK or PMI_ID, and neither is set", c.src)
	}
	m, err := c.call2(ctx, req, "fullinit-response")
	if err != nil {
		return err
	}
	if err := checkRC(m, "fullinit"); err != nil {
		return err
	}
	if c.rank, err = intField(m, "fullinit", "rank", 0); err != nil {
		return err
	}
	if c.size, err = intField(m, "fullinit", "size", 1); err != nil {
		return err
	}
	if c.rank >= c.size {
		return fmt.Errorf("pmi: reply to fullinit: rank=%d is not below size=%d", c.rank, c.size)
	}
	c.maxes = Maxes{Key: pmi2KeyMax, Value: pmi2ValueMax}
	return nil
}

// Wire is the protocol this client speaks.
func (c *Client) Wire() Wire { return c.wire }

// KVSName is the PMI-1 key-value space ("" on PMI-2, which names none).
func (c *Client) KVSName() string { return c.kvs }

// Maxes are the server's limits (PMI-2: the protocol's fixed ones).
func (c *Client) Maxes() Maxes { return c.maxes }

// Rank and Size are what the server said (PMI_PORT handshake, PMI-2
// fullinit), or -1 when it said nothing (PMI-1 over PMI_FD: the rank is
// in PMI_RANK and PMI_SIZE instead).
func (c *Client) Rank() int { return c.rank }

// Size: see Rank.
func (c *Client) Size() int { return c.size }

// Put stores key=value in the job's key-value space. It is visible to
// the other ranks after the next Fence.
func (c *Client) Put(ctx context.Context, key, value string) error {
	if err := c.checkKV(key, value); err != nil {
		return err
	}
	if c.wire == Wire2 {
		m, err := c.call2(ctx, Message{Cmd: "kvs-put", Fields: []Field{{"key", key}, {"value", value}}}, "kvs-put-response")
		if err != nil {
			return err
		}
		return checkRC(m, "kvs-put key="+key)
	}
	m, err := c.call1(ctx, Message{Cmd: "put", Fields: []Field{{"kvsname", c.kvs}, {"key", key}, {"value", value}}}, "put_result")
	if err != nil {
		return err
	}
	return checkRC(m, "put key="+key)
}

// Fence waits until every rank of the job has called it (PMI-1
// barrier_in/barrier_out, PMI-2 kvs-fence); puts made before it are then
// visible to all.
func (c *Client) Fence(ctx context.Context) error {
	if c.wire == Wire2 {
		m, err := c.call2(ctx, Message{Cmd: "kvs-fence"}, "kvs-fence-response")
		if err != nil {
			return err
		}
		return checkRC(m, "kvs-fence")
	}
	m, err := c.call1(ctx, Message{Cmd: "barrier_in"}, "barrier_out")
	if err != nil {
		return err
	}
	return checkRC(m, "barrier_in")
}

// Get fetches key from the job's key-value space; a key nobody put is an
// error wrapping ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) (string, error) {
	if err := c.checkKV(key, ""); err != nil {
		return "", err
	}
	if c.wire == Wire2 {
		m, err := c.call2(ctx, Message{Cmd: "kvs-get", Fields: []Field{{"srcid", "-1"}, {"key", key}}}, "kvs-get-response")
		if err != nil {
			return "", err
		}
		if err := checkRC(m, "kvs-get key="+key); err != nil {
			return "", err
		}
		switch found, _ := m.Get("found"); found {
		case "TRUE":
		case "FALSE":
			return "", fmt.Errorf("pmi: kvs-get key=%s: %w", key, ErrNotFound)
		default:
			return "", fmt.Errorf("pmi: reply to kvs-get key=%s: field found=%q, want TRUE or FALSE", key, found)
		}
		v, ok := m.Get("value")
		if !ok {
			return "", fmt.Errorf("pmi: reply to kvs-get key=%s: found=TRUE but field value is missing", key)
		}
		return v, nil
	}
	m, err := c.call1(ctx, Message{Cmd: "get", Fields: []Field{{"kvsname", c.kvs}, {"key", key}}}, "get_result")
	if err != nil {
		return "", err
	}
	// Hydra answers a missing key with rc=-1, Slurm with rc=1: any
	// non-zero rc on a get means not found.
	if rc, _ := m.Get("rc"); rc != "0" {
		msg, _ := m.Get("msg")
		return "", fmt.Errorf("pmi: get key=%s: rc=%s msg=%q: %w", key, rc, msg, ErrNotFound)
	}
	v, ok := m.Get("value")
	if !ok {
		return "", fmt.Errorf("pmi: reply to get key=%s: rc=0 but field value is missing", key)
	}
	return v, nil
}

// Finalize tells the server this rank is done with PMI, so the launcher
// sees an orderly exit. Once only.
func (c *Client) Finalize(ctx context.Context) error {
	if c.finalized {
		return nil
	}
	c.finalized = true
	if c.wire == Wire2 {
		m, err := c.call2(ctx, Message{Cmd: "finalize"}, "finalize-response")
		if err != nil {
			return err
		}
		return checkRC(m, "finalize")
	}
	m, err := c.call1(ctx, Message{Cmd: "finalize"}, "finalize_ack")
	if err != nil {
		return err
	}
	return checkRC(m, "finalize")
}

// Close closes the connection (without finalizing). Safe more than once.
func (c *Client) Close() error {
	err := c.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

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
