package testkit

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	cnet "github.com/hpc-copper/copper/net"
	"github.com/hpc-copper/copper/op"
)

// AcceptAnyone holds addr with a hand-written copper server that, as an
// attacker's would, skips checking the client's proof, answers auth-ok
// with a guess and serves forged for every file (a one-entry listing for
// readdir, ready for is-ready). It returns the count of requests it
// received: a client that verifies its parent must send none.
func AcceptAnyone(t testing.TB, addr string, forged []byte) *atomic.Int64 {
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
				_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
				serveForged(conn, forged, &requests)
			})
		}
	})
	return &requests
}

func serveForged(conn net.Conn, forged []byte, requests *atomic.Int64) {
	hello := cnet.AppendHeader(nil, cnet.Header{Kind: cnet.KindHello, Length: cnet.NonceSize})
	if _, err := conn.Write(append(hello, make([]byte, cnet.NonceSize)...)); err != nil {
		return
	}
	if _, err := io.ReadFull(conn, make([]byte, cnet.HeaderSize+cnet.NonceSize+cnet.MACSize)); err != nil {
		return
	}
	ok := cnet.AppendHeader(nil, cnet.Header{Kind: cnet.KindAuthOK, Length: cnet.MACSize})
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
		if h.Kind != cnet.KindRequest {
			continue // a ping: an impostor need not answer
		}
		requests.Add(1)
		res := op.Result{Attr: op.Attr{Mode: syscall.S_IFREG | 0o644, Size: int64(len(forged))}, Data: forged}
		switch h.Op {
		case op.IsReady:
			res = op.Result{Ready: true}
		case op.Readdir:
			res = op.Result{Entries: []op.DirEntry{{Name: "lib.py", Mode: syscall.S_IFREG}}}
		}
		frame, _ := cnet.AppendResponse(nil, h.ID, h.Op, res)
		if _, err := conn.Write(frame); err != nil {
			return
		}
	}
}
