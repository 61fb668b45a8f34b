package net

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// TestReadFrameLargeOwnedPayload reads Read and Chunk answers around
// readPiece (copied out piece by piece beyond it) followed by a small
// frame: every payload arrives whole, owned by the caller (it survives
// the Releases and the next frame's read), and the stream stays in step.
func TestReadFrameLargeOwnedPayload(t *testing.T) {
	for _, o := range []op.Op{op.Read, op.Chunk} {
		for _, size := range []int{readPiece - AttrSize - 4, readPiece - AttrSize - 3, 2*readPiece + 1, 9 << 19} {
			t.Run(fmt.Sprint(o, size), func(t *testing.T) { readOwnedFrame(t, o, size) })
		}
	}
}

func readOwnedFrame(t *testing.T, o op.Op, size int) {
	conn, peer := pipe(t)
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*13 + size)
	}
	frame, err := AppendResponse(nil, 7, o, op.Result{Attr: op.Attr{Size: int64(size)}, Data: data})
	require.NoError(t, err)
	frame = AppendRequest(frame, 8, op.Getattr, "/after")
	go func() {
		_ = peer.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, _ = peer.Write(frame)
	}()
	r := conn.Reader()
	_ = conn.SetReadTimeout(30 * time.Second)
	h, payload, err := readFrame(r, 16<<20)
	require.NoError(t, err)
	require.True(t, ownedPayload(h))
	res, err := decodeResponse(h.Op, payload, false)
	require.NoError(t, err)
	require.Equal(t, data, res.Data)
	if len(payload) > readPiece {
		// What spill's O_DIRECT write takes without a copy.
		assert.Zero(t, uintptr(unsafe.Pointer(unsafe.SliceData(res.Data)))%dataAlign, "a large answer's data starts a page")
	}
	require.NoError(t, r.Release())

	h, payload, err = readFrame(r, 16<<20)
	require.NoError(t, err)
	assert.Equal(t, uint64(8), h.ID)
	assert.Equal(t, "/after", string(payload))
	require.NoError(t, r.Release())
	assert.Equal(t, data, res.Data, "the payload is the caller's, not netpoll's buffer")
}
