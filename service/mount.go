package service

import (
	"fmt"
	"path/filepath"

	"github.com/hpc-copper/copper/config"
	cfuse "github.com/hpc-copper/copper/fuse"
	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/stalemount"
)

func (svc *Service) mount(s config.Settings, rank int, guard []string) error {
	if _, err := stalemount.Clean(s.Mount, svc.log); err != nil {
		return fmt.Errorf("rank %d: stale mount at %s: %w", rank, s.Mount, err)
	}
	// The job reads what it runs through this path: another user who
	// could swap a directory on it could serve the job their own files.
	if err := osutil.MkdirAllTrusted(s.Mount, 0o755, osutil.TrustSelf); err != nil {
		return fmt.Errorf("rank %d: mount directory %s: %w (mount in a directory only you and root can change, such as one of yours under /tmp or /dev/shm)", rank, s.Mount, err)
	}
	var large cfuse.ContentProvider // nil: direct, from this host
	if svc.chunks != nil {
		large = cfuse.ChunkedFiles{Source: svc.node, ChunkBytes: s.ChunkBytes, Opened: &svc.largeOpens, Splice: true, Logger: svc.log}
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
		DirectReads:     svc.directReads,
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
