package launch

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bootstrap"
	"github.com/hpc-copper/copper/rank"
)

// testBound keeps a broken test from hanging; it is never a speed claim.
const testBound = 30 * time.Second

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testKey is the job key of the gathers in these tests.
var testKey = bytes.Repeat([]byte("launch-test-key!"), 2)

func TestPreferredIP(t *testing.T) {
	ips := func(s ...string) []net.IP {
		out := make([]net.IP, len(s))
		for i, v := range s {
			out[i] = net.ParseIP(v)
		}
		return out
	}
	tests := []struct {
		in   []net.IP
		want string
	}{
		{ips("127.0.0.1", "10.1.2.3"), "10.1.2.3"},
		{ips("fd00::2", "10.1.2.3"), "10.1.2.3"},
		{ips("fe80::1", "fd00::2"), "fd00::2"},
		{ips("fe80::1", "::1"), "::1"},
		{ips("::1", "127.0.0.1"), "127.0.0.1"},
		{ips("127.0.0.1"), "127.0.0.1"},
		{ips("fe80::1"), "<nil>"},
		{nil, "<nil>"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, preferredIP(tt.in).String(), "%v", tt.in)
	}
}

func TestListenIP(t *testing.T) {
	ctx := context.Background()
	ip, how, err := listenIP(ctx, "", "anyhost", true)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", ip.String())
	assert.Contains(t, how, "--local")

	ip, how, err = listenIP(ctx, "lo", "anyhost", false)
	require.NoError(t, err)
	assert.True(t, ip.IsLoopback())
	assert.Equal(t, "interface lo", how)

	ip, _, err = listenIP(ctx, "", "localhost", false)
	require.NoError(t, err)
	assert.True(t, ip.IsLoopback())

	_, _, err = listenIP(ctx, "nosuchif0", "anyhost", false)
	require.ErrorContains(t, err, `interface "nosuchif0"`)
	require.ErrorContains(t, err, "this host has: ")
	require.ErrorContains(t, err, "lo")
}

func TestReservePort(t *testing.T) {
	lo := net.IPv4(127, 0, 0, 1)
	port, hold, err := reservePort(lo)
	require.NoError(t, err)
	t.Cleanup(hold.Release)
	require.Positive(t, port)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	// Held: nobody else can bind it, and a dial is refused, not queued.
	_, err = net.Listen("tcp", addr)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	_, err = net.DialTimeout("tcp", addr, testBound)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)

	// Released: copper-node can listen there.
	hold.Release()
	hold.Release()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, ln.Close())

	var none *portHold
	none.Release()
}

func TestBootstrapBind(t *testing.T) {
	assert.Equal(t, "127.0.0.1:5", bootstrapBind("127.0.0.1:5"))
	assert.Equal(t, "[::1]:5", bootstrapBind("[::1]:5"))
	assert.Equal(t, ":5", bootstrapBind("n1.example:5"))
}

func TestCheckRankZeroHost(t *testing.T) {
	require.NoError(t, checkRankZeroHost("n1:47000", "n1.example.gov", false))
	require.NoError(t, checkRankZeroHost("n1:47000", "n9", true), "an explicit --bootstrap is trusted")
	err := checkRankZeroHost("n1.example.gov:47000", "n9", false)
	require.ErrorContains(t, err, "rank 0 runs on n9")
	require.ErrorContains(t, err, "first node n1.example.gov")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeLoopbackAddr()
	require.NoError(t, err)
	return addr
}

type gatherOut struct {
	res  bootstrap.Result
	seen []bootstrap.Hello
	err  error
}

// runGather runs ranks of a size-rank gather at addr concurrently.
func runGather(t *testing.T, addr string, size int, ranks []int, timeout time.Duration) []gatherOut {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	out := make([]gatherOut, len(ranks))
	var wg sync.WaitGroup
	for i, r := range ranks {
		wg.Go(func() {
			h := helloFor(r, size, "host"+strconv.Itoa(r), fmt.Sprintf("127.0.0.1:%d", 20000+r), "", quiet())
			out[i].res, out[i].seen, out[i].err = gather(ctx, h, addr, nil, timeout, testKey, nil, quiet())
		})
	}
	wg.Wait()
	return out
}

func TestGather(t *testing.T) {
	out := runGather(t, freeAddr(t), 3, []int{2, 0, 1}, testBound)
	for _, o := range out {
		require.NoError(t, o.err)
		require.Len(t, o.res.Book, 3)
		assert.Equal(t, out[0].res.Book, o.res.Book)
		assert.Equal(t, out[0].res.JobID, o.res.JobID)
	}
	assert.Equal(t, "host1", out[0].res.Book[1].Host)
	assert.Len(t, out[1].seen, 3, "rank 0 keeps every hello")
	assert.Nil(t, out[0].seen)
}

// recorder is a TCP proxy on loopback that keeps every byte it relays,
// both ways, as a network observer would see them.
type recorder struct {
	ln  net.Listener
	mu  sync.Mutex
	buf bytes.Buffer
	wg  sync.WaitGroup
}

func startRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := &recorder{ln: ln}
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	r.wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			pipe := func(dst, src net.Conn) {
				// Recorded before relayed: once a rank has its bytes, the
				// test may read the record.
				_, _ = io.Copy(io.MultiWriter(r, dst), src)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
			}
			var both sync.WaitGroup
			both.Go(func() { pipe(out, in) })
			both.Go(func() { pipe(in, out) })
			r.wg.Go(func() { both.Wait(); in.Close(); out.Close() })
		}
	})
	return r
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// TestGatherSendsNoSecret: a rank that joins with the right key gets the
// book and job id, but neither the key nor the peer token ever crosses the
// wire, in either direction, compressed or not; both ranks derive the
// same token.
func TestGatherSendsNoSecret(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	var rank0 gatherOut
	done := make(chan struct{})
	go func() {
		defer close(done)
		h := helloFor(0, 2, "host0", "127.0.0.1:20000", "job-77", quiet())
		rank0.res, rank0.seen, rank0.err = gather(ctx, h, addr, nil, testBound, testKey, nil, quiet())
	}()
	proxy := startRecorder(t, addr)
	h := helloFor(1, 2, "host1", "127.0.0.1:20001", "", quiet())
	// Rank 1 reaches rank 0 only through the recorder (it retries until
	// rank 0 listens).
	res, _, err := gather(ctx, h, proxy.ln.Addr().String(), nil, testBound, testKey, nil, quiet())
	require.NoError(t, err)
	<-done
	require.NoError(t, rank0.err)
	assert.Equal(t, "job-77", res.JobID)
	assert.Equal(t, rank0.res.Book, res.Book)

	wire := proxy.bytes()
	require.NotEmpty(t, wire)
	assert.Contains(t, string(wire), "host1", "the recorder saw the hello")
	token := PeerToken(testKey, res.JobID)
	raw, err := hex.DecodeString(string(token))
	require.NoError(t, err)
	// Everything rank 0 sent, inflated as well as could be.
	i := bytes.Index(wire, []byte{'C', 'B', bootstrap.Version, 2}) // the result frame's header
	require.GreaterOrEqual(t, i, 0, "no result frame on the wire")
	require.Greater(t, len(wire), i+8+bootstrap.TagLen)
	inflated, err := io.ReadAll(flate.NewReader(bytes.NewReader(wire[i+8 : len(wire)-bootstrap.TagLen])))
	require.NoError(t, err)
	assert.Contains(t, string(inflated), "job-77", "the result was found and inflated")
	for name, secret := range map[string][]byte{"key": testKey, "peer token": token, "raw peer token": raw, "half key": testKey[:16]} {
		assert.False(t, bytes.Contains(wire, secret), "%s on the wire", name)
		assert.False(t, bytes.Contains(inflated, secret), "%s in the inflated result", name)
	}
}

// TestGatherWrongKey: a rank holding another key cannot join; it is told
// why and the gather, missing it, fails naming it.
func TestGatherWrongKey(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	var rank0 gatherOut
	done := make(chan struct{})
	go func() {
		defer close(done)
		h := helloFor(0, 2, "host0", "127.0.0.1:20000", "", quiet())
		rank0.res, rank0.seen, rank0.err = gather(ctx, h, addr, nil, 2*time.Second, testKey, nil, quiet())
	}()
	h := helloFor(1, 2, "host1", "127.0.0.1:20001", "", quiet())
	_, _, err := gather(ctx, h, addr, nil, 2*time.Second, bytes.Repeat([]byte("another-users-k"), 3), nil, quiet())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not hold this job's key")
	<-done
	require.ErrorContains(t, rank0.err, "missing rank 1 of 2")
	require.ErrorContains(t, rank0.err, "1 hello(s) refused for a bad tag, the last from 127.0.0.1:")
}

func TestGatherMissingRank(t *testing.T) {
	out := runGather(t, freeAddr(t), 3, []int{0, 1}, time.Second)
	for _, o := range out {
		require.Error(t, o.err)
		assert.Contains(t, o.err.Error(), "missing rank 2 of 3")
	}
}

func TestGatherRankZeroCannotListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	out := runGather(t, ln.Addr().String(), 2, []int{0}, testBound)
	require.ErrorContains(t, out[0].err, "rank 0: all-gather listener for "+ln.Addr().String())
}

func TestIdentity(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	id, err := identity(Command{Rank: 2, Size: 4}, env(map[string]string{"PMI_RANK": "0", "PMI_SIZE": "9"}))
	require.NoError(t, err)
	assert.Equal(t, rank.Identity{Rank: 2, Size: 4, Source: "--rank/--size"}, id)

	id, err = identity(Command{Rank: -1, Size: -1}, env(map[string]string{"SLURM_PROCID": "3", "SLURM_NTASKS": "8"}))
	require.NoError(t, err)
	assert.Equal(t, rank.Identity{Rank: 3, Size: 8, Source: "SLURM_PROCID/SLURM_NTASKS"}, id)

	_, err = identity(Command{Rank: -1, Size: -1}, env(nil))
	require.ErrorContains(t, err, "PMI_RANK, PALS_RANKID, PMIX_RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID")
}

func TestRankHosts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []string
		size  int
		want  []string
	}{
		{"one rank per node", []string{"a", "b", "c"}, 3, []string{"a", "b", "c"}},
		{"a node file with a line per rank", []string{"a", "a", "b", "b"}, 4, []string{"a", "a", "b", "b"}},
		{"several lines per host, one rank per host", []string{"a", "a", "b", "b"}, 2, []string{"a", "b"}},
		{"no node list", nil, 3, nil},
		{"sizes that do not match", []string{"a", "b"}, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, rankHosts(tc.nodes, tc.size))
		})
	}
}
