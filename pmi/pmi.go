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
	"strconv"
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
