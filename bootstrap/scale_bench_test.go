package bootstrap

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-copper/copper/tree"
)

// joinersEnv makes the test binary, re-executed, join a gather as the
// ranks "addr first end size" names instead of running tests: the
// benchmark below spreads 10,000 ranks over processes because one
// process holding both ends of 10,000 connections needs 20,000
// descriptors, more than this host's hard limit (20,000) allows, and
// raising it needs CAP_SYS_RESOURCE.
const joinersEnv = "COPPER_BOOTSTRAP_JOINERS"

// ranksPerProcess is how many ranks one joiner process plays.
const ranksPerProcess = 5000

func TestMain(m *testing.M) {
	if spec := os.Getenv(joinersEnv); spec != "" {
		if err := joinersMain(spec); err != nil {
			fmt.Fprintf(os.Stderr, "joiners %s: %v\n", spec, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// joinersMain plays ranks [first, end) of a gather of size at addr, all
// at once, and fails naming every rank that did not get a verified
// result. Every sample-th rank runs the real Join (dial, hello, verdict,
// tag, inflate, parse, own entry checked); the others are light ranks
// (lightJoin) that stop after checking the tag: inflating and parsing a
// 10,000-entry book costs each rank about 2 ms (BenchmarkResultDecode),
// once on its own node in a job, but 10,000 times over on this host's
// cores when every rank is simulated here.
func joinersMain(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 5 {
		return fmt.Errorf("want \"addr first end size sample\", got %q", spec)
	}
	var n [4]int
	for i, s := range f[1:] {
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("field %d %q: %w", i+2, s, err)
		}
		n[i] = v
	}
	first, end, size, sample := n[0], n[1], n[2], max(n[3], 1)
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	opts := Options{Key: testKey, Addr: f[0], Timeout: testBound}
	errs := make([]error, end-first)
	var wg sync.WaitGroup
	for r := first; r < end; r++ {
		wg.Go(func() {
			var err error
			if r%sample == 0 {
				var res Result
				if res, err = Join(ctx, hello(r, size), opts); err == nil && len(res.Book) != size {
					err = fmt.Errorf("book of %d ranks, want %d", len(res.Book), size)
				}
			} else {
				err = lightJoin(ctx, hello(r, size), opts)
			}
			if err != nil {
				errs[r-first] = fmt.Errorf("rank %d: %w", r, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lightJoin is Join's wire work for one rank without inflating the book:
// rank 0's challenge read, a tagged hello with a fresh nonce, the whole
// verdict read, its per-rank tag verified.
func lightJoin(ctx context.Context, h Hello, opts Options) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", opts.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	challenge, err := readChallenge(c)
	if err != nil {
		return fmt.Errorf("reading the challenge: %w", err)
	}
	h.Nonce = make([]byte, NonceLen)
	crand.Read(h.Nonce)
	payload, err := encodeHello(h, opts.Key, challenge)
	if err != nil {
		return err
	}
	if _, err := c.Write(encodeFrame(kindHello, payload)); err != nil {
		return fmt.Errorf("sending hello: %w", err)
	}
	k, res, err := readFrame(c, MaxResultFrame)
	if err != nil {
		return fmt.Errorf("reading the verdict: %w", err)
	}
	if k != kindResult {
		return fmt.Errorf("verdict is a %s frame: %s", k, truncate(string(res), 500))
	}
	_, err = openResult(res, opts.Key, h.Nonce)
	return err
}

// BenchmarkGatherScale is the all-gather at job sizes beyond what one
// process's descriptors hold: rank 0's Serve runs here, the ranks in
// child processes of ranksPerProcess each (this test binary,
// re-executed), every rank its own TCP connection over loopback with its
// own hello, tag check and verified result. ms/gather runs from starting
// the joiner processes (Serve is already accepting) until Serve has
// answered every rank and every joiner process has exited with the whole
// book: process start-up is inside the figure.
func BenchmarkGatherScale(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{2000, 10000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			// Ranks running the whole Join: about 100 per run.
			sample := max(size/100, 1)
			var total, serving, cpu time.Duration
			var book Result
			for b.Loop() {
				cpu0 := processCPU(b)
				ln := listen(b)
				addr := ln.Addr().String()
				served := make(chan serveOutcome, 1)
				var serveTook time.Duration
				go func() {
					t0 := time.Now()
					res, err := Serve(context.Background(), ln, size, Options{Key: testKey, Addr: addr, Timeout: testBound})
					serveTook = time.Since(t0)
					served <- serveOutcome{res, err}
				}()
				start := time.Now()
				var procs []*exec.Cmd
				var outs []*strings.Builder
				for first := 0; first < size; first += ranksPerProcess {
					end := min(first+ranksPerProcess, size)
					cmd := exec.Command(self, "-test.run=^$")
					cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d %d %d", joinersEnv, addr, first, end, size, sample))
					out := &strings.Builder{}
					cmd.Stdout, cmd.Stderr = out, out
					if err := cmd.Start(); err != nil {
						b.Fatalf("starting joiners %d-%d: %v", first, end-1, err)
					}
					procs, outs = append(procs, cmd), append(outs, out)
				}
				var failed []string
				for i, cmd := range procs {
					if err := cmd.Wait(); err != nil {
						failed = append(failed, fmt.Sprintf("%v: %s", err, truncate(outs[i].String(), 2000)))
					}
				}
				srv := await(b, served)
				total += time.Since(start)
				serving += serveTook
				cpu += processCPU(b) - cpu0
				if len(failed) > 0 {
					b.Fatalf("joiner processes failed: %s", strings.Join(failed, "; "))
				}
				if srv.err != nil {
					b.Fatal(srv.err)
				}
				if len(srv.res.Book) != size {
					b.Fatalf("rank 0's book has %d ranks, want %d", len(srv.res.Book), size)
				}
				book = srv.res
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/gather")
			// Serve's own call, from before the first rank dials until the
			// last verdict is written (it includes waiting for the ranks).
			b.ReportMetric(float64(serving.Milliseconds())/float64(b.N), "serve-ms")
			b.ReportMetric(float64(size), "ranks")
			// Rank 0's own CPU (this process: Serve's goroutines and
			// starting the joiners, not the joiners themselves), per rank:
			// the cost a launch node pays per rank whatever the ranks'
			// arrival, and far steadier than serve-ms on a shared host.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/float64(size), "cpu-us/rank")
			// What rank 0 writes to every rank: size copies of this.
			payload, err := encodeResult(book.Book, book.JobID)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(headerLen+len(payload)+TagLen), "result-B")
		})
	}
}

// processCPU is this process's user and system CPU so far (not its children's).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkResultDecode is what every rank does with the gather's result
// once: inflate and parse the whole book.
func BenchmarkResultDecode(b *testing.B) {
	for _, size := range []int{2000, 10000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			book := make([]tree.Entry, size)
			for r := range book {
				h := hello(r, size)
				book[r] = tree.Entry{Host: h.Host, Endpoint: h.Endpoint}
			}
			payload, err := encodeResult(book, "4242")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeResult(payload, maxResultRaw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
