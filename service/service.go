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

	// Now is the clock of the cache's negative TTL; nil → time.Now
	// (tests move it).
	Now func() time.Time

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
	// directReads counts the mount's large-file reads from the host;
	// made before the profiler and the mount, which both use it.
	directReads *cfuse.DirectReads
	ctl         *control.Server
	// prefetch warms the caches from the prefetch manifest; nil when off.
	prefetch       atomic.Pointer[prefetch.Prefetcher] // set once, after the mount; the control socket reads it
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
// guard their mounts). The stages run in order; a failed one stops what
// the earlier ones started.
func Start(ctx context.Context, tmpl config.Settings, id Identity, o Options) (_ *Service, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Started.IsZero() {
		o.Started = time.Now()
	}
	s, pos, err := settle(tmpl, id, o)
	if err != nil {
		return nil, err
	}
	log := o.Logger.With("rank", id.Rank)
	svc := &Service{Settings: s, Position: pos, log: log, started: o.Started, stopReq: make(chan struct{}),
		directReads: new(cfuse.DirectReads)}
	if o.Mount {
		svc.serving = make(chan struct{})
	}
	defer func() {
		if err != nil {
			_ = svc.Stop(context.Background())
		}
	}()
	guard := guardedMounts(tmpl, s, id)
	budget, err := s.CacheBudget()
	if err != nil {
		return nil, err
	}
	netCfg := cnet.Config{MaxFrame: s.FrameCap(), Token: id.Token, Logger: log, HeartbeatTimeout: s.HeartbeatTimeout()}
	if err := svc.newNode(id, o, budget, guard, netCfg); err != nil {
		return nil, err
	}
	if err := svc.serve(ctx, id, netCfg); err != nil {
		return nil, err
	}
	if o.Control {
		if err := svc.serveControl(ctx); err != nil {
			return nil, err
		}
	}
	if o.Mount {
		if err := svc.mountWhenReady(ctx, guard); err != nil {
			return nil, err
		}
	}
	if svc.profOn {
		svc.startSnapshots(s.ProfileSnapshotInterval())
	}
	if s.Prefetch != "" {
		if err := svc.startPrefetch(ctx, s, budget); err != nil {
			return nil, err
		}
	}
	return svc, nil
}

// settle checks the identity and returns the settings expanded and
// finished for this rank, and its place in the tree.
func settle(tmpl config.Settings, id Identity, o Options) (config.Settings, tree.Position, error) {
	if err := tree.ValidateBook(id.Book); err != nil {
		return config.Settings{}, tree.Position{}, err
	}
	// Peers authenticate both ways with the job token; a node without one
	// could neither prove itself nor tell an impostor parent from its own.
	if len(id.Token) < cnet.MinTokenLen {
		return config.Settings{}, tree.Position{}, fmt.Errorf("rank %d: job token of %d bytes: want at least %d (copper-node --token-file; copper-launch writes it)",
			id.Rank, len(id.Token), cnet.MinTokenLen)
	}
	s := tmpl
	if err := s.Expand(id.Rank); err != nil {
		return config.Settings{}, tree.Position{}, fmt.Errorf("rank %d: %w", id.Rank, err)
	}
	// Finish also applies Copper 1.0's implications (profile_top_n > 0,
	// profile_paths_full or a snapshot interval turn profile_metrics on).
	if err := s.Finish(); err != nil {
		return config.Settings{}, tree.Position{}, err
	}
	if s.ProfileMetrics && o.JobDir == "" {
		return config.Settings{}, tree.Position{}, fmt.Errorf("rank %d: profile_metrics needs the job directory (service.Options.JobDir)", id.Rank)
	}
	pos, err := tree.Locate(len(id.Book), s.Trees, s.Fanout, id.Rank)
	if err != nil {
		return config.Settings{}, tree.Position{}, err
	}
	return s, pos, nil
}

// newNode makes the cache, the profiler and the node over its way up:
// the backend on a tree's root, else the upstream of its ancestors.
func (svc *Service) newNode(id Identity, o Options, budget int64, guard []string, netCfg cnet.Config) error {
	s, pos, log := svc.Settings, svc.Position, svc.log
	svc.cache = cache.New(cache.Config{BudgetBytes: budget, NegativeTTL: s.NegativeTTL(), Now: o.Now})
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
	bcfg := backend.Config{
		Target:       s.Target,
		Parallel:     s.BackendParallel,
		MaxCacheable: s.MaxCacheableBytes,
		DirFiles:     s.DirFilesMaxBytes,
		Guard:        guard,
		Logger:       log,
	}
	var err error
	if pos.Parent < 0 {
		// Refuses a target that is not a directory, naming it.
		if svc.backend, err = backend.New(bcfg); err != nil {
			return fmt.Errorf("rank %d: %w", id.Rank, err)
		}
		log.Debug("backend", "target", s.Target, "resolve", svc.backend.Resolver())
		ncfg.Backend = svc.backend
	} else {
		dial := func(ctx context.Context, addr string) (node.Conn, error) {
			c, err := cnet.Dial(ctx, addr, netCfg)
			if errors.Is(err, cnet.ErrConnect) {
				return nil, fmt.Errorf("%w: %w", node.ErrNotListening, err)
			}
			return c, err
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
			return err
		}
		ncfg.Parent = svc.upstream
	}
	svc.node, err = node.New(ncfg)
	return err
}

// serve accepts peers' requests at this rank's endpoint: the node is
// registered.
func (svc *Service) serve(ctx context.Context, id Identity, netCfg cnet.Config) error {
	endpoint := id.Book[id.Rank].Endpoint
	var err error
	netCfg.Peek = svc.node.Peek // cache hits are answered on the connection's reader
	svc.server, err = cnet.Listen(ctx, endpoint, svc.node.Get, netCfg)
	if err != nil {
		return fmt.Errorf("rank %d: serve %s: %w", id.Rank, endpoint, err)
	}
	svc.node.MarkRegistered()
	return nil
}

// serveControl answers the mount's control socket.
func (svc *Service) serveControl(ctx context.Context) error {
	var err error
	if svc.ctl, err = control.Listen(svc.Settings.Mount, svc.log); err != nil {
		return err
	}
	go svc.ctl.Serve(context.WithoutCancel(ctx), svc.handleControl)
	return nil
}

// mountWhenReady mounts the view once the tree above can answer: the
// kernel's first request (a getattr of the mount root, sent while
// mounting) would otherwise wait on a parent that is not serving yet, and
// a mount that exists is taken by users as a mount that works.
func (svc *Service) mountWhenReady(ctx context.Context, guard []string) error {
	if err := svc.AwaitTreeReady(ctx); err != nil {
		return err
	}
	if err := svc.mount(svc.Settings, svc.Position.Rank, guard); err != nil {
		return err
	}
	close(svc.serving)
	return nil
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
	svc.prefetchCancel = cancel
	svc.prefetch.Store(p)
	go func() { _ = p.Run(pctx) }() // Run logs its outcome; Status shows it
	return nil
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
		if p := svc.prefetch.Load(); p != nil {
			// First: its requests would otherwise meet a closing node.
			svc.prefetchCancel()
			select {
			case <-p.Done():
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
		if svc.node != nil {
			svc.node.Stopping() // held readiness probes would delay the drain
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

// spillMemoryBytes bounds the chunks a node keeps in memory when its
// spill directory cannot be used: within the 64 MiB a node may use
// beyond its cache budget, with room for chunks in flight.
const spillMemoryBytes = 16 << 20
