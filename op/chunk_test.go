package op

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChunkReqRoundTrip(t *testing.T) {
	v := Version{Dev: 2049, Ino: 77, Size: 10<<20 + 1, MtimeNs: -5, CtimeNs: 1_700_000_000_000_000_001}
	for _, c := range []ChunkReq{
		{Path: "/a/b.so", Version: v, Index: 0, Bytes: 4 << 20},
		{Path: "/a/b.so", Version: v, Index: 2, Bytes: 4 << 20},
		{Path: "/x", Version: Version{Size: 1}, Index: 0, Bytes: 1},
	} {
		got, errno := DecodeChunkReq(c.Encode())
		require.Zero(t, errno, c.Encode())
		require.Equal(t, c, got)
	}
}

func TestChunkReqBounds(t *testing.T) {
	c := ChunkReq{Path: "/f", Version: Version{Size: 10}, Index: 2, Bytes: 4}
	require.Equal(t, int64(8), c.Off())
	require.Equal(t, int64(2), c.Len())
	require.Equal(t, int64(3), Chunks(10, 4))
	require.Equal(t, int64(0), Chunks(0, 4))
	require.Equal(t, int64(1), Chunks(4, 4))
	require.Equal(t, int64(2), Chunks(5, 4))
}

func TestDecodeChunkReqRejects(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Errno
	}{
		{"", syscall.EINVAL},
		{"0:4:0:0:10:0:0", syscall.EINVAL},         // no path field
		{"0:4:0:0:10:0:0:", syscall.EINVAL},        // empty path
		{"0:4:0:0:10:0:0:a", syscall.EINVAL},       // relative
		{"0:4:0:0:10:0:0:/a/../b", syscall.EINVAL}, // unclean
		{"00:4:0:0:10:0:0:/a", syscall.EINVAL},     // non-canonical
		{"+0:4:0:0:10:0:0:/a", syscall.EINVAL},
		{"0:0:0:0:10:0:0:/a", syscall.EINVAL},          // zero chunk size
		{"0:2000000000:0:0:10:0:0:/a", syscall.EINVAL}, // over MaxChunkBytes
		{"3:4:0:0:10:0:0:/a", syscall.EINVAL},          // past the end
		{"0:4:0:0:0:0:0:/a", syscall.EINVAL},           // an empty file has no chunk
		{"-1:4:0:0:10:0:0:/a", syscall.EINVAL},
		{"0:4:-1:0:10:0:0:/a", syscall.EINVAL}, // dev is unsigned
		{"0:4:0:0:-10:0:0:/a", syscall.EINVAL},
	} {
		_, errno := DecodeChunkReq(tc.in)
		require.Equal(t, tc.want, errno, tc.in)
		require.Equal(t, tc.want, CheckRequest(Chunk, tc.in), tc.in)
	}
}

func FuzzDecodeChunkReq(f *testing.F) {
	f.Add("0:4194304:2049:77:10485761:1:2:/usr/lib/libx.so")
	f.Add("1:1:0:0:2:0:0:/a")
	f.Add("9:")
	f.Fuzz(func(t *testing.T, s string) {
		c, errno := DecodeChunkReq(s)
		if errno != 0 {
			return
		}
		// Accepted means canonical and within bounds.
		if c.Encode() != s {
			t.Fatalf("accepted %q re-encodes as %q", s, c.Encode())
		}
		if CheckPath(c.Path) != 0 || c.Len() <= 0 || c.Off() >= c.Version.Size || c.Bytes > MaxChunkBytes {
			t.Fatalf("accepted out-of-bounds request %+v", c)
		}
	})
}
