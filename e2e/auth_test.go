package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cnet "github.com/hpc-copper/copper/net"
	"github.com/hpc-copper/copper/op"
)

// acceptAnyone holds addr with a hand-written copper server that skips
// checking the client's proof, answers auth-ok with a guess and serves
// forged content to every request, as an attacker's server would. It
// counts the requests it receives.
func acceptAnyone(t *testing.T, addr string, forged []byte) *atomic.Int64 {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	var requests atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(serveTimeout))
				hello := cnet.AppendHeader(nil, cnet.Header{Kind: cnet.KindHello, Length: cnet.NonceSize})
				ok := cnet.AppendHeader(nil, cnet.Header{Kind: cnet.KindAuthOK, Length: cnet.MACSize})
				if _, err := conn.Write(append(hello, make([]byte, cnet.NonceSize)...)); err != nil {
					return
				}
				if _, err := io.ReadFull(conn, make([]byte, cnet.HeaderSize+cnet.NonceSize+cnet.MACSize)); err != nil {
					return
				}
				if _, err := conn.Write(append(ok, make([]byte, cnet.MACSize)...)); err != nil {
					return
				}
				for {
					hb := make([]byte, cnet.HeaderSize)
					if _, err := io.ReadFull(conn, hb); err != nil {
						return
					}
					h, err := cnet.DecodeHeader(hb)
					if err != nil {
						return
					}
					if _, err := io.CopyN(io.Discard, conn, int64(h.Length)); err != nil {
						return
					}
					requests.Add(1)
					res := op.Result{Ready: true, Attr: op.Attr{Mode: syscall.S_IFREG | 0o644, Size: int64(len(forged))}, Data: forged}
					if h.Op == op.Readdir {
						res = op.Result{Entries: []op.DirEntry{{Name: "lib.py", Mode: syscall.S_IFREG}}}
					}
					frame, _ := cnet.AppendResponse(nil, h.ID, h.Op, res)
					if _, err := conn.Write(frame); err != nil {
						return
					}
				}
			})
		}
	})
	return &requests
}

// TestChildRefusesImpostorParent runs real copper-node processes: rank 1's
// parent endpoint is held by an impostor that serves forged bytes. Rank 1
// must refuse it, fail to start naming the address, mount nothing and
// send it no request; with the real rank 0 there, the same rank 1 serves
// the real file.
func TestChildRefusesImpostorParent(t *testing.T) {
	target := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(target, "lib.py"), []byte("real content\n"), 0o644))
	c := newCluster(t, clusterConfig{nodes: 2, fanout: 2, target: target, flags: []string{"--ready-timeout-s", "2"}})

	requests := acceptAnyone(t, c.endpoints[0], []byte("forged content\n"))
	r, err := c.tryStart(1)
	require.Error(t, err, "rank 1 started under an impostor parent")
	assert.Contains(t, r.out.stderr, c.endpoints[0])
	assert.Contains(t, r.out.stderr, "does not know the job token")
	assert.Empty(t, mountsUnder(t, c.dir), "something got mounted")
	assert.Zero(t, requests.Load(), "requests the impostor received")
}

// TestChildOfRealParentServes is the control for the test above: the
// same configuration with the real rank 0 serves the real file.
func TestChildOfRealParentServes(t *testing.T) {
	target := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(target, "lib.py"), []byte("real content\n"), 0o644))
	c := newCluster(t, clusterConfig{nodes: 2, fanout: 2, target: target, flags: []string{"--ready-timeout-s", "10"}})
	c.startAll()
	got, err := c.walk(1) // in a child process: a hung mount cannot hang the test
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("real content\n"))
	require.Contains(t, got, "/lib.py")
	assert.Equal(t, hex.EncodeToString(sum[:]), got["/lib.py"].SHA256)
}
