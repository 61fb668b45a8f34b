// Package bootstrap is copper-launch's discover mode: a TCP all-gather in
// which every rank tells rank 0 its host and endpoint, and rank 0 answers
// every rank with the whole address book and the job id.
//
// Rank 0 runs Serve on the bootstrap listener; every rank, rank 0
// included, runs Join. Both hold the job key (key_file), a secret only the
// job's user can read. Rules the launcher can rely on:
//
//   - Rank 0 opens every connection with a fresh random challenge, and
//     every hello carries a fresh nonce and an HMAC tag made with the key
//     over the challenge and the hello. Rank 0 verifies the tag before it
//     parses anything; a hello recorded on another connection (of this job,
//     or of an older one: the key outlives jobs) does not verify on this
//     one. A hello without a tag or with a wrong one costs only that
//     connection (logged with the peer's address) and never registers a
//     rank. A process without the
//     key can neither join nor learn the book.
//   - The result carries no secret. Rank 0 tags it for each rank with that
//     rank's hello nonce, and Join verifies the tag before using anything:
//     a forged result, or one replayed from another connection or job,
//     fails the rank with a clear error. The job's peer token is derived
//     from the key and the job id on every rank (see package launch); it
//     is never sent.
//   - A rank is registered while its connection is open. If that connection
//     drops before the verdict, the rank is unregistered and may join again
//     (Join reconnects while its dial deadline lasts).
//   - A second hello for a rank whose connection is still open fails the
//     job: the first registration is never replaced, and both are named in
//     the error. A hello cannot be replayed (the challenge), so only a
//     rank started twice collides like this.
//   - A size that differs from rank 0's fails the job, naming both.
//   - Bytes that are not a valid hello (wrong magic, version or kind,
//     oversized, bad tag, bad JSON, invalid fields) cost only that
//     connection: it is dropped with a logged error and the gather continues.
//   - On any failure every waiting rank receives rank 0's reason, so every
//     launcher exits non-zero saying the same thing. Error frames are not
//     tagged: a forged one can only fail a rank, as a dropped connection can.
package bootstrap

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/tree"
)

// Result is the outcome of the all-gather, the same on every rank.
type Result struct {
	Book  []tree.Entry // Book[r] is rank r's host and endpoint
	JobID string       // rank 0's choice (see Serve)
	// Seen is every hello in rank order, for provenance. Only Serve fills
	// it: broadcasting it would make rank 0 send N² interface lists.
	Seen []Hello
}

// Options configure both ends. Zero values take the defaults.
type Options struct {
	Addr         string        // rank 0's bootstrap address, host:port; Join dials it
	Timeout      time.Duration // Serve: gather deadline; Join: how long to keep dialing (default 60 s)
	RetryInitial time.Duration // Join's first dial backoff (default 50 ms), doubling...
	RetryMax     time.Duration // ...up to this (default 2 s), with jitter
	Logger       *slog.Logger  // default: discard
	// Key is the job key (at least MinKeyLen bytes) that tags hellos and
	// results; Serve and Join refuse to run without it.
	Key []byte
	// Hosts, when it has one name per rank (the allocation's node list,
	// rank r on Hosts[r]), lets Serve name the hosts of missing ranks in
	// its failure, which every waiting rank receives: the host that never
	// arrived is the one to look at.
	Hosts []string
}

const (
	defaultTimeout      = 60 * time.Second
	defaultRetryInitial = 50 * time.Millisecond
	defaultRetryMax     = 2 * time.Second

	maxHelloWait  = 10 * time.Second // a connection must say hello within min(this, Timeout)
	replyLinger   = 2 * time.Second  // bound on delivering a refusal to one connection
	writeTimeout  = 30 * time.Second // per-rank bound on writing the verdict
	broadcasters  = 64               // concurrent verdict writers at rank 0
	spareConns    = 64               // connections beyond size accepted at once (strangers, reconnects)
	fileLimitNeed = spareConns + 64  // descriptors beyond one per rank: listener, logs, spares
)

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.RetryInitial <= 0 {
		o.RetryInitial = defaultRetryInitial
	}
	if o.RetryMax <= 0 {
		o.RetryMax = defaultRetryMax
	}
	o.RetryMax = max(o.RetryMax, o.RetryInitial)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Serve is rank 0's gatherer. It accepts hellos on ln until all size ranks
// have joined or opts.Timeout passes, then answers every waiting rank with
// the result or with the reason for failing, and closes ln. The job id is
// rank 0's proposal, else the first proposal in rank order, else a random
// "copper-" id; disagreeing proposals are logged. Work at rank 0 is O(size)
// plus writing size copies of one pre-encoded result.
func Serve(ctx context.Context, ln net.Listener, size int, opts Options) (Result, error) {
	defer ln.Close()
	opts = opts.withDefaults()
	if err := checkKey(opts.Key); err != nil {
		return Result{}, err
	}
	if size < 1 || size > MaxRanks {
		return Result{}, fmt.Errorf("bootstrap: job size %d outside 1..%d", size, MaxRanks)
	}
	if err := checkFileLimit(size); err != nil {
		return Result{}, err
	}
	g := &gather{
		ln:       ln,
		addr:     ln.Addr().String(),
		size:     size,
		opts:     opts,
		log:      opts.Logger,
		register: make(chan registration),
		lost:     make(chan lostConn),
		done:     make(chan struct{}),
		slots:    make(chan struct{}, size+spareConns),
		pending:  make(map[net.Conn]struct{}),
	}
	return g.run(ctx)
}

// checkFileLimit fails early, with the fix, when rank 0 could not hold one
// connection per rank. Go raises the soft limit to the hard one at start,
// so the soft limit read here is what we really have.
func checkFileLimit(size int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown: let accept report it if it comes to that
	}
	if need := uint64(size) + fileLimitNeed; lim.Cur < need {
		return fmt.Errorf("bootstrap: rank 0 needs about %d open files to hold %d rank connections, but its limit is %d (raise the hard limit, ulimit -Hn)",
			need, size, lim.Cur)
	}
	return nil
}

type registration struct {
	conn  net.Conn
	hello Hello
	peer  string // remote address, for messages
}

type lostConn struct {
	registration
	err error
}

// gather is one Serve call's state. The run goroutine alone owns the
// registration table; connection handlers talk to it over channels.
type gather struct {
	ln   net.Listener
	addr string
	size int
	opts Options
	log  *slog.Logger

	register chan registration
	lost     chan lostConn
	done     chan struct{} // closed once the verdict is decided
	failure  string        // the reason, set before done is closed; "" on success
	slots    chan struct{} // bounds live connections

	wg      sync.WaitGroup
	mu      sync.Mutex
	pending map[net.Conn]struct{} // connections still reading their hello
	// Hellos refused for a bad tag, for the failure message: a node with
	// another key_file shows up as a missing rank, and this says why.
	badTags    int
	lastBadTag string
}

// table is the registration state; only the run goroutine touches it.
type table struct {
	hellos []Hello
	conns  []net.Conn // nil: rank not (or no longer) registered
	peers  []string
	joined int
	extra  []net.Conn // unregistered connections that must hear the failure
}

func (g *gather) run(ctx context.Context) (Result, error) {
	start := time.Now()
	g.wg.Add(1)
	go g.accept()

	t := &table{hellos: make([]Hello, g.size), conns: make([]net.Conn, g.size), peers: make([]string, g.size)}
	failure := g.collect(ctx, t)
	var res Result
	var frame func(rank int) net.Buffers // what rank (-1: unregistered) receives
	var frameBytes int
	if failure == "" {
		payload, err := g.decide(t.hellos, &res)
		if err != nil {
			failure = err.Error()
		} else {
			// One compressed payload for all; only the tag is per rank.
			head := make([]byte, headerLen)
			copy(head, encodeFrame(kindResult, nil))
			binary.BigEndian.PutUint32(head[4:8], uint32(len(payload)+TagLen))
			digest := sha256.Sum256(payload)
			frame = func(r int) net.Buffers {
				if r < 0 { // unregistered connections exist only on failure; be safe
					return net.Buffers{encodeFrame(kindError, []byte("the gather completed without this connection"))}
				}
				return net.Buffers{head, payload, resultTag(g.opts.Key, t.hellos[r].Nonce, digest)}
			}
			frameBytes = headerLen + len(payload) + TagLen
		}
	}
	if failure != "" {
		errFrame := encodeFrame(kindError, []byte(truncate(failure, MaxHelloFrame)))
		frame = func(int) net.Buffers { return net.Buffers{errFrame} }
		frameBytes = len(errFrame)
	}
	g.failure = failure
	close(g.done)
	g.ln.Close()

	to := make([]recipient, 0, t.joined+len(t.extra))
	for r, c := range t.conns {
		if c != nil {
			to = append(to, recipient{rank: r, conn: c})
		}
	}
	for _, c := range t.extra {
		to = append(to, recipient{rank: -1, conn: c})
	}
	undelivered, firstErr := g.broadcast(frame, to)
	g.closePending()
	g.wg.Wait()

	if failure != "" {
		g.log.Error("bootstrap: gather failed", "addr", g.addr, "reason", failure)
		return Result{}, errors.New("bootstrap: " + failure)
	}
	if len(undelivered) > 0 {
		return Result{}, fmt.Errorf("bootstrap: result not delivered to %s %s of %d: %w",
			rankWord(len(undelivered)), formatRanks(undelivered), g.size, firstErr)
	}
	g.log.Info("bootstrap: gather complete", "ranks", g.size, "job_id", res.JobID,
		"elapsed", time.Since(start), "result_bytes", frameBytes)
	return res, nil
}

// collect registers hellos until every rank has joined (returning "") or
// the gather fails (returning the reason).
func (g *gather) collect(ctx context.Context, t *table) string {
	timer := time.NewTimer(g.opts.Timeout)
	defer timer.Stop()
	for t.joined < g.size {
		select {
		case reg := <-g.register:
			h := reg.hello
			switch {
			case h.Size != g.size:
				t.extra = append(t.extra, reg.conn)
				return fmt.Sprintf("rank %d (host %s) says the job has %d ranks but rank 0 says %d",
					h.Rank, h.Host, h.Size, g.size)
			case t.conns[h.Rank] != nil:
				t.extra = append(t.extra, reg.conn)
				return fmt.Sprintf("rank %d joined twice: first from host %s (%s), again from host %s (%s); is a launcher running twice or with a wrong rank?",
					h.Rank, t.hellos[h.Rank].Host, t.peers[h.Rank], h.Host, reg.peer)
			}
			t.conns[h.Rank], t.hellos[h.Rank], t.peers[h.Rank] = reg.conn, h, reg.peer
			t.joined++
			g.log.Debug("bootstrap: rank joined", "rank", h.Rank, "host", h.Host, "joined", t.joined, "size", g.size)
		case l := <-g.lost:
			if r := l.hello.Rank; t.conns[r] == l.conn {
				t.conns[r], t.hellos[r], t.peers[r] = nil, Hello{}, ""
				t.joined--
				g.log.Warn("bootstrap: rank's connection closed before the verdict; it may join again",
					"rank", r, "host", l.hello.Host, "peer", l.peer, "err", l.err)
			}
		case <-timer.C:
			return fmt.Sprintf("gather timed out after %s: %s", g.opts.Timeout, g.missing(t))
		case <-ctx.Done():
			return fmt.Sprintf("gather cancelled (%v): %s", context.Cause(ctx), g.missing(t))
		}
	}
	return ""
}

// missing describes the ranks that have not joined: "missing ranks 3,7-9 of 16 (12 joined)".
func (g *gather) missing(t *table) string {
	var ranks []int
	for r, c := range t.conns {
		if c == nil {
			ranks = append(ranks, r)
		}
	}
	msg := fmt.Sprintf("missing %s %s of %d (%d joined)", rankWord(len(ranks)), formatRanks(ranks), g.size, t.joined)
	if len(g.opts.Hosts) == g.size && len(ranks) > 0 {
		msg += "; not heard from: " + missingHosts(ranks, g.opts.Hosts)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.badTags > 0 {
		msg += fmt.Sprintf("; %d hello(s) refused for a bad tag, the last from %s: does it hold another key_file?", g.badTags, g.lastBadTag)
	}
	return msg
}

// maxNamedHosts bounds the hosts a failure names (the ranks are all
// listed as ranges already).
const maxNamedHosts = 8

// missingHosts names the hosts of the first missing ranks: "nid00003
// (rank 3), nid00007 (rank 7), ... and 12 more".
func missingHosts(ranks []int, hosts []string) string {
	var b strings.Builder
	for i, r := range ranks {
		if i == maxNamedHosts {
			fmt.Fprintf(&b, ", ... and %d more", len(ranks)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (rank %d)", truncate(hosts[r], maxHostLen), r)
	}
	return b.String()
}

// decide builds the result once every rank has joined: book and job id
// in *res, and the compressed payload every rank will receive.
func (g *gather) decide(hellos []Hello, res *Result) ([]byte, error) {
	book := make([]tree.Entry, len(hellos))
	for r, h := range hellos {
		book[r] = tree.Entry{Host: h.Host, Endpoint: h.Endpoint}
	}
	if err := tree.ValidateBook(book); err != nil {
		return nil, err
	}
	jobID, err := g.chooseJobID(hellos)
	if err != nil {
		return nil, err
	}
	payload, err := encodeResult(book, jobID)
	if err != nil {
		return nil, err
	}
	*res = Result{Book: book, JobID: jobID, Seen: hellos}
	return payload, nil
}

func (g *gather) chooseJobID(hellos []Hello) (string, error) {
	id := hellos[0].JobID
	for _, h := range hellos {
		if id == "" {
			id = h.JobID
		}
	}
	if id == "" {
		b := make([]byte, 6)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("drawing a job id: %w", err)
		}
		return "copper-" + hex.EncodeToString(b), nil
	}
	var differ []int
	for r, h := range hellos {
		if h.JobID != "" && h.JobID != id {
			differ = append(differ, r)
		}
	}
	if len(differ) > 0 {
		g.log.Warn("bootstrap: ranks propose other job ids; using the chosen one",
			"job_id", id, "ranks", formatRanks(differ), "example", hellos[differ[0]].JobID)
	}
	return id, nil
}

type recipient struct {
	rank int // -1: a connection that was never registered
	conn net.Conn
}

// broadcast writes frame(rank) to every recipient with a bounded pool,
// closing each connection after its write. It returns the registered
// ranks whose write failed, ascending, and the first such error.
func (g *gather) broadcast(frame func(rank int) net.Buffers, to []recipient) ([]int, error) {
	var (
		mu     sync.Mutex
		failed = make([]bool, g.size)
		nFail  int
		first  error
		wg     sync.WaitGroup
	)
	next := make(chan recipient)
	for range min(broadcasters, len(to)) {
		wg.Go(func() {
			for rc := range next {
				rc.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
				bufs := frame(rc.rank)
				_, err := bufs.WriteTo(rc.conn)
				rc.conn.Close()
				if err != nil && rc.rank >= 0 {
					mu.Lock()
					failed[rc.rank] = true
					if nFail++; first == nil {
						first = fmt.Errorf("rank %d: %w", rc.rank, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, rc := range to {
		next <- rc
	}
	close(next)
	wg.Wait()
	if nFail == 0 {
		return nil, nil
	}
	ranks := make([]int, 0, nFail)
	for r, f := range failed {
		if f {
			ranks = append(ranks, r)
		}
	}
	return ranks, first
}

// truncate cuts s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
