package launch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/bootstrap"
	"github.com/hpc-copper/copper/pmi"
)

// kvsServer is a small PMI-1 server for n ranks, replying as Hydra does:
// one key-value space, a real barrier. It is a peer over a socketpair,
// like the launcher's own.
type kvsServer struct {
	n   int
	mu  sync.Mutex
	kv  map[string]string
	in  int
	out chan struct{} // closed when all n reached the barrier
	// get, when set, overrides what a get answers.
	get func(key string) string
	log []string // every command received, in order
}

func newKVSServer(n int) *kvsServer {
	return &kvsServer{n: n, kv: map[string]string{}, out: make(chan struct{})}
}

// conn returns the descriptor a rank gets as PMI_FD.
func (s *kvsServer) conn(t *testing.T) int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	f := os.NewFile(uintptr(fds[1]), "pmi-server")
	c, err := net.FileConn(f)
	f.Close()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	go s.serve(c)
	return fds[0]
}

func (s *kvsServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		m, err := pmi.DecodeLine([]byte(line))
		if err != nil {
			return
		}
		s.mu.Lock()
		s.log = append(s.log, m.Cmd)
		s.mu.Unlock()
		var reply string
		switch m.Cmd {
		case "init":
			reply = "cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0"
		case "get_maxes":
			reply = "cmd=maxes kvsname_max=256 keylen_max=64 vallen_max=1024"
		case "get_my_kvsname":
			reply = "cmd=my_kvsname kvsname=kvs_test"
		case "put":
			k, _ := m.Get("key")
			v, _ := m.Get("value")
			s.mu.Lock()
			s.kv[k] = v
			s.mu.Unlock()
			reply = "cmd=put_result rc=0 msg=success"
		case "barrier_in":
			s.mu.Lock()
			if s.in++; s.in == s.n {
				close(s.out)
			}
			s.mu.Unlock()
			<-s.out
			reply = "cmd=barrier_out"
		case "get":
			k, _ := m.Get("key")
			s.mu.Lock()
			v, ok := s.kv[k]
			if s.get != nil {
				v, ok = s.get(k), true
			}
			s.mu.Unlock()
			reply = "cmd=get_result rc=0 msg=success value=" + v
			if !ok {
				reply = "cmd=get_result rc=-1 msg=key_" + k + "_not_found value=unknown"
			}
		case "finalize":
			reply = "cmd=finalize_ack"
		default:
			return
		}
		if _, err := c.Write([]byte(reply + "\n")); err != nil {
			return
		}
	}
}

func (s *kvsServer) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// TestPMIRendezvous: rank 0 binds on its address, publishes it, and the
// others read it after the barrier; everyone finalizes.
func TestPMIRendezvous(t *testing.T) {
	const n = 3
	srv := newKVSServer(n)
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	got := make([]rendezvous, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for rk := range n {
		fd := srv.conn(t)
		wg.Go(func() {
			ep := pmi.Endpoint{FD: fd, ID: -1, Rank: rk}
			got[rk], errs[rk] = pmiRendezvous(ctx, ep, nil, rk, n, net.IPv4(127, 0, 0, 1), testBound, quiet())
		})
	}
	wg.Wait()
	for rk := range n {
		require.NoError(t, errs[rk], "rank %d", rk)
	}
	require.NotNil(t, got[0].ln, "rank 0 bound its listener before publishing")
	t.Cleanup(func() { got[0].ln.Close() })
	assert.Equal(t, got[0].ln.Addr().String(), got[0].addr)
	assert.True(t, strings.HasPrefix(got[0].addr, "127.0.0.1:"), got[0].addr)
	for rk := 1; rk < n; rk++ {
		assert.Equal(t, got[0].addr, got[rk].addr, "rank %d", rk)
		assert.Nil(t, got[rk].ln)
		assert.True(t, got[rk].explicit)
		assert.Contains(t, got[rk].how, "PMI (PMI_FD=")
	}
	cmds := srv.commands()
	assert.Equal(t, n, count(cmds, "finalize"), "every rank finalizes: %v", cmds)
	assert.Equal(t, 1, count(cmds, "put"), "only rank 0 publishes: %v", cmds)
	assert.Equal(t, n-1, count(cmds, "get"), "%v", cmds)

	// The published listener serves the real all-gather.
	results := make([]bootstrap.Result, n)
	for rk := range n {
		var ln net.Listener
		if rk == 0 {
			ln = got[0].ln
		}
		wg.Go(func() {
			h := bootstrap.Hello{Rank: rk, Size: n, Host: "h", Endpoint: fmt.Sprintf("127.0.0.1:%d", 7000+rk)}
			results[rk], _, errs[rk] = gather(ctx, h, got[rk].addr, ln, testBound, testKey, nil, quiet())
		})
	}
	wg.Wait()
	for rk := range n {
		require.NoError(t, errs[rk], "rank %d", rk)
		require.Len(t, results[rk].Book, n)
	}
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func TestPMIRendezvousErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()

	srv := newKVSServer(1)
	srv.get = func(string) string { return "not-an-address" }
	_, err := pmiRendezvous(ctx, pmi.Endpoint{FD: srv.conn(t), ID: -1, Rank: 1}, nil, 1, 2, net.IPv4(127, 0, 0, 1), testBound, quiet())
	assert.ErrorContains(t, err, `PMI key copper-bootstrap holds "not-an-address", not rank 0's HOST:PORT`)

	srv = newKVSServer(1)
	_, err = pmiRendezvous(ctx, pmi.Endpoint{FD: srv.conn(t), ID: -1, Rank: 1}, nil, 1, 2, net.IPv4(127, 0, 0, 1), testBound, quiet())
	assert.ErrorContains(t, err, "rank 0's all-gather address: pmi: get key=copper-bootstrap")
	assert.ErrorIs(t, err, pmi.ErrNotFound)

	srv = newKVSServer(1)
	_, err = pmiRendezvous(ctx, pmi.Endpoint{FD: srv.conn(t), ID: -1, Rank: 2}, nil, 0, 3, net.IPv4(127, 0, 0, 1), testBound, quiet())
	assert.ErrorContains(t, err, "this process is rank 0, but PMI_RANK says rank 2")

	// A rank that never comes: the barrier ends at bootstrap_timeout_s.
	srv = newKVSServer(2)
	_, err = pmiRendezvous(ctx, pmi.Endpoint{FD: srv.conn(t), ID: -1, Rank: 0}, nil, 0, 2, net.IPv4(127, 0, 0, 1), 300*time.Millisecond, quiet())
	assert.ErrorContains(t, err, "bootstrap_timeout_s (300ms) passed before every rank reached the PMI barrier")
	assert.ErrorContains(t, err, "waiting for rank 0 to publish")
}

func TestFindRendezvous(t *testing.T) {
	ctx := context.Background()
	lo := net.IPv4(127, 0, 0, 1)
	noNodes := errors.New("rank: no node list: pass a node file")
	cases := []struct {
		name       string
		c          Command
		env        map[string]string
		nodes      []string
		nodeSource string
		nodesErr   error
		port       int
		want, err  string
		explicit   bool
	}{
		{name: "flag wins", c: Command{Bootstrap: "h:1"}, nodes: []string{"n1"}, nodeSource: "SLURM_JOB_NODELIST", port: 47000,
			env: map[string]string{"PMI_FD": "9"}, want: "h:1", explicit: true},
		{name: "node list before PMI", nodes: []string{"n1", "n2"}, nodeSource: "SLURM_JOB_NODELIST", port: 47000,
			env: map[string]string{"PMI_FD": "9"}, want: "n1:47000"},
		{name: "node list, port 0", nodes: []string{"n1"}, nodeSource: "PBS_NODEFILE=/x", err: "bootstrap_port is 0"},
		{name: "broken node list is not skipped", nodeSource: "PBS_NODEFILE=/x", nodesErr: errors.New("rank: node file /x: no hosts"),
			env: map[string]string{"PMI_FD": "9"}, err: "node file /x: no hosts"},
		{name: "bad PMI_FD", nodesErr: noNodes, env: map[string]string{"PMI_FD": "nine"}, err: `PMI_FD="nine"`},
		{name: "nothing", nodesErr: noNodes,
			err: "no node list: pass a node file; no PMI server (PMI_FD and PMI_PORT unset)). MPICH's mpiexec (Hydra) and srun --mpi=pmi2 supply PMI"},
		{name: "Open MPI", nodesErr: noNodes, env: map[string]string{"OMPI_COMM_WORLD_RANK": "0"},
			err: "This looks like Open MPI (PMIx), which offers no PMI-1/PMI-2 server: pass --nodefile FILE or --bootstrap HOST:PORT"},
		{name: "PALS", nodesErr: noNodes, env: map[string]string{"PALS_RANKID": "0", "PMI_RANK": "0"},
			err: "This looks like Cray PALS"},
		{name: "srun without pmi2", nodesErr: noNodes, env: map[string]string{"SLURM_PROCID": "0"},
			err: "run srun --mpi=pmi2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := Env{Getenv: func(k string) string { return tc.env[k] }, Hostname: "n1"}
			rv, err := findRendezvous(ctx, tc.c, env, nil, 0, 2, lo, tc.nodes, tc.nodeSource, tc.nodesErr, tc.port, testBound, quiet())
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, rv.addr)
			assert.Equal(t, tc.explicit, rv.explicit)
			assert.Nil(t, rv.ln)
		})
	}
}

func TestIdentityOrPMI(t *testing.T) {
	ctx := context.Background()
	c := Command{Rank: -1, Size: -1}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	id, sess, err := identityOrPMI(ctx, c, env(map[string]string{"PMI_RANK": "1", "PMI_SIZE": "2", "PMI_FD": "9"}), quiet())
	require.NoError(t, err)
	assert.Nil(t, sess, "a rank variable is enough: no PMI connection yet")
	assert.Equal(t, "PMI_RANK/PMI_SIZE", id.Source)

	// PMI_PORT and PMI_ID, no rank variable: the server is asked, and a
	// server that is not there is named.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, sess, err = identityOrPMI(ctx, c, env(map[string]string{"PMI_PORT": addr, "PMI_ID": "0"}), quiet())
	assert.Nil(t, sess)
	assert.ErrorContains(t, err, "no rank variable is set, and asking the PMI server at PMI_PORT (PMI_ID=0) failed: pmi: PMI_PORT="+addr)

	// Nothing at all: the rank package's own error.
	_, _, err = identityOrPMI(ctx, c, env(nil), quiet())
	assert.ErrorContains(t, err, "no launcher rank variable is set")

	var none *pmiSession
	none.finish(quiet())
}

func TestSpansHosts(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		size int
		want bool
	}{
		{map[string]string{"MPI_LOCALNRANKS": "3"}, 3, false},
		{map[string]string{"MPI_LOCALNRANKS": "2"}, 4, true},
		{map[string]string{"SLURM_STEP_NUM_NODES": "1"}, 4, false},
		{map[string]string{"SLURM_STEP_NUM_NODES": "2"}, 4, true},
		{map[string]string{"MPI_LOCALNRANKS": "x"}, 4, false},
		{nil, 4, false},
	} {
		assert.Equal(t, tc.want, spansHosts(func(k string) string { return tc.env[k] }, tc.size), "%v size %d", tc.env, tc.size)
	}
}
