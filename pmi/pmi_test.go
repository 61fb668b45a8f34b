package pmi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// step is one exchange of a scripted server: it reads exactly want (the
// client's bytes must match), then writes reply. hang: after reading,
// answer nothing until the client goes away; close: close the
// connection after the reply.
type step struct {
	want, reply string
	hang, close bool
}

// Replies as MPICH Hydra 4.0 (mpiexec.mpich) writes them, recorded from
// the real server, and as Slurm's mpi/pmi2 plugin writes them (pmi1.c).
const (
	hydraInit  = "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0\n"
	hydraMaxes = "cmd=maxes kvsname_max=256 keylen_max=64 vallen_max=1024\n"
	hydraKVS   = "cmd=my_kvsname kvsname=kvs_9470_0_97161516_vm\n"
	slurmInit  = "cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1\n"
	slurmMaxes = "cmd=maxes rc=0 kvsname_max=256 keylen_max=256 vallen_max=1024\n"
	slurmKVS   = "cmd=my_kvsname rc=0 kvsname=42.0\n"
	init1      = "cmd=init pmi_version=1 pmi_subversion=1\n"
)

// hydraOpen is the exchange Dial does with Hydra over PMI_FD.
var hydraOpen = []step{
	{want: init1, reply: hydraInit},
	{want: "cmd=get_maxes\n", reply: hydraMaxes},
	{want: "cmd=get_my_kvsname\n", reply: hydraKVS},
}

// fakeServer runs script on one end of a socketpair and returns the other
// end's descriptor, as a launcher passes it in PMI_FD. The script's
// outcome arrives on the returned channel once the client is done.
func fakeServer(t *testing.T, script []step) (int, <-chan error) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	f := os.NewFile(uintptr(fds[1]), "server")
	conn, err := net.FileConn(f)
	f.Close()
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	done := make(chan error, 1)
	go func() { done <- serveScript(conn, script) }()
	return fds[0], done
}

func serveScript(conn net.Conn, script []step) error {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	for i, s := range script {
		got := make([]byte, len(s.want))
		if _, err := io.ReadFull(conn, got); err != nil {
			return fmt.Errorf("step %d: reading %q: %w", i, s.want, err)
		}
		if string(got) != s.want {
			return fmt.Errorf("step %d: got %q, want %q", i, got, s.want)
		}
		if s.hang {
			_, _ = io.Copy(io.Discard, conn) // until the client closes
			return nil
		}
		if _, err := conn.Write([]byte(s.reply)); err != nil {
			return err
		}
		if s.close {
			return nil
		}
	}
	// The client may close, but must send nothing the script does not expect.
	extra, err := io.ReadAll(conn)
	if len(extra) > 0 {
		return fmt.Errorf("after the script: unexpected %q", extra)
	}
	return err
}

func dialFake(t *testing.T, script []step, wire Wire, e Endpoint) (*Client, error, <-chan error) {
	t.Helper()
	fd, done := fakeServer(t, script)
	e.FD = fd
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, e, wire)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err, done
}

func TestPMI1HydraConversation(t *testing.T) {
	script := append(append([]step{}, hydraOpen...),
		step{want: "cmd=put kvsname=kvs_9470_0_97161516_vm key=copper-bootstrap value=127.0.0.1:4000\n", reply: "cmd=put_result rc=0 msg=success\n"},
		step{want: "cmd=barrier_in\n", reply: "cmd=barrier_out\n"},
		step{want: "cmd=get kvsname=kvs_9470_0_97161516_vm key=copper-bootstrap\n", reply: "cmd=get_result rc=0 msg=success value=127.0.0.1:4000\n"},
		step{want: "cmd=get kvsname=kvs_9470_0_97161516_vm key=nope\n", reply: "cmd=get_result rc=-1 msg=key_nope_not_found value=unknown\n"},
		step{want: "cmd=finalize\n", reply: "cmd=finalize_ack\n"},
	)
	c, err, done := dialFake(t, script, Wire1, Endpoint{ID: -1, Rank: 0})
	require.NoError(t, err)
	ctx := context.Background()
	assert.Equal(t, Maxes{KVSName: 256, Key: 64, Value: 1024}, c.Maxes())
	assert.Equal(t, "kvs_9470_0_97161516_vm", c.KVSName())
	assert.Equal(t, -1, c.Rank(), "PMI-1 over PMI_FD: the rank is in the environment, not the reply")
	require.NoError(t, c.Put(ctx, "copper-bootstrap", "127.0.0.1:4000"))
	require.NoError(t, c.Fence(ctx))
	v, err := c.Get(ctx, "copper-bootstrap")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:4000", v)
	_, err = c.Get(ctx, "nope")
	require.ErrorIs(t, err, ErrNotFound)
	assert.ErrorContains(t, err, "key_nope_not_found")
	require.NoError(t, c.Finalize(ctx))
	require.NoError(t, c.Finalize(ctx), "a second finalize sends nothing")
	require.NoError(t, c.Close())
	require.NoError(t, <-done)
}

func TestPMI1SlurmReplies(t *testing.T) {
	script := []step{
		{want: init1, reply: slurmInit},
		{want: "cmd=get_maxes\n", reply: slurmMaxes},
		{want: "cmd=get_my_kvsname\n", reply: slurmKVS},
		{want: "cmd=barrier_in\n", reply: "cmd=barrier_out rc=0\n"},
		{want: "cmd=get kvsname=42.0 key=k\n", reply: "cmd=get_result rc=0 value=v\n"},
		{want: "cmd=get kvsname=42.0 key=gone\n", reply: "cmd=get_result rc=1\n"},
		{want: "cmd=finalize\n", reply: "cmd=finalize_ack rc=0\n"},
	}
	c, err, done := dialFake(t, script, Wire1, Endpoint{ID: -1, Rank: 3})
	require.NoError(t, err)
	ctx := context.Background()
	assert.Equal(t, "42.0", c.KVSName())
	require.NoError(t, c.Fence(ctx))
	v, err := c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v", v)
	_, err = c.Get(ctx, "gone")
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, c.Finalize(ctx))
	require.NoError(t, c.Close())
	require.NoError(t, <-done)
}

// TestPMI1Errors: every bad reply is an error naming the command and the
// field.
func TestPMI1Errors(t *testing.T) {
	cases := []struct {
		name   string
		script []step
		want   string
	}{
		{"init refused", []step{{want: init1, reply: "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=-1 msg=nope\n"}},
			"init failed: rc=-1"},
		{"init other version", []step{{want: init1, reply: "cmd=response_to_init pmi_version=2 pmi_subversion=0 rc=0\n"}},
			`pmi_version="2", want 1`},
		{"wrong reply cmd", []step{{want: init1, reply: "cmd=maxes kvsname_max=1\n"}},
			"reply to init: got cmd=maxes, want cmd=response_to_init"},
		{"not key=value", []step{{want: init1, reply: "cmd=response_to_init garbage\n"}},
			`reply to init: pmi: line "cmd=response_to_init garbage": field "garbage" is not key=value`},
		{"maxes not a number", []step{{want: init1, reply: hydraInit}, {want: "cmd=get_maxes\n", reply: "cmd=maxes kvsname_max=256 keylen_max=x vallen_max=1024\n"}},
			`reply to get_maxes: field keylen_max="x"`},
		{"maxes missing", []step{{want: init1, reply: hydraInit}, {want: "cmd=get_maxes\n", reply: "cmd=maxes kvsname_max=256 keylen_max=64\n"}},
			"reply to get_maxes: field vallen_max is missing"},
		{"no kvsname", append(hydraOpen[:2:2], step{want: "cmd=get_my_kvsname\n", reply: "cmd=my_kvsname\n"}),
			"reply to get_my_kvsname: field kvsname is missing"},
		{"duplicate field", []step{{want: init1, reply: "cmd=response_to_init rc=0 rc=0\n"}},
			"response_to_init: field rc appears twice"},
		{"closed mid-line", []step{{want: init1, reply: "cmd=response_to_init rc", close: true}},
			"reading the reply to init: connection closed inside a line"},
		{"closed", []step{{want: init1, reply: "", close: true}},
			"reading the reply to init: EOF"},
		{"line too long", []step{{want: init1, reply: "cmd=response_to_init x=" + strings.Repeat("a", maxLine) + "\n"}},
			"reading the reply to init: line longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err, done := dialFake(t, tc.script, Wire1, Endpoint{ID: -1, Rank: 0})
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.want)
			<-done
		})
	}
}

func TestPMI1PutFailsAndLimits(t *testing.T) {
	script := append(append([]step{}, hydraOpen...),
		step{want: "cmd=put kvsname=kvs_9470_0_97161516_vm key=k value=v\n", reply: "cmd=put_result rc=-1 msg=duplicate_key\n"})
	c, err, done := dialFake(t, script, Wire1, Endpoint{ID: -1, Rank: 0})
	require.NoError(t, err)
	ctx := context.Background()
	err = c.Put(ctx, "k", "v")
	assert.ErrorContains(t, err, `put key=k failed: rc=-1 msg="duplicate_key"`)
	// Refused before anything is sent: the script has no more steps, so a
	// sent byte would make the server report a mismatch.
	assert.ErrorContains(t, c.Put(ctx, strings.Repeat("k", 64), "v"), "keylen_max=64")
	assert.ErrorContains(t, c.Put(ctx, "k", strings.Repeat("v", 1024)), "vallen_max=1024")
	assert.ErrorContains(t, c.Put(ctx, "k", "a b"), "cannot hold a space")
	assert.ErrorContains(t, c.Put(ctx, "k", "a=b"), "cannot hold a space, '='")
	c.Close()
	require.NoError(t, <-done)
}

// TestDeadlineBoundsBarrier: a server that never answers the barrier
// cannot hold the client past its context's deadline.
func TestDeadlineBoundsBarrier(t *testing.T) {
	script := append(append([]step{}, hydraOpen...), step{want: "cmd=barrier_in\n", hang: true})
	c, err, done := dialFake(t, script, Wire1, Endpoint{ID: -1, Rank: 0})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = c.Fence(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "reading the reply to barrier_in")
	c.Close()
	require.NoError(t, <-done)
}

// TestCancelBoundsBarrier: cancelling (Ctrl-C, another rank failing) ends
// the wait at once, with the cause.
func TestCancelBoundsBarrier(t *testing.T) {
	script := append(append([]step{}, hydraOpen...), step{want: "cmd=barrier_in\n", hang: true})
	c, err, done := dialFake(t, script, Wire1, Endpoint{ID: -1, Rank: 0})
	require.NoError(t, err)
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(errors.New("rank 0 gave up")) })
	err = c.Fence(ctx)
	assert.ErrorContains(t, err, "rank 0 gave up")
	c.Close()
	require.NoError(t, <-done)
}

// TestPMIPortHandshake: with PMI_PORT and PMI_ID (mpiexec -pmi-port) the
// server first answers initack with the rank and size, as Hydra does.
func TestPMIPortHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		done <- serveScript(conn, append([]step{
			{want: "cmd=initack pmiid=1\n", reply: "cmd=initack\ncmd=set size=2\ncmd=set rank=1\ncmd=set debug=0\n"},
		}, hydraOpen...))
	}()
	e, ok, err := EndpointFromEnv(mapEnv{"PMI_PORT": ln.Addr().String(), "PMI_ID": "1"}.get)
	require.NoError(t, err)
	require.True(t, ok)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, e, Wire1)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Rank())
	assert.Equal(t, 2, c.Size())
	c.Close()
	require.NoError(t, <-done)
}

func TestPMI2Conversation(t *testing.T) {
	frame := frameOf
	script := []step{
		{want: "cmd=init pmi_version=2 pmi_subversion=0\n", reply: "cmd=response_to_init pmi_version=2 pmi_subversion=0 rc=0\n"},
		{want: frame("cmd=fullinit;pmirank=1;threaded=FALSE;"),
			reply: frame("cmd=fullinit-response;pmi-version=2;pmi-subversion=0;rank=1;size=2;appnum=0;debugged=FALSE;pmiverbose=FALSE;rc=0;")},
		{want: frame("cmd=kvs-put;key=k;value=a:b;"), reply: frame("cmd=kvs-put-response;rc=0;")},
		{want: frame("cmd=kvs-fence;"), reply: frame("cmd=kvs-fence-response;rc=0;")},
		{want: frame("cmd=kvs-get;srcid=-1;key=k;"), reply: frame("cmd=kvs-get-response;found=TRUE;value=a;;b;rc=0;")},
		{want: frame("cmd=kvs-get;srcid=-1;key=nope;"), reply: frame("cmd=kvs-get-response;found=FALSE;rc=0;")},
		{want: frame("cmd=finalize;"), reply: frame("cmd=finalize-response;rc=0;")},
	}
	c, err, done := dialFake(t, script, Wire2, Endpoint{ID: -1, Rank: 1})
	require.NoError(t, err)
	ctx := context.Background()
	assert.Equal(t, 1, c.Rank())
	assert.Equal(t, 2, c.Size())
	assert.ErrorContains(t, c.Put(ctx, "k", "a;b"), "PMI-2 values cannot hold a ';'", "refused before sending")
	require.NoError(t, c.Put(ctx, "k", "a:b"))
	require.NoError(t, c.Fence(ctx))
	v, err := c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "a;b", v)
	_, err = c.Get(ctx, "nope")
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, c.Finalize(ctx))
	require.NoError(t, c.Close())
	require.NoError(t, <-done)
}

func TestPMI2Errors(t *testing.T) {
	init2 := step{want: "cmd=init pmi_version=2 pmi_subversion=0\n", reply: "cmd=response_to_init pmi_version=2 pmi_subversion=0 rc=0\n"}
	full := frameOf("cmd=fullinit;pmirank=0;threaded=FALSE;")
	cases := []struct {
		name, reply, want string
	}{
		{"bad header", "abcdefcmd=x;", `frame length header "abcdef"`},
		{"zero length", "0     ", `frame length header "0     "`},
		{"short body", "40    cmd=fullinit-response;", "frame of 40 bytes: unexpected EOF"}, // closed by the server
		{"no closing semicolon", frameOf("cmd=fullinit-response;rc=0"), "field rc has no closing ';'"},
		{"rank missing", frameOf("cmd=fullinit-response;size=2;rc=0;"), "reply to fullinit: field rank is missing"},
		{"rank not below size", frameOf("cmd=fullinit-response;rank=2;size=2;rc=0;"), "rank=2 is not below size=2"},
		{"refused", frameOf("cmd=fullinit-response;rc=5;errmsg=no;"), `fullinit failed: rc=5 msg="no"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err, done := dialFake(t, []step{init2, {want: full, reply: tc.reply, close: true}}, Wire2, Endpoint{ID: -1, Rank: 0})
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.want)
			<-done
		})
	}
	_, err, done := dialFake(t, []step{init2}, Wire2, Endpoint{ID: -1, Rank: -1})
	assert.ErrorContains(t, err, "PMI-2 fullinit needs PMI_RANK or PMI_ID")
	<-done
}

func TestEndpointFromEnv(t *testing.T) {
	cases := []struct {
		env  mapEnv
		ok   bool
		want Endpoint
		err  string
	}{
		{env: mapEnv{}, ok: false, want: Endpoint{FD: -1, ID: -1, Rank: -1}},
		{env: mapEnv{"PMI_RANK": "2", "PMI_SIZE": "4"}, ok: false, want: Endpoint{FD: -1, ID: -1, Rank: 2}}, // Cray PALS
		{env: mapEnv{"PMI_FD": "6", "PMI_RANK": "0"}, ok: true, want: Endpoint{FD: 6, ID: -1, Rank: 0}},
		{env: mapEnv{"PMI_PORT": "vm:37445", "PMI_ID": "1"}, ok: true, want: Endpoint{FD: -1, Addr: "vm:37445", ID: 1, Rank: -1}},
		{env: mapEnv{"PMI_FD": "six"}, err: `PMI_FD="six" is not a non-negative integer`},
		{env: mapEnv{"PMI_FD": "-3"}, err: `PMI_FD="-3"`},
		{env: mapEnv{"PMI_PORT": "vm"}, err: `PMI_PORT="vm" is not host:port`},
		{env: mapEnv{"PMI_PORT": "vm:1", "PMI_ID": "x"}, err: `PMI_ID="x"`},
	}
	for _, tc := range cases {
		e, ok, err := EndpointFromEnv(tc.env.get)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, "%v", tc.env)
			continue
		}
		require.NoError(t, err, "%v", tc.env)
		assert.Equal(t, tc.ok, ok, "%v", tc.env)
		assert.Equal(t, tc.want, e, "%v", tc.env)
	}
}

func TestDialRefusesNonSocketFD(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer w.Close()
	_, err = Dial(context.Background(), Endpoint{FD: int(r.Fd()), ID: -1, Rank: 0}, Wire1)
	assert.ErrorContains(t, err, "not a socket from the launcher")
}

type mapEnv map[string]string

func (m mapEnv) get(k string) string { return m[k] }

func frameOf(body string) string { return fmt.Sprintf("%-6d%s", len(body), body) }
