// Package service wires one copper node process: its place in the tree,
// its cache, its way up (parent with failover) or down to the backing
// filesystem (root), its server for children, its FUSE mount and its
// control socket. copper-node is a thin main around Start and Stop.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/control"
	cfuse "github.com/hpc-copper/copper/fuse"
	cnet "github.com/hpc-copper/copper/net"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/prefetch"
	"github.com/hpc-copper/copper/profile"
	"github.com/hpc-copper/copper/rank"
	"github.com/hpc-copper/copper/spill"
	"github.com/hpc-copper/copper/tree"
)

// Identity is what the launcher hands a node: who it is among whom.
type Identity struct {
	Rank  int
	Book  []tree.Entry // rank r's endpoint is Book[r]
	Token []byte       // job secret peers authenticate with; at least cnet.MinTokenLen bytes
}

// Options select what a Start brings up.
type Options struct {
	Mount   bool // serve FUSE at Settings.Mount (false for in-process clusters)
	Control bool // serve the control socket for the mount
	Logger  *slog.Logger
	Started time.Time // provider startup, origin of the timing lines

	// JobDir is the job's output directory (<log_dir>/<job_id>):
	// profiling outputs and ioctl logs go below it. Required with
	// profile_metrics.
	JobDir string
}

// Service is one running node.
type Service struct {
	Settings config.Settings
	Position tree.Position

	log      *slog.Logger
	started  time.Time
	node     *node.Node
	cache    *cache.Cache
	prof     *profile.Collector
	profOn   bool          // profile_metrics: automatic snapshots and final outputs
	profStop chan struct{} // ends the snapshot timer
	profDone chan struct{} // closed when the snapshot timer has ended
	server   *cnet.Server
	backend  *backend.Backend // on a tree's root
	upstream *node.Upstream
	chunks   *spill.Store // large_files = chunked; nil otherwise
	mounted  *cfuse.Mounted
	ctl      *control.Server
	// prefetch warms the caches from the prefetch manifest; nil when off.
	prefetch       *prefetch.Prefetcher
	prefetchCancel context.CancelFunc
	largeOpens     atomic.Int64 // large files opened through the mount (chunked)
	stopReq        chan struct{}
	serving        chan struct{} // closed once the view is mounted; nil without Options.Mount
	stopOnce       sync.Once
	stopErr        error
	stopped        sync.Once
}

// Start brings a node up to registered (its server accepts requests) and,
// with Options.Mount, to tree-ready and mounted. Without Options.Mount,
// call AwaitTreeReady for readiness. s is as configured, before {rank} and $VAR
// expansion: Start expands it for this rank (and for co-located ranks, to
// guard their mounts).
func Start(ctx context.Context, tmpl config.Settings, id Identity, o Options) (_ *Service, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Started.IsZero() {
		o.Started = time.Now()
	}
	if err := tree.ValidateBook(id.Book); err != nil {
		return nil, err
	}
	// Peers authenticate both ways with the job token; a node without one
	// could neither prove itself nor tell an impostor parent from its own.
	if len(id.Token) < cnet.MinTokenLen {
		return nil, fmt.Errorf("rank %d: job token of %d bytes: want at least %d (copper-node --token-file; copper-launch writes it)",
			id.Rank, len(id.Token), cnet.MinTokenLen)
	}
	s := tmpl
	if err := s.Expand(id.Rank); err != nil {
		return nil, fmt.Errorf("rank %d: %w", id.Rank, err)
	}
	// Finish also applies Copper 1.0's implications (profile_top_n > 0,
	// profile_paths_full or a snapshot interval turn profile_metrics on).
	if err := s.Finish(); err != nil {
		return nil, err
	}
	pos, err := tree.Locate(len(id.Book), s.Trees, s.Fanout, id.Rank)
	if err != nil {
		return nil, err
	}
	log := o.Logger.With("rank", id.Rank)
	svc := &Service{Settings: s, Position: pos, log: log, started: o.Started, stopReq: make(chan struct{})}
	if o.Mount {
		svc.serving = make(chan struct{})
	}
	defer func() {
		if err != nil {
			_ = svc.Stop(context.Background())
		}
	}()

	if s.ProfileMetrics && o.JobDir == "" {
		return nil, fmt.Errorf("rank %d: profile_metrics needs the job directory (service.Options.JobDir)", id.Rank)
	}
	guard := guardedMounts(tmpl, s, id)
	budget, err := s.CacheBudget()
	if err != nil {
		return nil, err
	}
	svc.cache = cache.New(cache.Config{BudgetBytes: budget, NegativeTTL: s.NegativeTTL()})
	svc.prof = newCollector(svc, s, id.Rank, o)
	svc.profOn = s.ProfileMetrics // before the control socket can ask
	ncfg := node.Config{
		Rank:              id.Rank,
		Cache:             svc.cache,
		Logger:            log,
		Started:           o.Started,
		RPCTimeout:        s.RPCTimeout(),
		ReadyProbeInitial: s.ReadyProbeInitial(),
		ReadyProbeMax:     s.ReadyProbeMax(),
		ReadyTimeout:      s.ReadyTimeout(),
	}
	if svc.profOn {
		ncfg.Observe = svc.prof.Observe
	}
	if s.LargeFiles == "chunked" {
		svc.chunks = spill.Open(spill.Config{
			Dir:         s.SpillDir,
			BudgetBytes: s.SpillBudgetBytes,
			MemoryBytes: spillMemoryBytes,
			Logger:      log,
		})
		ncfg.Chunks, ncfg.ReadaheadChunks, ncfg.ChunkBytes = svc.chunks, s.ReadaheadChunks, s.ChunkBytes
		log.Debug("chunk store", "dir", svc.chunks.Dir(), "budget_bytes", s.SpillBudgetBytes, "chunk_bytes", s.ChunkBytes)
	}
	netCfg := cnet.Config{MaxFrame: s.FrameCap(), Token: id.Token, Logger: log, HeartbeatTimeout: s.HeartbeatTimeout()}
	bcfg := backend.Config{
		Target:       s.Target,
		Parallel:     s.BackendParallel,
		MaxCacheable: s.MaxCacheableBytes,
		Guard:        guard,
	}
	if pos.Parent < 0 {
		// Refuses a target that is not a directory, naming it.
		svc.backend, err = backend.New(bcfg)
		if err != nil {
			return nil, fmt.Errorf("rank %d: %w", id.Rank, err)
		}
		log.Debug("backend", "target", s.Target, "resolve", svc.backend.Resolver())
		ncfg.Backend = svc.backend
	} else {
		dial := func(ctx context.Context, addr string) (node.Conn, error) {
			return cnet.Dial(ctx, addr, netCfg)
		}
		svc.upstream, err = node.NewUpstreamHops(node.UpstreamConfig{
			Hops:         failoverHops(s, pos, id.Book, bcfg, log),
			Dial:         dial,
			RetryPrimary: parentRetry,
			DialTimeout:  dialTimeout(s),
			Heartbeats:   s.HeartbeatTimeout() > 0,
			Logger:       log,
		})
		if err != nil {
			return nil, err
		}
		ncfg.Parent = svc.upstream
	}
	if svc.node, err = node.New(ncfg); err != nil {
		return nil, err
	}

	endpoint := id.Book[id.Rank].Endpoint
	svc.server, err = cnet.Listen(ctx, endpoint, svc.node.Get, netCfg)
	if err != nil {
		return nil, fmt.Errorf("rank %d: serve %s: %w", id.Rank, endpoint, err)
	}
	svc.node.MarkRegistered()

	if o.Control {
		if svc.ctl, err = control.Listen(s.Mount, log); err != nil {
			return nil, err
		}
		go svc.ctl.Serve(context.WithoutCancel(ctx), svc.handleControl)
	}
	if o.Mount {
		// Mount only once the tree above can answer: the kernel's first
		// request (a getattr of the mount root, sent while mounting) would
		// otherwise wait on a parent that is not serving yet, and a mount
		// that exists is taken by users as a mount that works.
		if err := svc.AwaitTreeReady(ctx); err != nil {
			return nil, err
		}
		if err := svc.mount(s, id.Rank, guard); err != nil {
			return nil, err
		}
		close(svc.serving)
	}
	if svc.profOn {
		svc.startSnapshots(time.Duration(s.ProfileSnapshotInterval) * time.Second)
	}
	if s.Prefetch != "" {
		if err := svc.startPrefetch(ctx, s, budget); err != nil {
			return nil, err
		}
	}
	return svc, nil
}

// startPrefetch pulls the prefetch manifest's paths into the caches in
// the background, from the moment the node is tree-ready (with a mount,
// it already is) until done or Stop. It never delays Start: a manifest
// that cannot be read is reported in the status and the log, not as a
// failure to start.
func (svc *Service) startPrefetch(ctx context.Context, s config.Settings, budget int64) error {
	p, err := prefetch.New(svc.node, prefetch.Config{
		Manifest:     s.Prefetch,
		Target:       s.Target,
		MaxCacheable: s.MaxCacheableBytes,
		// Half the budget: the job's own misses must not evict what was
		// prefetched for it, nor the prefetch evict itself.
		MaxBytes: budget / 2,
		Ready:    svc.node.WaitTreeReady,
		Logger:   svc.log,
	})
	if err != nil {
		return fmt.Errorf("rank %d: %w", svc.Position.Rank, err)
	}
	// Start's ctx bounds starting only; the prefetch ends with Stop.
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	svc.prefetch, svc.prefetchCancel = p, cancel
	go func() { _ = p.Run(pctx) }() // Run logs its outcome; Status shows it
	return nil
}

// newCollector sets up the profiler. It always exists: the FUSE hooks
// feed it so that Copper 1.0's ioctl commands work; profile_metrics adds
// per-path tracking, timed snapshots and the final outputs.
func newCollector(svc *Service, s config.Settings, rnk int, o Options) *profile.Collector {
	host, _ := os.Hostname()
	return profile.New(profile.Config{
		JobDir:           o.JobDir,
		Host:             rank.ShortHost(host),
		PID:              os.Getpid(),
		Rank:             rnk,
		Root:             svc.Position.Parent < 0,
		TopN:             s.ProfileTopN,
		PathsFull:        s.ProfilePathsFull,
		SnapshotInterval: time.Duration(s.ProfileSnapshotInterval) * time.Second,
		MaxCacheable:     s.MaxCacheableBytes,
		NegativeTTL:      s.NegativeTTL(),
		Started:          o.Started,
		Logger:           svc.log,
		// svc.node is set before anything can ask (Start wires it next).
		Stats:      func() node.Stats { return svc.node.Stats() },
		ClearCache: svc.cache.Clear,
	})
}

// startSnapshots writes a runtime snapshot every interval until Stop;
// interval 0 writes none.
func (svc *Service) startSnapshots(interval time.Duration) {
	if interval <= 0 {
		return
	}
	svc.profStop, svc.profDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(svc.profDone)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-svc.profStop:
				return
			case <-tick.C:
				svc.snapshot(profile.TagRuntime)
			}
		}
	}()
}

// snapshot writes a profiling snapshot, logging instead of failing: a
// full disk must not stop the file system.
func (svc *Service) snapshot(tag string) {
	if err := svc.prof.Snapshot(tag); err != nil {
		svc.log.Warn("profiling snapshot failed", "tag", tag, "err", err)
		return
	}
	svc.log.Debug("profiling snapshot written", "tag", tag, "dir", svc.prof.ProfilingDir(tag))
}

// Profile is the node's profiler.
func (svc *Service) Profile() *profile.Collector { return svc.prof }

func (svc *Service) mount(s config.Settings, rank int, guard []string) error {
	if _, err := cfuse.CleanStale(s.Mount, svc.log); err != nil {
		return fmt.Errorf("rank %d: stale mount at %s: %w", rank, s.Mount, err)
	}
	if err := os.MkdirAll(s.Mount, 0o755); err != nil {
		return fmt.Errorf("rank %d: mount directory: %w", rank, err)
	}
	var large cfuse.ContentProvider // nil: direct, from this host
	if svc.chunks != nil {
		large = cfuse.ChunkedFiles{Source: svc.node, ChunkBytes: s.ChunkBytes, Opened: &svc.largeOpens}
	}
	m, err := cfuse.Mount(svc.node, cfuse.Options{
		LargeFiles:      large,
		Mount:           s.Mount,
		Target:          s.Target,
		MaxCacheable:    s.MaxCacheableBytes,
		EntryTimeout:    s.EntryTimeout(),
		AttrTimeout:     s.AttrTimeout(),
		NegativeTimeout: s.NegativeTimeout(),
		MaxRead:         s.MaxReadBytes,
		MaxReadahead:    s.MaxReadaheadB,
		AllowOther:      s.AllowOther,
		Guard:           guard,
		Logger:          svc.log,
		Debug:           s.LogLevel >= 5,
		OnOp:            svc.prof.OnOp,
		OnIoctl:         svc.onIoctl,
	})
	if err != nil {
		return fmt.Errorf("rank %d: mount %s: %w", rank, s.Mount, err)
	}
	svc.mounted = m
	svc.log.Info("mounted", "mount", s.Mount, "target", s.Target)
	return nil
}

// onIoctl carries out a Copper 1.0 ioctl command; the ioctl itself
// succeeds either way, as in Copper 1.0.
func (svc *Service) onIoctl(cmd uint32, viewPath string) {
	if err := svc.prof.Ioctl(cmd, viewPath); err != nil {
		svc.log.Warn("ioctl command failed", "cmd", cmd, "path", viewPath, "err", err)
	}
}

// guardedMounts lists the copper mounts on this host that the backend and
// the view must never enter: this node's own and, when several ranks share
// a host (--local, tests), theirs. A FUSE daemon that stats a copper mount
// waits on itself or on a node that waits on it.
func guardedMounts(tmpl, s config.Settings, id Identity) []string {
	guard := []string{filepath.Clean(s.Mount)}
	me := id.Book[id.Rank].Host
	for r, e := range id.Book {
		if r == id.Rank || e.Host != me {
			continue
		}
		other := tmpl
		if err := other.Expand(r); err == nil && other.Mount != s.Mount {
			guard = append(guard, filepath.Clean(other.Mount))
		}
	}
	return guard
}

// Node is the running node.
func (svc *Service) Node() *node.Node { return svc.node }

// Addr is the endpoint children reach this node at.
func (svc *Service) Addr() string { return svc.server.Addr() }

// AwaitTreeReady probes the parent until this node is tree-ready, within
// the readiness budget.
func (svc *Service) AwaitTreeReady(ctx context.Context) error {
	return svc.node.AwaitParent(ctx)
}

// StopRequested is closed when a control client asks the node to stop.
func (svc *Service) StopRequested() <-chan struct{} { return svc.stopReq }

// Stop unmounts, lets in-flight requests from children finish (until ctx
// ends), and closes everything. With profile_metrics it writes the
// pre-destroy snapshot first and the final outputs last. It is safe to
// call more than once.
func (svc *Service) Stop(ctx context.Context) error {
	svc.stopped.Do(func() {
		var errs []error
		if svc.prefetch != nil {
			// First: its requests would otherwise meet a closing node.
			svc.prefetchCancel()
			select {
			case <-svc.prefetch.Done():
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("prefetch still stopping: %w", ctx.Err()))
			}
		}
		if svc.profStop != nil {
			close(svc.profStop)
			<-svc.profDone
		}
		if svc.profOn {
			svc.snapshot(profile.TagPreDestroy)
		}
		if svc.mounted != nil {
			if err := svc.mounted.Unmount(); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", svc.Settings.Mount, err))
			}
		}
		if svc.server != nil {
			if err := svc.server.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("server shutdown: %w", err))
			}
		}
		if svc.upstream != nil {
			_ = svc.upstream.Close()
		}
		if svc.backend != nil {
			// After the server: an answer still running keeps the
			// target open until it ends.
			_ = svc.backend.Close()
		}
		if svc.ctl != nil {
			_ = svc.ctl.Close()
		}
		if svc.chunks != nil {
			// After the mount and the server: nothing reads chunks now.
			if err := svc.chunks.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if svc.profOn {
			if err := svc.prof.WriteFinal(); err != nil {
				errs = append(errs, fmt.Errorf("final profiling outputs: %w", err))
			}
		}
		svc.stopErr = errors.Join(errs...)
		svc.log.Info("stopped", "err", svc.stopErr)
	})
	return svc.stopErr
}

// Status is what `copper-node stats` shows.
type Status struct {
	Mount     string     `json:"mount"`
	Target    string     `json:"target"`
	Endpoint  string     `json:"endpoint"`
	Parent    int        `json:"parent"`
	Upstream  string     `json:"upstream,omitempty"`
	Children  []int      `json:"children"`
	Depth     int        `json:"depth"`
	Tree      int        `json:"tree"`
	PID       int        `json:"pid"`
	UptimeSec float64    `json:"uptime_s"`
	Node      node.Stats `json:"node"`
	// Profile is the per-FUSE-operation table, with profile_metrics.
	Profile []profile.OpRow `json:"profile,omitempty"`
	// Prefetch is the progress of the prefetch manifest, when set.
	Prefetch *prefetch.Stats `json:"prefetch,omitempty"`
	// LargeFiles says how files over max_cacheable_bytes are served.
	LargeFiles LargeFilesStatus `json:"large_files"`
}

// LargeFilesStatus is the large-file path of a node (the chunk counters
// are in Node.Chunks).
type LargeFilesStatus struct {
	Mode       string `json:"mode"` // chunked or direct
	ChunkBytes int64  `json:"chunk_bytes,omitempty"`
	// KernelPath is how the kernel serves warm large reads: "page_cache"
	// (no-open mount: the kernel keeps a file's pages across opens, so
	// warm reads and mmap never reach copper-node). FUSE passthrough is
	// not used; DESIGN.md says why.
	KernelPath string `json:"kernel_path"`
	// KernelOffersPassthrough is whether this mount's kernel offered
	// FUSE passthrough at mount time (unused either way).
	KernelOffersPassthrough bool  `json:"kernel_offers_passthrough"`
	Opened                  int64 `json:"opened"` // large files opened through the mount (chunked)
}

// LargeFiles is how this node serves files over max_cacheable_bytes.
func (svc *Service) LargeFiles() LargeFilesStatus {
	st := LargeFilesStatus{Mode: svc.Settings.LargeFiles, KernelPath: "page_cache", Opened: svc.largeOpens.Load()}
	if svc.chunks != nil {
		st.ChunkBytes = svc.Settings.ChunkBytes
	}
	if svc.mounted != nil {
		st.KernelOffersPassthrough = svc.mounted.KernelOffersPassthrough()
	}
	return st
}

// spillMemoryBytes bounds the chunks a node keeps in memory when its
// spill directory cannot be used: within the 64 MiB a node may use
// beyond its cache budget, with room for chunks in flight.
const spillMemoryBytes = 16 << 20

// PrefetchResult answers the "prefetch" control command.
type PrefetchResult struct {
	Enabled bool            `json:"enabled"` // the node has a prefetch manifest
	Stats   *prefetch.Stats `json:"stats,omitempty"`
}

// SnapshotResult answers the "snapshot" control command: where the
// files went.
type SnapshotResult struct {
	Profiling string `json:"profiling_dir"`
	Tables    string `json:"tables_dir"`
}

func (svc *Service) status() Status {
	st := Status{
		Mount:      svc.Settings.Mount,
		Target:     svc.Settings.Target,
		Endpoint:   svc.server.Addr(),
		Parent:     svc.Position.Parent,
		Children:   svc.Position.Children,
		Depth:      svc.Position.Depth,
		Tree:       svc.Position.Tree,
		PID:        os.Getpid(),
		UptimeSec:  time.Since(svc.started).Seconds(),
		Node:       svc.node.Stats(),
		LargeFiles: svc.LargeFiles(),
	}
	if svc.upstream != nil {
		st.Upstream = svc.upstream.Current()
	}
	if svc.profOn {
		st.Profile = svc.prof.Ops()
	}
	if svc.prefetch != nil {
		ps := svc.prefetch.Stats()
		st.Prefetch = &ps
	}
	return st
}

// WaitPrefetched blocks until the prefetch has finished (at once when
// there is none) and returns its final counters and the reason it did
// not complete, if any.
func (svc *Service) WaitPrefetched(ctx context.Context) (prefetch.Stats, error) {
	if svc.prefetch == nil {
		return prefetch.Stats{}, nil
	}
	return svc.prefetch.Wait(ctx)
}

// controlPrefetch answers "prefetch": the counters now, or with wait set
// the final ones once the prefetch has finished (within timeout, if
// given).
func (svc *Service) controlPrefetch(ctx context.Context, args map[string]string) (any, error) {
	if svc.prefetch == nil {
		return PrefetchResult{}, nil
	}
	if args["wait"] != "" {
		if t := args["timeout"]; t != "" {
			d, err := time.ParseDuration(t)
			if err != nil {
				return nil, fmt.Errorf("prefetch: timeout %q: %w", t, err)
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		// The run's own error is in the counters (Stats.Error).
		if st, err := svc.prefetch.Wait(ctx); !st.Finished {
			return nil, err
		}
	}
	st := svc.prefetch.Stats()
	return PrefetchResult{Enabled: true, Stats: &st}, nil
}

func (svc *Service) handleControl(ctx context.Context, req control.Request) (any, error) {
	switch req.Cmd {
	case "stats":
		return svc.status(), nil
	case "ready":
		return map[string]bool{"tree_ready": svc.node.TreeReady()}, nil
	case "wait":
		if err := svc.waitServing(ctx); err != nil {
			return nil, err
		}
		return map[string]bool{"tree_ready": true}, nil
	case "prefetch":
		return svc.controlPrefetch(ctx, req.Args)
	case "stop":
		svc.stopOnce.Do(func() { close(svc.stopReq) })
		return map[string]bool{"stopping": true}, nil
	case "snapshot":
		tag := req.Args["tag"]
		if tag == "" {
			tag = profile.TagIoctl
		}
		if err := svc.prof.Snapshot(tag); err != nil {
			return nil, err
		}
		return SnapshotResult{Profiling: svc.prof.ProfilingDir(tag), Tables: svc.prof.TablesDir(tag)}, nil
	}
	return nil, fmt.Errorf("unknown command %q (want stats, ready, wait, prefetch, stop or snapshot)", req.Cmd)
}

// waitServing blocks until the node serves: tree-ready and, when it
// mounts, mounted (the control socket is up before either), within the
// readiness budget (ready_timeout_s = 0: no limit).
func (svc *Service) waitServing(ctx context.Context) error {
	if d := svc.Settings.ReadyTimeout(); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if err := svc.node.WaitTreeReady(ctx); err != nil {
		return err
	}
	if svc.serving == nil {
		return nil
	}
	select {
	case <-svc.serving:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rank %d tree-ready but not mounted yet: %w", svc.node.Stats().Rank, ctx.Err())
	}
}
