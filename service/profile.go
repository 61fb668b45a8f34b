package service

import (
	"os"
	"time"

	"github.com/hpc-copper/copper/config"
	cfuse "github.com/hpc-copper/copper/fuse"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/profile"
	"github.com/hpc-copper/copper/rank"
)

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
		Target:           s.Target,
		Mount:            s.Mount,
		TopN:             s.ProfileTopN,
		PathsFull:        s.ProfilePathsFull,
		SnapshotInterval: time.Duration(s.ProfileSnapshotIntervalS) * time.Second,
		MaxCacheable:     s.MaxCacheableBytes,
		NegativeTTL:      s.NegativeTTL(),
		Started:          o.Started,
		Logger:           svc.log,
		// svc.node is set before anything can ask (Start wires it next).
		Stats:      func() node.Stats { return svc.node.Stats() },
		ClearCache: svc.clearCaches,
		LargeReads: func() profile.LargeReads { return largeReads(svc.directReads.Stats()) },
	})
}

// largeReads is the profile's copy of the mount's direct-read counters.
func largeReads(st cfuse.DirectReadStats) profile.LargeReads {
	out := profile.LargeReads{Files: st.Files, Opens: st.Opens, Bytes: st.Bytes, Dropped: st.Dropped,
		List: make([]profile.LargeFile, len(st.List))}
	for i, f := range st.List {
		out.List[i] = profile.LargeFile{Path: f.Path, Size: f.Size, Opens: f.Opens, Bytes: f.Bytes}
	}
	return out
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

// clearCaches is Copper 1.0's clear-cache command (ioctl 100): the
// cache, and the chunks the chunk store keeps in memory (all of them when
// its spill directory is unusable, the hot ones otherwise; chunk files on
// disk stay: see spill.DropMemory).
func (svc *Service) clearCaches() {
	svc.cache.Clear()
	if svc.chunks != nil {
		svc.chunks.DropMemory()
	}
}
