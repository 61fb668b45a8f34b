package pfsbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/service"
)

// copperTree is N running copper-node daemons on loopback.
type copperTree struct {
	r      *runner
	mounts []string
	pids   []int
	ready  time.Duration // from starting all nodes to the last one returning tree-ready
	starts []DaemonStart // each rank's start (the scale model's)
	policy string        // readiness: ReadyBackoff or ReadyHold, from the daemons' stats
}

var readyLine = regexp.MustCompile(`copper-node: ready rank=(\d+) mount=(\S+) tree_ready_ms=\d+ pid=(\d+)`)

func (r *runner) copperEnv() []string {
	return environ("XDG_RUNTIME_DIR="+r.runtimeDir, "COPPER_NODE_DAEMON=")
}

// freeEndpoints returns n loopback endpoints that were free a moment ago.
func freeEndpoints(n int) ([]string, error) {
	out := make([]string, n)
	// Hold every listener until all ports are chosen, or the kernel
	// hands out the same port twice.
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := range out {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free loopback port: %w", err)
		}
		lns = append(lns, ln)
		out[i] = ln.Addr().String()
	}
	return out, nil
}

// startCopper starts n nodes at once, as a job launcher does (children
// start before their parents serve and wait for them), serving target,
// and returns when every one is mounted and tree-ready. extra are more
// copper-node flags for every node.
func (r *runner) startCopper(ctx context.Context, n int, target, job string, extra ...string) (*copperTree, error) {
	eps, err := freeEndpoints(n)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, ep := range eps {
		fmt.Fprintf(&b, "localhost %s\n", ep)
	}
	book := filepath.Join(r.work, "book-"+job)
	if err := os.WriteFile(book, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	// Peers authenticate with a job token (copper-node requires one).
	token := filepath.Join(r.work, "token-"+job)
	secret := make([]byte, 32)
	rand.Read(secret) // crypto/rand.Read never fails (Go ≥ 1.24)
	if err := os.WriteFile(token, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		return nil, err
	}
	t := &copperTree{r: r, mounts: make([]string, n), pids: make([]int, n), starts: make([]DaemonStart, n)}
	for i := range n {
		t.mounts[i] = filepath.Join(r.copperMounts, strconv.Itoa(i))
		if err := os.MkdirAll(t.mounts[i], 0o755); err != nil {
			return nil, err
		}
	}
	r.cleanup.push("stop copper nodes", t.stop)
	args := func(rank int) []string {
		a := []string{"--book", book, "--rank", strconv.Itoa(rank), "--token-file", token, "--mount", t.mounts[rank],
			"--target", target, "--log-dir", r.logDir, "--job-id", job, "--log-level", "4", // info: the startup timing lines (a handful per node)
			"--cache-memory-bytes", strconv.Itoa(512 << 20), "--spill-dir", filepath.Join(r.work, "spill"),
			"--ready-timeout-s", "60", "--rpc-timeout-s", "60", "--stop-timeout", "10s"}
		return append(append(a, extra...), r.cfg.CopperFlags...)
	}
	errs, logs := make([]error, n), make([]string, n)
	var wg sync.WaitGroup
	start := time.Now()
	for rank := range n {
		wg.Go(func() {
			t.starts[rank] = DaemonStart{Rank: rank, SpawnS: time.Since(start).Seconds()}
			out, err := runBounded(ctx, r.cfg.StepTimeout, r.copperEnv(), filepath.Join(r.cfg.Bin, "copper-node"), args(rank)...)
			if err != nil {
				errs[rank] = fmt.Errorf("rank %d: %w", rank, err)
				return
			}
			m := readyLine.FindStringSubmatch(out.stdout)
			if m == nil {
				errs[rank] = fmt.Errorf("rank %d: no ready line in %q", rank, out.stdout)
				return
			}
			t.pids[rank], _ = strconv.Atoi(m[3])
			d := &t.starts[rank]
			d.ReturnedS, d.LauncherCPUS = time.Since(start).Seconds(), secs(out.cpu)
			run, wait := schedCPU(t.pids[rank])
			d.DaemonCPUS, d.DaemonWaitS = secs(run), secs(wait)
			if l := readyLogPath.FindStringSubmatch(out.stdout); l != nil {
				logs[rank] = l[1]
			}
		})
	}
	wg.Wait()
	t.ready = time.Since(start)
	for rank, l := range logs { // after the setup's time, which reading them must not delay
		if l != "" {
			t.starts[rank].fromLog(l, start)
		}
	}
	if err := firstErrors(errs, 2); err != nil {
		return nil, fmt.Errorf("start %d copper nodes: %w", n, err)
	}
	return t, nil
}

// firstErrors joins the first k errors and counts the rest: when every
// rank fails the same way, one message says it.
func firstErrors(errs []error, k int) error {
	var kept []error
	more := 0
	for _, err := range errs {
		switch {
		case err == nil:
		case len(kept) < k:
			kept = append(kept, err)
		default:
			more++
		}
	}
	if more > 0 {
		kept = append(kept, fmt.Errorf("and %d more", more))
	}
	return errors.Join(kept...)
}

// NodeMemory is one copper node's memory against its cache.
type NodeMemory struct {
	Rank       int   `json:"rank"`
	RSSBytes   int64 `json:"rss_bytes"`
	CacheBytes int64 `json:"cache_bytes"`
	// LimitBytes is the target: cache bytes × 1.2 + 40 MiB.
	LimitBytes int64 `json:"limit_bytes"`
}

// memoryLimit is the per-node memory target for a cache of this size.
func memoryLimit(cacheBytes int64) int64 { return cacheBytes*12/10 + 40<<20 }

// memory reads every node's RSS and cache size; with Config.HeapProfiles
// also each node's memory by class and heap profile, files named after
// label and the rank.
func (t *copperTree) memory(ctx context.Context, label string) ([]NodeMemory, error) {
	out := make([]NodeMemory, len(t.mounts))
	for rank, m := range t.mounts {
		res, err := runBounded(ctx, 30*time.Second, t.r.copperEnv(), filepath.Join(t.r.cfg.Bin, "copper-node"), "stats", "--mount", m, "--json")
		if err != nil {
			return nil, err
		}
		var st service.Status
		if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
			return nil, fmt.Errorf("copper-node stats --mount %s --json: %w", m, err)
		}
		t.readiness(rank, []byte(res.stdout))
		rss, err := rssBytes(st.PID)
		if err != nil {
			return nil, fmt.Errorf("rank %d pid %d: %w", rank, st.PID, err)
		}
		if d := t.r.cfg.HeapProfiles; d != "" {
			if err := t.heapProfile(ctx, m, filepath.Join(d, fmt.Sprintf("%s-rank%d", label, rank))); err != nil {
				return nil, err
			}
		}
		out[rank] = NodeMemory{Rank: rank, RSSBytes: rss, CacheBytes: st.Node.Cache.Bytes, LimitBytes: memoryLimit(st.Node.Cache.Bytes)}
	}
	return out, nil
}

// heapProfile writes what `copper-node memory` says of the node serving
// mount to base.json and its heap profile to base.pprof. It runs after
// the node's RSS was read: its GC must not lower that reading.
func (t *copperTree) heapProfile(ctx context.Context, mount, base string) error {
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return err
	}
	res, err := runBounded(ctx, 30*time.Second, t.r.copperEnv(), filepath.Join(t.r.cfg.Bin, "copper-node"),
		"memory", "--mount", mount, "--json", "--gc", "--heap-profile", base+".pprof")
	if err != nil {
		return err
	}
	return os.WriteFile(base+".json", []byte(res.stdout), 0o644)
}

// stop stops every node (they unmount and exit), kills any that remain
// and detaches what they left mounted.
func (t *copperTree) stop() error {
	var wg sync.WaitGroup
	errs := make([]error, len(t.mounts))
	for rank, m := range t.mounts {
		wg.Go(func() {
			_, err := runBounded(context.Background(), 30*time.Second, t.r.copperEnv(),
				filepath.Join(t.r.cfg.Bin, "copper-node"), "stop", "--mount", m, "--timeout", "20s")
			if t.pids[rank] != 0 { // a rank that never reported ready may not be running
				errs[rank] = err
			}
		})
	}
	wg.Wait()
	for rank, pid := range t.pids {
		if pid != 0 && !waitGone(pid, t.r.work, 5*time.Second) {
			errs = append(errs, fmt.Errorf("rank %d pid %d still alive after stop; killed", rank, pid))
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, t.r.work, 5*time.Second)
		}
	}
	if err := detachAll(t.r.copperMounts); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
