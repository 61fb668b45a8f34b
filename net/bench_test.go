package net

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/cloudwego/netpoll"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

// The RoundTrip benchmarks time one Call answered with a Read result of
// the given size; the NetpollEcho benchmarks time a bare netpoll
// exchange on the same machine that moves the same bytes each way as
// that Call: a request frame's worth up (header and path) and a response
// frame's worth down (header, attributes and data). Both report them as
// up-B/op and down-B/op, so the report can show they match, and the
// process CPU per operation (client and server together) as cpu-ns/op.

// Each call benchmark is declared next to its echo, so that one run of
// them all (scripts/bench.sh runs several, interleaved) times each pair
// back to back on a shared host.

func BenchmarkRoundTrip4KiB(b *testing.B)   { benchmarkRoundTrip(b, 4<<10) }
func BenchmarkNetpollEcho4KiB(b *testing.B) { benchmarkNetpollEcho(b, 4<<10) }

func BenchmarkRoundTrip128KiB(b *testing.B)   { benchmarkRoundTrip(b, 128<<10) }
func BenchmarkNetpollEcho128KiB(b *testing.B) { benchmarkNetpollEcho(b, 128<<10) }

// 4.5 MiB: a large shared library (numpy's _multiarray_umath) cached
// whole, a frame just over a power of two.
func BenchmarkRoundTrip4_5MiB(b *testing.B)   { benchmarkRoundTrip(b, 9<<19) }
func BenchmarkNetpollEcho4_5MiB(b *testing.B) { benchmarkNetpollEcho(b, 9<<19) }

// BenchmarkHandlerCall4KiB is BenchmarkRoundTrip4KiB for an answer Peek
// does not hold (a node's cache miss): the request is handed to a worker,
// which runs the Handler. Declared after the pairs, so that a run of
// them all still times each call right before its echo.
func BenchmarkHandlerCall4KiB(b *testing.B) { benchmarkCall(b, 4<<10, false) }

// benchPath is the path every benchmark call asks for.
const benchPath = "/lib/libpython3.so"

// benchAnswer is the Read result of size data bytes the server returns.
func benchAnswer(size int) op.Result {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	return op.Result{Attr: op.Attr{Size: int64(size)}, Data: data}
}

// wireSizes are the bytes of one call's request and response frames.
func wireSizes(b *testing.B, size int) (up, down int) {
	resp, err := AppendResponse(nil, 1, op.Read, benchAnswer(size))
	require.NoError(b, err)
	return len(AppendRequest(nil, 1, op.Read, benchPath)), len(resp)
}

func reportWire(b *testing.B, up, down int) {
	b.ReportMetric(float64(up), "up-B/op")
	b.ReportMetric(float64(down), "down-B/op")
}

// processCPU is this process's user and system CPU time. Client and
// server both run in the benchmark's process, so CPU per operation is the
// whole round trip's cost: steadier than wall time on a shared host,
// where other processes' load stretches every wait.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reports process CPU per operation as cpu-ns/op.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{start: processCPU()} }

func (m cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-m.start)/float64(b.N), "cpu-ns/op")
}

func benchmarkRoundTrip(b *testing.B, size int) { benchmarkCall(b, size, true) }

// benchmarkCall times Calls answered with a Read result of size bytes;
// peeked: the answer is held in memory, as a parent's cached answer is,
// and Peek answers it on the connection's reader (node.Peek); otherwise a
// worker's Handler answers it.
func benchmarkCall(b *testing.B, size int, peeked bool) {
	answer := benchAnswer(size)
	cfg := tok(Config{})
	if peeked {
		cfg.Peek = func(op.Op, string) (op.Result, bool) { return answer, true }
	}
	s, err := Listen(context.Background(), "127.0.0.1:0", func(context.Context, op.Op, string) op.Result {
		return answer
	}, cfg)
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	c, err := Dial(context.Background(), s.Addr(), tok(Config{}))
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })

	up, down := wireSizes(b, size)
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		res, err := c.Call(ctx, op.Read, benchPath)
		if err != nil || len(res.Data) != size {
			b.Fatalf("call: %v, %d bytes", err, len(res.Data))
		}
	}
	cpu.report(b)
	reportWire(b, up, down)
}

func benchmarkNetpollEcho(b *testing.B, size int) {
	up, down := wireSizes(b, size)
	reply := make([]byte, down)
	ln, err := netpoll.CreateListener("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	loop, err := netpoll.NewEventLoop(func(_ context.Context, conn netpoll.Connection) error {
		r, w := conn.Reader(), conn.Writer()
		if _, err := r.Next(up); err != nil {
			return conn.Close()
		}
		if _, err := w.WriteBinary(reply); err != nil {
			return conn.Close()
		}
		err := w.Flush()
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

	msg := make([]byte, up)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := conn.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Reader().Next(down); err != nil {
			b.Fatal(err)
		}
		_ = conn.Reader().Release()
	}
	cpu.report(b)
	reportWire(b, up, down)
}
