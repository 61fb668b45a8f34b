package e2e

// The soak: `make soak` (COPPER_SOAK=full or short). Eight real
// copper-node processes serve a generated tree of files with known
// sha256; a reader process per mount reads every file once, in its own
// random order, at a steady pace and checks every byte; meanwhile an
// interior node and then the root are killed with SIGKILL and another
// interior node is stopped (SIGSTOP) for a few seconds. The run writes
// docs/RELIABILITY.md with what it measured. Not part of `make test`.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/testkit"
)

const (
	soakEnv       = "COPPER_SOAK"        // full | short: run TestSoak
	soakReaderEnv = "COPPER_SOAK_READER" // JSON soakReaderConfig: be a reader
	soakSlow      = 100 * time.Millisecond
	soakHeld      = 2 * time.Second // reads started this soon after a fault count as held up by it
)

// soakPlan is one soak's shape. Times are offsets from the readers' start.
type soakPlan struct {
	mode       string
	duration   time.Duration
	rate       float64 // reads per second per mount
	killLeaf   time.Duration
	killRoot   time.Duration
	stopAt     time.Duration
	stopFor    time.Duration
	cacheBytes int64
}

func soakPlanFor(mode string) (soakPlan, error) {
	switch mode {
	case "full":
		return soakPlan{mode: mode, duration: 240 * time.Second, rate: 25, killLeaf: 45 * time.Second,
			killRoot: 100 * time.Second, stopAt: 160 * time.Second, stopFor: 8 * time.Second, cacheBytes: 256 << 20}, nil
	case "short":
		return soakPlan{mode: mode, duration: 75 * time.Second, rate: 25, killLeaf: 15 * time.Second,
			killRoot: 30 * time.Second, stopAt: 50 * time.Second, stopFor: 5 * time.Second, cacheBytes: 256 << 20}, nil
	}
	return soakPlan{}, fmt.Errorf("%s=%q: want full or short", soakEnv, mode)
}

// Tree of the soak: 0 → 1,2; 1 → 3,4; 2 → 5,6; 3 → 7 (fan-out 2).
const (
	soakNodes    = 8
	soakInterior = 2 // SIGKILLed: its children 5, 6 fail over to the root
	soakStopped  = 3 // SIGSTOPped: its child 7 fails over by heartbeat
)

type soakReaderConfig struct {
	Rank     int     `json:"rank"`
	Mount    string  `json:"mount"`
	Manifest string  `json:"manifest"`
	Rate     float64 `json:"rate"`
	Workers  int     `json:"workers"`
	StartNs  int64   `json:"start_ns"` // common start, so that times line up
	Duration int64   `json:"duration_ns"`
}

type soakEvent struct {
	StartNs int64  `json:"start_ns"` // since the common start
	DurNs   int64  `json:"dur_ns"`
	Err     string `json:"err,omitempty"`
}

type soakReaderResult struct {
	Rank    int              `json:"rank"`
	Reads   int64            `json:"reads"`
	OK      int64            `json:"ok"`
	Wrong   int64            `json:"wrong"`
	Errors  map[string]int64 `json:"errors"`
	Skipped int64            `json:"skipped"` // paced reads not started: every worker was blocked
	Slow    []soakEvent      `json:"slow"`    // reads ≥ soakSlow, and every failed read (capped)
	P50Ns   int64            `json:"p50_ns"`
	P99Ns   int64            `json:"p99_ns"`
	MaxNs   int64            `json:"max_ns"`
}

type soakFile struct {
	rel  string
	sum  string
	size int64
}

func readSoakManifest(path string) ([]soakFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []soakFile
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 {
			return nil, fmt.Errorf("manifest %s: bad line %q", path, sc.Text())
		}
		n, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", path, err)
		}
		out = append(out, soakFile{parts[0], parts[1], n})
	}
	return out, sc.Err()
}

// soakReaderMain is the reader process: it never touches a mount from
// the test process, which a dead node could leave in uninterruptible sleep.
func soakReaderMain(spec string) int {
	var cfg soakReaderConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "reader config:", err)
		return 2
	}
	files, err := readSoakManifest(cfg.Manifest)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rand.New(rand.NewPCG(uint64(cfg.Rank), 0x50a4)).Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	start := time.Unix(0, cfg.StartNs)
	res := soakReaderResult{Rank: cfg.Rank, Errors: map[string]int64{}}
	var mu sync.Mutex
	var lat []int64
	work := make(chan soakFile)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for f := range work {
				t0 := time.Now()
				data, err := os.ReadFile(filepath.Join(cfg.Mount, f.rel))
				d := time.Since(t0)
				ev := soakEvent{StartNs: t0.Sub(start).Nanoseconds(), DurNs: d.Nanoseconds()}
				mu.Lock()
				res.Reads++
				lat = append(lat, d.Nanoseconds())
				switch {
				case err != nil:
					var errno syscall.Errno
					kind := "other"
					if errors.As(err, &errno) {
						kind = errno.Error()
					}
					res.Errors[kind]++
					ev.Err = kind
				default:
					sum := sha256.Sum256(data)
					if hex.EncodeToString(sum[:]) != f.sum || int64(len(data)) != f.size {
						res.Wrong++
						ev.Err = "wrong bytes"
					} else {
						res.OK++
					}
				}
				if (ev.Err != "" || d >= soakSlow) && len(res.Slow) < 20000 {
					res.Slow = append(res.Slow, ev)
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Until(start))
	tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	end := start.Add(time.Duration(cfg.Duration))
	for i := 0; time.Now().Before(end); {
		<-tick.C
		select {
		case work <- files[i%len(files)]:
			i++
		default:
			mu.Lock()
			res.Skipped++
			mu.Unlock()
		}
	}
	tick.Stop()
	close(work)
	wg.Wait()
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.P50Ns, res.P99Ns, res.MaxNs = lat[n/2], lat[n*99/100], lat[n-1]
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

// makeSoakTree writes n files with random sizes and contents under a new
// directory and a manifest "rel\tsha256\tsize" per line.
func makeSoakTree(t *testing.T, dir string, n int) (root, manifestPath string, bytes int64) {
	t.Helper()
	root = filepath.Join(dir, "src")
	rng := rand.New(rand.NewPCG(2026, 11))
	var man strings.Builder
	buf := make([]byte, 256<<10)
	for i := range n {
		var size int
		switch k := rng.IntN(100); {
		case k < 70:
			size = 512 + rng.IntN(8<<10)
		case k < 97:
			size = 8<<10 + rng.IntN(56<<10)
		default:
			size = 64<<10 + rng.IntN(192<<10)
		}
		for j := range size {
			buf[j] = byte(rng.Uint32())
		}
		rel := fmt.Sprintf("d%02d/s%d/f%05d.bin", i%40, i%7, i)
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, buf[:size], 0o644))
		sum := sha256.Sum256(buf[:size])
		fmt.Fprintf(&man, "%s\t%s\t%d\n", rel, hex.EncodeToString(sum[:]), size)
		bytes += int64(size)
	}
	manifestPath = filepath.Join(dir, "soak-manifest.tsv")
	require.NoError(t, os.WriteFile(manifestPath, []byte(man.String()), 0o644))
	return root, manifestPath, bytes
}

// soakFault is one injected fault, at an offset from the readers' start.
type soakFault struct {
	what   string
	rank   int
	at     time.Duration
	until  time.Duration // SIGCONT time for a stop; = at otherwise
	killed bool          // its own mount is dead afterwards
}

func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

func TestSoak(t *testing.T) {
	mode := os.Getenv(soakEnv)
	if mode == "" {
		t.Skipf("the soak runs with %s=full|short (make soak)", soakEnv)
	}
	plan, err := soakPlanFor(mode)
	require.NoError(t, err)

	c := newCluster(t, clusterConfig{nodes: soakNodes, fanout: 2, flags: []string{
		"--max-cacheable-bytes", strconv.Itoa(1 << 20),
		"--cache-memory-bytes", strconv.FormatInt(plan.cacheBytes, 10),
		"--rpc-timeout-s", "30", "--ready-timeout-s", "30", "--heartbeat-timeout-ms", "1000",
	}})
	files := int(plan.rate*plan.duration.Seconds()) + 1
	root, manifestPath, totalBytes := makeSoakTree(t, c.dir, files)
	c.cfg.target = root
	nodes := c.startAll()
	pids := make([]int, soakNodes)
	for _, n := range nodes {
		pids[n.rank] = n.pid
	}
	// A stopped node must never outlive the test, even on failure.
	t.Cleanup(func() { _ = syscall.Kill(pids[soakStopped], syscall.SIGCONT) })

	start := time.Now().Add(2 * time.Second)
	self, err := os.Executable()
	require.NoError(t, err)
	results := make([]soakReaderResult, soakNodes)
	readerErrs := make([]error, soakNodes)
	var readers sync.WaitGroup
	for r := range soakNodes {
		spec, _ := json.Marshal(soakReaderConfig{Rank: r, Mount: c.mount(r), Manifest: manifestPath,
			Rate: plan.rate, Workers: 8, StartNs: start.UnixNano(), Duration: plan.duration.Nanoseconds()})
		readers.Go(func() {
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), soakReaderEnv+"="+string(spec))
			res, err := runBounded(cmd, plan.duration+90*time.Second)
			switch {
			case err != nil:
				readerErrs[r] = err
			case res.code != 0:
				readerErrs[r] = fmt.Errorf("reader %d: %s", r, res)
			default:
				readerErrs[r] = json.Unmarshal([]byte(res.stdout), &results[r])
			}
		})
	}

	faults := []soakFault{
		{what: fmt.Sprintf("SIGKILL interior rank %d", soakInterior), rank: soakInterior, at: plan.killLeaf, killed: true},
		{what: "SIGKILL root (rank 0)", rank: 0, at: plan.killRoot, killed: true},
		{what: fmt.Sprintf("SIGSTOP rank %d for %v", soakStopped, plan.stopFor), rank: soakStopped, at: plan.stopAt, until: plan.stopAt + plan.stopFor},
	}
	for i := range faults {
		f := &faults[i]
		time.Sleep(time.Until(start.Add(f.at)))
		if f.killed {
			require.NoError(t, syscall.Kill(pids[f.rank], syscall.SIGKILL))
			t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), f.what)
			continue
		}
		require.NoError(t, syscall.Kill(pids[f.rank], syscall.SIGSTOP))
		t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), f.what)
		time.Sleep(time.Until(start.Add(f.until)))
		require.NoError(t, syscall.Kill(pids[f.rank], syscall.SIGCONT))
	}
	readers.Wait()
	require.NoError(t, errors.Join(readerErrs...))

	// Per-node state at the end, for the survivors.
	type nodeEnd struct {
		alive     bool
		rss       int64
		failovers int64
		backend   int64
		cached    int64
		upstream  string
	}
	ends := make([]nodeEnd, soakNodes)
	for r := range soakNodes {
		e := nodeEnd{alive: osutil.ProcessMentions(pids[r], c.dir)}
		if e.alive {
			e.rss = rssBytes(pids[r])
			st := c.stats(r)
			e.failovers, e.backend, e.upstream, e.cached = st.Node.Failovers, st.backendOps(), st.Upstream, st.Node.Cache.Bytes
		}
		ends[r] = e
	}
	logs, _ := filepath.Glob(filepath.Join(c.logDir, c.jobID, "logs", "*-output.log"))
	var logTotal int64
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil {
			logTotal += fi.Size()
		}
	}

	rep := soakReport{plan: plan, files: files, bytes: totalBytes, faults: faults, results: results,
		logBytes: logTotal, logFiles: len(logs), events: failoverEvents(t, logs, start)}
	for r, e := range ends {
		rep.nodes = append(rep.nodes, soakNodeRow{rank: r, alive: e.alive, rss: e.rss, failovers: e.failovers,
			backend: e.backend, cached: e.cached, upstream: e.upstream})
	}
	rep.analyze()
	doc := rep.markdown()
	t.Log("\n" + doc)
	modRoot, err := testkit.ModuleRoot()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(modRoot, "docs", "RELIABILITY.md"), []byte(doc), 0o644))

	require.Zero(t, rep.wrong, "wrong bytes")
	require.Zero(t, rep.otherErrors, "application-visible errors outside the faulted nodes' own mounts")
}

type soakNodeRow struct {
	rank               int
	alive              bool
	rss, cached        int64
	failovers, backend int64
	upstream           string
}

type soakFaultRow struct {
	fault      soakFault
	stall      time.Duration // longest read on another mount overlapping the fault
	recovery   time.Duration // fault → end of the last slow read it caused elsewhere
	ownErrors  int64
	ownLongest time.Duration
}

type soakReport struct {
	plan     soakPlan
	files    int
	bytes    int64
	faults   []soakFault
	results  []soakReaderResult
	nodes    []soakNodeRow
	logBytes int64
	logFiles int
	events   []soakLogEvent

	reads, ok, wrong, otherErrors, ownErrors, skipped int64
	errorKinds                                        map[string]int64
	longestStall                                      time.Duration
	longestStallAt                                    string
	rows                                              []soakFaultRow
	p50, p99                                          time.Duration
}

// ownMount reports whether a read on rank's mount at offset at is on a
// faulted node's own mount: dead after its kill, frozen during its stop.
func (r *soakReport) ownMount(rank int, at, end time.Duration) (soakFault, bool) {
	for _, f := range r.faults {
		if f.rank != rank {
			continue
		}
		if f.killed && end >= f.at {
			return f, true
		}
		if !f.killed && end >= f.at && at <= f.until {
			return f, true
		}
	}
	return soakFault{}, false
}

func (r *soakReport) analyze() {
	r.errorKinds = map[string]int64{}
	r.rows = make([]soakFaultRow, len(r.faults))
	for i, f := range r.faults {
		r.rows[i].fault = f
	}
	var p50s, p99s []int64
	for _, res := range r.results {
		r.reads += res.Reads
		r.ok += res.OK
		r.wrong += res.Wrong
		r.skipped += res.Skipped
		p50s, p99s = append(p50s, res.P50Ns), append(p99s, res.P99Ns)
		for _, ev := range res.Slow {
			at, d := time.Duration(ev.StartNs), time.Duration(ev.DurNs)
			if f, own := r.ownMount(res.Rank, at, at+d); own {
				for i := range r.rows {
					if r.rows[i].fault.what == f.what {
						if ev.Err != "" {
							r.rows[i].ownErrors++
						}
						r.rows[i].ownLongest = max(r.rows[i].ownLongest, d)
					}
				}
				if ev.Err != "" {
					r.ownErrors++
				}
				continue
			}
			if ev.Err != "" {
				r.otherErrors++
				r.errorKinds[ev.Err]++
			}
			if d > r.longestStall {
				r.longestStall = d
				r.longestStallAt = fmt.Sprintf("rank %d at t=%.1fs", res.Rank, at.Seconds())
			}
			// A fault holds up the reads in flight at it or started
			// within soakHeld after it (before failover could act).
			for i := range r.rows {
				if f := r.rows[i].fault; at+d >= f.at && at <= f.at+soakHeld {
					r.rows[i].stall = max(r.rows[i].stall, d)
					r.rows[i].recovery = max(r.rows[i].recovery, at+d-f.at)
				}
			}
		}
	}
	// Errors the readers counted but did not list (list capped) are
	// counted as application-visible: never hidden.
	var listed int64
	for _, res := range r.results {
		for _, ev := range res.Slow {
			if ev.Err != "" {
				listed++
			}
		}
	}
	var counted int64
	for _, res := range r.results {
		for _, n := range res.Errors {
			counted += n
		}
		counted += res.Wrong
	}
	r.otherErrors += counted - listed
	sort.Slice(p50s, func(i, j int) bool { return p50s[i] < p50s[j] })
	sort.Slice(p99s, func(i, j int) bool { return p99s[i] < p99s[j] })
	r.p50, r.p99 = time.Duration(p50s[len(p50s)/2]), time.Duration(p99s[len(p99s)-1])
}

func numCPU() int { return runtime.NumCPU() }

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10)) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (r *soakReport) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Reliability: the soak\n\n")
	p("Generated by `make soak SOAK=%s` (which runs `COPPER_SOAK=%s go test -count=1 -timeout 15m -run '^TestSoak$' -v ./e2e/`) on %s, %d CPUs shared with other work. ",
		r.plan.mode, r.plan.mode, time.Now().UTC().Format("2006-01-02 15:04 UTC"), numCPU())
	p("Do not edit: the next run rewrites this file with what it measured.\n\n")
	p("## What ran\n\n")
	p("Eight real `copper-node` processes on this host (fan-out 2: 0 → 1,2; 1 → 3,4; 2 → 5,6; 3 → 7), default failover settings ")
	p("(`heartbeat_timeout_ms = 1000`, `root_failover = \"successor\"`), `rpc_timeout_s = 30`, cache budget %s per node. ", mib(r.plan.cacheBytes))
	p("The target is a generated tree of %d files (%s, 0.5 KiB–256 KiB) whose sha256 is known. ", r.files, mib(r.bytes))
	p("One reader process per mount reads every file once, in its own random order, %.0f reads/s with up to 8 in flight, for %v, and checks every byte. ",
		r.plan.rate, r.plan.duration)
	p("Each read is cold for that node's kernel and cache, so every one goes through the node and, unless a relative already fetched it, up the tree.\n\n")
	p("Faults, at offsets from the readers' start:\n\n")
	for _, f := range r.faults {
		p("* t=%.0fs: %s\n", f.at.Seconds(), f.what)
	}
	p("\n## Results\n\n")
	p("| measure | value |\n|---|---|\n")
	p("| reads | %d (%d correct) |\n", r.reads, r.ok)
	p("| wrong bytes (sha256 mismatch) | **%d** |\n", r.wrong)
	p("| application-visible errors on healthy mounts | **%d** %s |\n", r.otherErrors, kinds(r.errorKinds))
	p("| errors on a faulted node's own mount (by design) | %d |\n", r.ownErrors)
	p("| paced reads not started (all 8 of a reader's slots blocked; per mount below) | %d |\n", r.skipped)
	p("| read latency, median of per-mount p50 / worst per-mount p99 | %v / %v |\n", r.p50.Round(10*time.Microsecond), r.p99.Round(time.Millisecond))
	p("| longest stall on a healthy mount | %v (%s) |\n", r.longestStall.Round(time.Millisecond), orNone(r.longestStallAt))
	p("| node log files (log level 4), total | %s in %d files |\n\n", kib(r.logBytes), r.logFiles)
	p("Per fault (\"held up\": a read on another mount, of %v or more, in flight at the fault or started within %v after it; ", soakSlow, soakHeld)
	p("\"stall\": the longest such read; \"recovery\": from the fault to the end of the last one, 0 when none):\n\n")
	p("| fault | longest stall elsewhere | recovery | own-mount errors | own-mount longest read |\n|---|---|---|---|---|\n")
	for _, row := range r.rows {
		p("| %s | %v | %v | %d | %v |\n", row.fault.what, row.stall.Round(time.Millisecond), row.recovery.Round(time.Millisecond),
			row.ownErrors, row.ownLongest.Round(time.Millisecond))
	}
	p("\nPer node at the end (RSS is the peak resident set, VmHWM):\n\n")
	p("| rank | state | reads (errors) | reads not started | peak RSS | cached | cache budget | failovers | filesystem ops | asks |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range r.nodes {
		res := r.results[n.rank]
		var errs int64
		for _, k := range res.Errors {
			errs += k
		}
		if !n.alive {
			p("| %d | killed | %d (%d) | %d | – | – | %s | – | – | – |\n", n.rank, res.Reads, errs, res.Skipped, mib(r.plan.cacheBytes))
			continue
		}
		p("| %d | alive | %d (%d) | %d | %s | %s | %s | %d | %d | %s |\n", n.rank, res.Reads, errs, res.Skipped, mib(n.rss), mib(n.cached), mib(r.plan.cacheBytes), n.failovers, n.backend, n.upstream)
	}
	p("\nFailover events from the nodes' logs (every switch is logged once):\n\n")
	p("| t | rank | event | from | to | cause |\n|---|---|---|---|---|---|\n")
	for _, e := range r.events {
		p("| %.1fs | %s | %s | %s | %s | %s |\n", e.at.Seconds(), e.rank, e.what, e.from, e.to, e.cause)
	}
	p("\n## What the numbers say\n\n")
	if r.wrong == 0 {
		p("* **No wrong byte**: every one of the %d successful reads matched its sha256, through kills, a takeover and a stop.\n", r.ok)
	} else {
		p("* **%d reads returned wrong bytes.** This is a bug: see the run's log.\n", r.wrong)
	}
	if r.otherErrors == 0 {
		p("* **No application-visible error on a healthy mount.** The only errors were on the mounts of the killed nodes themselves ")
		p("(%d; a FUSE mount whose daemon is SIGKILLed answers ENOTCONN, and those readers keep trying), which no failover can hide.\n", r.ownErrors)
	} else {
		p("* **%d application-visible errors on healthy mounts** %s: failover did not hide every fault.\n", r.otherErrors, kinds(r.errorKinds))
	}
	for _, row := range r.rows {
		switch {
		case row.fault.killed && row.fault.rank == 0:
			p("* Root killed: %s ", heldUp(row))
			if others := r.otherBackendOps(); others == 0 {
				p("Rank 1, the successor, read the filesystem from then on (its filesystem ops above) and no other survivor touched it: ")
				p("each path still reached the filesystem once per tree.\n")
			} else {
				p("The survivors other than rank 1 made %d filesystem operations themselves (direct reads): the successor did not carry the whole tree.\n", others)
			}
		case row.fault.killed:
			p("* Interior rank %d killed: its children switched to the root on the broken connection (refused or reset: no timeout involved); %s\n",
				row.fault.rank, heldUp(row))
		default:
			p("* Rank %d stopped for %v: its child's reads waited for the heartbeat (1 s of silence) and went to the grandparent; %s ",
				row.fault.rank, row.fault.until-row.fault.at, heldUp(row))
			p("Its own mount froze for the whole stop (longest own read %v; those readers' unstarted reads are in the table) and served again after SIGCONT; ", row.ownLongest.Round(time.Millisecond))
			if back, ok := r.backAfter(row.fault); ok {
				p("its child went back to it at t=%.1fs, at a background retry of the parent (every 10 s).\n", back.Seconds())
			} else {
				p("its child had not gone back to it by the end of the run.\n")
			}
		}
	}
	if n := r.falseAlarms(); n > 0 {
		p("* **%d heartbeat failovers without an injected fault** (see the events): on this shared 2-CPU host a busy parent process can be unscheduled for a second. ", n)
		p("Each moved one subtree up a level (more load there, no error) until the parent retry, 10 s later.\n")
	} else {
		p("* No heartbeat failover without an injected fault: every timeout-driven switch above is the SIGSTOP's.\n")
	}
	var worst float64
	for _, n := range r.nodes {
		if n.alive && n.cached > 0 {
			worst = max(worst, float64(n.rss)/float64(n.cached))
		}
	}
	p("* Memory: every node read every file, so each survivor caches about the whole tree (%s), well under its %s budget; ", mib(r.bytes), mib(r.plan.cacheBytes))
	p("peak RSS is at most %.2f× what its cache holds (the rest: Go runtime and GC headroom, FUSE and network buffers).\n", worst)
	p("* Logs: %s for %d nodes over the whole run; warnings and errors are rate-limited per message (10 per 10 s, then a \"suppressed K similar messages\" line).\n", kib(r.logBytes), r.logFiles)
	return b.String()
}

// soakLogEvent is one failover-related line of a node's log.
type soakLogEvent struct {
	at                          time.Duration
	rank, what, from, to, cause string
}

var logAttr = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S+)`)

// failoverEvents collects the switches the nodes logged, in time order.
func failoverEvents(t *testing.T, logs []string, start time.Time) []soakLogEvent {
	var out []soakLogEvent
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Logf("soak: %v", err)
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.Contains(line, "failing over") && !strings.Contains(line, "going back to it") {
				continue
			}
			kv := map[string]string{}
			for _, m := range logAttr.FindAllStringSubmatch(line, -1) {
				v := m[2]
				if uq, err := strconv.Unquote(v); err == nil {
					v = uq
				}
				kv[m[1]] = v
			}
			at, err := time.Parse(time.RFC3339Nano, kv["time"])
			if err != nil {
				continue
			}
			e := soakLogEvent{at: at.Sub(start), rank: kv["rank"], what: kv["msg"], from: kv["from"], to: kv["to"]}
			if e.what == "parent answers again, going back to it" {
				e.what, e.to = "back to the parent", kv["parent"]
			} else {
				e.what = "failover"
			}
			e.cause = soakCause(kv["err"])
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

// soakCause shortens a transport error to its telling part.
func soakCause(err string) string {
	for _, k := range []string{"heartbeat timeout", "closed by peer", "connection refused", "connection reset", "deadline exceeded"} {
		if i := strings.Index(err, k); i >= 0 {
			if k == "heartbeat timeout" {
				return err[i:]
			}
			return k
		}
	}
	if len(err) > 80 {
		return err[:80] + "…"
	}
	return err
}

// backAfter finds the first return to the parent after a stop ended.
func (r *soakReport) backAfter(f soakFault) (time.Duration, bool) {
	for _, e := range r.events {
		if e.what == "back to the parent" && e.at >= f.until {
			return e.at, true
		}
	}
	return 0, false
}

// falseAlarms counts heartbeat-driven failovers not caused by the stop.
func (r *soakReport) falseAlarms() int {
	n := 0
	for _, e := range r.events {
		if e.what != "failover" || !strings.HasPrefix(e.cause, "heartbeat timeout") {
			continue
		}
		caused := false
		for _, f := range r.faults {
			if !f.killed && e.at >= f.at && e.at <= f.until+soakHeld {
				caused = true
			}
		}
		if !caused {
			n++
		}
	}
	return n
}

// heldUp says what a fault did to reads on other mounts.
func heldUp(row soakFaultRow) string {
	if row.stall == 0 {
		return fmt.Sprintf("no read on another mount was held up %v or more.", soakSlow)
	}
	return fmt.Sprintf("the longest read it held up on another mount took %v; the last one ended %v after the fault.",
		row.stall.Round(time.Millisecond), row.recovery.Round(time.Millisecond))
}

// otherBackendOps sums the filesystem operations of survivors other than
// the successor root (rank 1).
func (r *soakReport) otherBackendOps() int64 {
	var n int64
	for _, row := range r.nodes {
		if row.alive && row.rank != 1 {
			n += row.backend
		}
	}
	return n
}

func kinds(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(parts)
	return "(" + strings.Join(parts, ", ") + ")"
}

func orNone(s string) string {
	if s == "" {
		return "none over " + soakSlow.String()
	}
	return s
}
