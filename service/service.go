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
	"time"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/control"
	cfuse "github.com/hpc-copper/copper/fuse"
	cnet "github.com/hpc-copper/copper/net"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/tree"
)

// Identity is what the launcher hands a node: who it is among whom.
type Identity struct {
	Rank  int
	Book  []tree.Entry // rank r's endpoint is Book[r]
	Token []byte       // job secret for peer authentication; nil = none
}

// Options select what a Start brings up.
type Options struct {
	Mount   bool // serve FUSE at Settings.Mount (false for in-process clusters)
	Control bool // serve the control socket for the mount
	Logger  *slog.Logger
	Started time.Time // provider startup, origin of the timing lines
}

// Service is one running node.
type Service struct {
	Settings config.Settings
	Position tree.Position

	log      *slog.Logger
	node     *node.Node
	server   *cnet.Server
	upstream *node.Upstream
	mounted  *cfuse.Mounted
	ctl      *control.Server
	stopReq  chan struct{}
	stopOnce sync.Once
	stopErr  error
	stopped  sync.Once
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
	s := tmpl
	if err := s.Expand(id.Rank); err != nil {
		return nil, fmt.Errorf("rank %d: %w", id.Rank, err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	pos, err := tree.Locate(len(id.Book), s.Trees, s.Fanout, id.Rank)
	if err != nil {
		return nil, err
	}
	log := o.Logger.With("rank", id.Rank)
	svc := &Service{Settings: s, Position: pos, log: log, stopReq: make(chan struct{})}
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
	ncfg := node.Config{
		Rank:              id.Rank,
		Cache:             cache.New(cache.Config{BudgetBytes: budget, NegativeTTL: s.NegativeTTL()}),
		Logger:            log,
		Started:           o.Started,
		RPCTimeout:        s.RPCTimeout(),
		ReadyProbeInitial: s.ReadyProbeInitial(),
		ReadyProbeMax:     s.ReadyProbeMax(),
		ReadyTimeout:      s.ReadyTimeout(),
	}
	netCfg := cnet.Config{MaxFrame: s.FrameCap(), Token: id.Token, Logger: log}
	if pos.Parent < 0 {
		ncfg.Backend = backend.New(backend.Config{
			Target:       s.Target,
			Parallel:     s.BackendParallel,
			MaxCacheable: s.MaxCacheableBytes,
			Guard:        guard,
		})
	} else {
		addrs := make([]string, len(pos.Ancestors))
		for i, r := range pos.Ancestors {
			addrs[i] = id.Book[r].Endpoint
		}
		dial := func(ctx context.Context, addr string) (node.Conn, error) {
			return cnet.Dial(ctx, addr, netCfg)
		}
		svc.upstream, err = node.NewUpstream(addrs, dial, 30*time.Second, log)
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
	}
	return svc, nil
}

func (svc *Service) mount(s config.Settings, rank int, guard []string) error {
	if _, err := cfuse.CleanStale(s.Mount, svc.log); err != nil {
		return fmt.Errorf("rank %d: stale mount at %s: %w", rank, s.Mount, err)
	}
	if err := os.MkdirAll(s.Mount, 0o755); err != nil {
		return fmt.Errorf("rank %d: mount directory: %w", rank, err)
	}
	m, err := cfuse.Mount(svc.node, cfuse.Options{
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
	})
	if err != nil {
		return fmt.Errorf("rank %d: mount %s: %w", rank, s.Mount, err)
	}
	svc.mounted = m
	svc.log.Info("mounted", "mount", s.Mount, "target", s.Target)
	return nil
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
// ends), and closes everything. It is safe to call more than once.
func (svc *Service) Stop(ctx context.Context) error {
	svc.stopped.Do(func() {
		var errs []error
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
		if svc.ctl != nil {
			_ = svc.ctl.Close()
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
}

func (svc *Service) status() Status {
	st := Status{
		Mount:    svc.Settings.Mount,
		Target:   svc.Settings.Target,
		Endpoint: svc.server.Addr(),
		Parent:   svc.Position.Parent,
		Children: svc.Position.Children,
		Depth:    svc.Position.Depth,
		Tree:     svc.Position.Tree,
		PID:      os.Getpid(),
		Node:     svc.node.Stats(),
	}
	if svc.upstream != nil {
		st.Upstream = svc.upstream.Current()
	}
	return st
}

func (svc *Service) handleControl(ctx context.Context, req control.Request) (any, error) {
	switch req.Cmd {
	case "stats":
		return svc.status(), nil
	case "ready":
		return map[string]bool{"tree_ready": svc.node.TreeReady()}, nil
	case "wait":
		wctx, cancel := context.WithTimeout(ctx, svc.Settings.ReadyTimeout())
		defer cancel()
		if err := svc.node.WaitTreeReady(wctx); err != nil {
			return nil, err
		}
		return map[string]bool{"tree_ready": true}, nil
	case "stop":
		svc.stopOnce.Do(func() { close(svc.stopReq) })
		return map[string]bool{"stopping": true}, nil
	}
	return nil, fmt.Errorf("unknown command %q (want stats, ready, wait or stop)", req.Cmd)
}
