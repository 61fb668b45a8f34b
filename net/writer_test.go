package net

import (
	"fmt"
	"io"
	stdnet "net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// TestFrameWriterKeepsFramesWhole writes frames from many goroutines at
// once, some in two parts, and reads the stream back: every frame arrives
// whole (queued frames are never interleaved with the writing caller's,
// large ones wait for the writer) and each writer's frames in the order
// it wrote them.
func TestFrameWriterKeepsFramesWhole(t *testing.T) {
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	conn, err := netpoll.DialConnection("tcp", ln.Addr().String(), time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	peer, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Close() })

	const writers, frames = 8, 300
	w := frameWriter{conn: conn}
	total := 0
	frameOf := func(g, i int) []byte {
		n := (g*131 + i*17) % 900
		if i%50 == 7 { // over maxSpareBatch, as a chunk answer: written, never queued
			n = maxSpareBatch + g*1000
		}
		path := fmt.Sprintf("/w%d/%d/%s", g, i, strings.Repeat("x", n))
		return AppendRequest(nil, uint64(g*frames+i), op.Getattr, path)
	}
	for g := range writers {
		for i := range frames {
			total += len(frameOf(g, i))
		}
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range frames {
				f := frameOf(g, i)
				var err error
				if i%3 == 0 { // head and tail, as a large Read answer goes out
					err = w.write(time.Now().Add(10*time.Second), f[:HeaderSize], f[HeaderSize:])
				} else {
					err = w.write(time.Time{}, f)
				}
				if err != nil {
					t.Errorf("writer %d frame %d: %v", g, i, err)
					return
				}
			}
		})
	}
	stream := make([]byte, total)
	_ = peer.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadFull(peer, stream)
	require.NoError(t, err)
	wg.Wait()

	next := make([]int, writers) // each writer's next frame index
	for len(stream) > 0 {
		h, err := DecodeHeader(stream)
		require.NoError(t, err)
		g, i := int(h.ID)/frames, int(h.ID)%frames
		require.Less(t, g, writers)
		require.Equal(t, next[g], i, "writer %d's frames in order", g)
		want := frameOf(g, i)
		require.Equal(t, want, stream[:len(want)], "frame %d of writer %d whole", i, g)
		stream = stream[len(want):]
		next[g]++
	}
	for g := range writers {
		assert.Equal(t, frames, next[g], "writer %d", g)
	}
}
