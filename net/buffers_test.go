package net

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// TestReadFrameLargeReadPayload reads Read answers around readPiece
// (copied out piece by piece beyond it) followed by a small frame: every
// payload arrives whole, owned by the caller, and the stream stays in
// step after the pieces' Releases.
func TestReadFrameLargeReadPayload(t *testing.T) {
	for _, size := range []int{readPiece - AttrSize - 4, readPiece - AttrSize - 3, 2*readPiece + 1, 9 << 19} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			conn, peer := pipe(t)
			head, tail := bigAnswer(t, 7, size)
			next := AppendRequest(nil, 8, op.Getattr, "/after")
			go func() {
				_ = peer.SetWriteDeadline(time.Now().Add(30 * time.Second))
				for _, p := range [][]byte{head, tail, next} {
					if _, err := peer.Write(p); err != nil {
						return
					}
				}
			}()
			r := conn.Reader()
			_ = conn.SetReadTimeout(30 * time.Second)
			h, payload, err := readFrame(r, 16<<20)
			require.NoError(t, err)
			res, err := DecodeResponse(h.Op, payload)
			require.NoError(t, err)
			require.Equal(t, tail, res.Data)
			require.NoError(t, r.Release())
			assert.Equal(t, tail, res.Data, "the payload is the caller's, not netpoll's buffer")

			h, payload, err = readFrame(r, 16<<20)
			require.NoError(t, err)
			assert.Equal(t, uint64(8), h.ID)
			assert.Equal(t, "/after", string(payload))
			require.NoError(t, r.Release())
		})
	}
}
