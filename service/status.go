package service

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hpc-copper/copper/control"
	cfuse "github.com/hpc-copper/copper/fuse"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/prefetch"
	"github.com/hpc-copper/copper/profile"
)

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
	// DirectReads counts the files over max_cacheable_bytes this node
	// read straight from the target: in no node counter.
	DirectReads cfuse.DirectReadStats `json:"direct_reads"`
	// Profile is the per-FUSE-operation table, with profile_metrics.
	Profile []profile.OpRow `json:"profile,omitempty"`
	// Prefetch is the progress of the prefetch manifest, when set.
	Prefetch *prefetch.Stats `json:"prefetch,omitempty"`
	// LargeFiles says how files over max_cacheable_bytes are served.
	LargeFiles LargeFilesStatus `json:"large_files"`
	// FuseCalls counts the FUSE requests the view handled, by operation
	// (with or without profile_metrics; Profile has the details).
	FuseCalls map[string]int64 `json:"fuse_calls"`
	// KernelPushes counts the small files the view stored in the
	// kernel's page cache after a READDIRPLUS listed them (no READ
	// follows for them).
	KernelPushes cfuse.PushStats `json:"kernel_pushes"`
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
	KernelOffersPassthrough bool `json:"kernel_offers_passthrough"`
	// ReadaheadBytes is the kernel's readahead window for this mount:
	// max_readahead_bytes once copper-node could set it (root), else the
	// kernel's 128 KiB.
	ReadaheadBytes int   `json:"readahead_bytes"`
	Opened         int64 `json:"opened"` // large files opened through the mount (chunked)
}

// LargeFiles is how this node serves files over max_cacheable_bytes.
func (svc *Service) LargeFiles() LargeFilesStatus {
	st := LargeFilesStatus{Mode: svc.Settings.LargeFiles, KernelPath: "page_cache", Opened: svc.largeOpens.Load()}
	if svc.chunks != nil {
		st.ChunkBytes = svc.Settings.ChunkBytes
	}
	if m := svc.view(); m != nil {
		st.KernelOffersPassthrough = m.KernelOffersPassthrough()
		st.ReadaheadBytes = m.ReadaheadBytes()
	}
	return st
}

// view returns the mounted view, nil before Start has mounted it: the
// control socket answers while Start still waits for the tree, and the
// close of serving orders Start's write of svc.mounted before this read.
func (svc *Service) view() *cfuse.Mounted {
	if svc.serving == nil {
		return nil
	}
	select {
	case <-svc.serving:
		return svc.mounted
	default:
		return nil
	}
}

// KernelPushes counts the small files this node's view stored in the
// kernel's page cache after listing their directory (zero before it
// mounts).
func (svc *Service) KernelPushes() cfuse.PushStats {
	m := svc.view()
	if m == nil {
		return cfuse.PushStats{}
	}
	return m.PushStats()
}

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
		Mount:     svc.Settings.Mount,
		Target:    svc.Settings.Target,
		Endpoint:  svc.server.Addr(),
		Parent:    svc.Position.Parent,
		Children:  svc.Position.Children,
		Depth:     svc.Position.Depth,
		Tree:      svc.Position.Tree,
		PID:       os.Getpid(),
		UptimeSec: time.Since(svc.started).Seconds(),
		Node:      svc.node.Stats(),
		// The per-file list goes to the profile, not to stats.
		DirectReads: svc.directReads.Stats(),
		LargeFiles:  svc.LargeFiles(),
	}
	st.KernelPushes = svc.KernelPushes()
	if svc.upstream != nil {
		st.Upstream = svc.upstream.Current()
	}
	rows := svc.prof.Ops()
	st.FuseCalls = make(map[string]int64, len(rows))
	for _, r := range rows {
		if r.Calls > 0 {
			st.FuseCalls[r.Op] = r.Calls
		}
	}
	if svc.profOn {
		st.Profile = rows
	}
	if p := svc.prefetch.Load(); p != nil {
		ps := p.Stats()
		st.Prefetch = &ps
	}
	return st
}

// controlPrefetch answers "prefetch": the counters now, or with wait set
// the final ones once the prefetch has finished (within timeout, if
// given).
func (svc *Service) controlPrefetch(ctx context.Context, args map[string]string) (any, error) {
	p := svc.prefetch.Load()
	if p == nil {
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
		if st, err := p.Wait(ctx); !st.Finished {
			return nil, err
		}
	}
	st := p.Stats()
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
	case "memory":
		return svc.controlMemory(req)
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
	return nil, fmt.Errorf("unknown command %q (want stats, ready, wait, prefetch, memory, stop or snapshot)", req.Cmd)
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
