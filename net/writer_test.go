package net

import (
	"fmt"
	"io"
	stdnet "net"
	"slices"
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

// recordingConn records the size of every Write handed to netpoll and,
// while hold is set, blocks the first Write until release is closed.
type recordingConn struct {
	netpoll.Connection
	mu      sync.Mutex
	sizes   []int
	hold    bool
	entered chan struct{} // closed when the held Write has begun
	release chan struct{}
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(p))
	held := c.hold
	c.hold = false
	c.mu.Unlock()
	if held {
		close(c.entered)
		<-c.release
	}
	return c.Connection.Write(p)
}

// pipe is a netpoll connection whose bytes a plain socket reads.
func pipe(t *testing.T) (netpoll.Connection, stdnet.Conn) {
	t.Helper()
	// One more try, on a fresh listener, when netpoll reports the dial
	// closed at once: seen once under the full suite's load, not in 40 runs
	// alone (probably an event of the previous test's connection, which
	// netpoll closes asynchronously, landing on the reused descriptor). The
	// node's own dials are retried by the readiness probe and failover;
	// these tests are about frames.
	for attempt := 1; ; attempt++ {
		ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		conn, err := netpoll.DialConnection("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil && attempt < 2 {
			t.Logf("dial %s: %v; dialling a new listener", ln.Addr(), err)
			continue
		}
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		peer, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { _ = peer.Close() })
		return conn, peer
	}
}

// readStream reads n bytes from peer in the background.
func readStream(peer stdnet.Conn, n int) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		b := make([]byte, n)
		_ = peer.SetReadDeadline(time.Now().Add(30 * time.Second))
		k, _ := io.ReadFull(peer, b)
		out <- b[:k]
	}()
	return out
}

// bigAnswer is a Read answer's frame as the server sends it: a head and
// the file's data as a second part.
func bigAnswer(t *testing.T, id uint64, size int) (head, tail []byte) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + int(id))
	}
	f, err := AppendResponse(nil, id, op.Read, op.Result{Attr: op.Attr{Size: int64(size)}, Data: data})
	require.NoError(t, err)
	return f[:len(f)-size], f[len(f)-size:]
}

// TestFrameWriterBoundsNetpollWrites: a frame of megabytes reaches
// netpoll in pieces of at most maxWritePiece, whole and in order. Netpoll
// copies each Write into a buffer of its pools rounded up to a power of
// two, and the pools keep them: a whole 4.5 MiB answer took 8 MiB.
func TestFrameWriterBoundsNetpollWrites(t *testing.T) {
	// The pools keep a buffer this size per connection being written (and
	// read, readPiece): well under the 8 MiB a whole file frame took.
	require.LessOrEqual(t, maxWritePiece, 1<<20)
	require.LessOrEqual(t, readPiece, 1<<20)
	for _, size := range []int{maxWritePiece - HeaderSize, maxWritePiece, 9 << 19, 3*maxWritePiece + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			conn, peer := pipe(t)
			rc := &recordingConn{Connection: conn}
			w := frameWriter{conn: rc}
			head, tail := bigAnswer(t, 1, size)
			got := readStream(peer, len(head)+len(tail))
			require.NoError(t, w.write(time.Time{}, head, tail))
			assert.Equal(t, append(append([]byte{}, head...), tail...), <-got)
			total := 0
			for _, n := range rc.sizes {
				assert.LessOrEqual(t, n, maxWritePiece, "one Write to netpoll")
				total += n
			}
			assert.Equal(t, len(head)+len(tail), total)
		})
	}
}

// TestFrameWriterLargeFrameWaits: while a caller writes, a small frame is
// queued and its caller returns, but a large one is not copied into the
// queue: its caller waits its turn and then writes it itself. Every frame
// arrives whole.
func TestFrameWriterLargeFrameWaits(t *testing.T) {
	conn, peer := pipe(t)
	rc := &recordingConn{Connection: conn, hold: true, entered: make(chan struct{}), release: make(chan struct{})}
	w := frameWriter{conn: rc}
	first := AppendRequest(nil, 1, op.Getattr, "/first")
	small := AppendRequest(nil, 2, op.Getattr, "/small")
	head, tail := bigAnswer(t, 3, maxQueuedFrame+1)
	got := readStream(peer, len(first)+len(small)+len(head)+len(tail))

	firstDone := make(chan error, 1)
	go func() { firstDone <- w.write(time.Time{}, first) }()
	<-rc.entered // the first caller is inside netpoll's Write, busy
	require.NoError(t, w.write(time.Time{}, small), "a small frame is queued")
	largeDone := make(chan error, 1)
	go func() { largeDone <- w.write(time.Time{}, head, tail) }()
	select {
	case err := <-largeDone:
		t.Fatalf("the large frame's caller returned while another wrote (err %v): it was queued", err)
	case <-time.After(100 * time.Millisecond):
	}
	w.mu.Lock()
	queued := len(w.queued)
	w.mu.Unlock()
	assert.Equal(t, len(small), queued, "only the small frame is queued")

	close(rc.release)
	require.NoError(t, <-firstDone)
	require.NoError(t, <-largeDone)
	want := slices.Concat(first, small, head, tail)
	assert.Equal(t, want, <-got)
}
