package net

import (
	"context"
	"testing"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// The RoundTrip benchmarks time one Call answered with a Read result of
// the given size; the NetpollEcho benchmarks time a bare netpoll echo of
// the same size on the same machine, so the two can be quoted side by
// side. Note the echo carries the payload both ways, the Call only back.

func BenchmarkRoundTrip4KiB(b *testing.B)   { benchmarkRoundTrip(b, 4<<10) }
func BenchmarkRoundTrip128KiB(b *testing.B) { benchmarkRoundTrip(b, 128<<10) }

func BenchmarkNetpollEcho4KiB(b *testing.B)   { benchmarkNetpollEcho(b, 4<<10) }
func BenchmarkNetpollEcho128KiB(b *testing.B) { benchmarkNetpollEcho(b, 128<<10) }

func benchmarkRoundTrip(b *testing.B, size int) {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	answer := op.Result{Attr: op.Attr{Size: int64(size)}, Data: data}
	s, err := Listen(context.Background(), "127.0.0.1:0", func(context.Context, op.Op, string) op.Result {
		return answer
	}, tok(Config{}))
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c, err := Dial(context.Background(), s.Addr(), tok(Config{}))
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })

	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Call(ctx, op.Read, "/lib/libpython3.so")
		if err != nil || len(res.Data) != size {
			b.Fatalf("call: %v, %d bytes", err, len(res.Data))
		}
	}
}

func benchmarkNetpollEcho(b *testing.B, size int) {
	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	loop, err := netpoll.NewEventLoop(func(_ context.Context, conn netpoll.Connection) error {
		r, w := conn.Reader(), conn.Writer()
		p, err := r.Next(size)
		if err != nil {
			return conn.Close()
		}
		if _, err := w.WriteBinary(p); err != nil {
			return conn.Close()
		}
		err = w.Flush()
		_ = r.Release()
		return err
	})
	require.NoError(b, err)
	go func() { _ = loop.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = loop.Shutdown(ctx)
	})
	conn, err := netpoll.DialConnection("tcp", ln.Addr().String(), time.Second)
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })

	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Reader().Next(size); err != nil {
			b.Fatal(err)
		}
		_ = conn.Reader().Release()
	}
}
