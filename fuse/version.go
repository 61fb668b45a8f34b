package fuse

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/hanwen/go-fuse/v2/fs"

	"github.com/hpc-copper/copper/op"
)

// version is one state of a file's content as its stat shows it. Two
// stats with the same version have the same bytes, as far as any stat
// can tell: a write moves mtime and ctime, a rename over or a delete and
// re-create changes ino or ctime, and ctime cannot be set back by a user
// (mtime can, with utimes). A metadata-only change (chmod, a new or
// removed hard link) also moves ctime: it makes a new version although
// the bytes are the same, which costs one refetch and never a wrong byte.
type version struct {
	dev, ino               uint64
	size, mtimeNs, ctimeNs int64
}

func versionOf(a op.Attr) version {
	return version{dev: a.Dev, ino: a.Ino, size: a.Size, mtimeNs: a.MtimeNs, ctimeNs: a.CtimeNs}
}

func versionOfStat(st *syscall.Stat_t) version { return versionOf(op.AttrFromStat(st)) }

// sameBytes reports whether two stats show the same content. st_dev is
// left out: it numbers a mount on one host (a parallel file system can
// have another number on every node, which matters for direct reads),
// while the rest comes from the file system itself. st_dev still
// separates view inodes (stableAttrFor).
func (v version) sameBytes(w version) bool {
	return v.ino == w.ino && v.size == w.size && v.mtimeNs == w.mtimeNs && v.ctimeNs == w.ctimeNs
}

func (v version) String() string {
	return fmt.Sprintf("dev=%d ino=%d size=%d mtime=%s ctime=%s", v.dev, v.ino, v.size,
		time.Unix(0, v.mtimeNs).UTC().Format(time.RFC3339Nano), time.Unix(0, v.ctimeNs).UTC().Format(time.RFC3339Nano))
}

// stableAttrFor is the identity of the view inode for a at viewPath.
//
// Ino, the number stat shows, stays the source's (dev, ino) hash: hard
// links share it, as on the source, and listings can number entries
// without a stat. Gen makes the identity: go-fuse keeps one Inode, and
// the kernel one inode, per (Mode, Ino, Gen). For files, symlinks and
// the rest it hashes the view path and the version, so a changed or
// replaced file, a reused inode number and each name of a hard link are
// inodes of their own; the kernel never serves one's cached pages or
// attributes for another. Directories hash the path only: their mtime
// moves whenever an entry changes, and a new directory inode would make
// the kernel drop the dentries of everything below it and strand the
// working directories inside it. A directory replaced by another one has
// a new ino and so a new identity anyway.
func stableAttrFor(a op.Attr, viewPath string) fs.StableAttr {
	mode := a.Mode & syscall.S_IFMT
	h := xxhash.New()
	_, _ = h.WriteString(viewPath)
	if mode != syscall.S_IFDIR {
		v := versionOf(a)
		var b [40]byte
		binary.LittleEndian.PutUint64(b[0:], v.dev)
		binary.LittleEndian.PutUint64(b[8:], v.ino)
		binary.LittleEndian.PutUint64(b[16:], uint64(v.size))
		binary.LittleEndian.PutUint64(b[24:], uint64(v.mtimeNs))
		binary.LittleEndian.PutUint64(b[32:], uint64(v.ctimeNs))
		_, _ = h.Write(b[:])
	}
	return fs.StableAttr{Mode: mode, Ino: inodeFor(a, viewPath), Gen: h.Sum64()}
}

// staleLogInterval bounds the version-change log to one line per
// interval per mount: a job that replaces a tree under a live view
// would otherwise log once per file and process.
const staleLogInterval = time.Second

// dropper is what a caching Source offers to forget one path (node.Node
// does); Sources without a cache need not.
type dropper interface{ Drop(path string) }

// staleAt says where a version change was found.
type staleAt uint8

const (
	atGetattr    staleAt = iota + 1 // the path shows another file; the inode keeps its stat
	atOpen                          // the same, at open: ESTALE, the kernel retries unseen
	atOpenDirect                    // the host file is newer than the Source's stat: ESTALE
	atRead                          // fetched bytes are of another version: EIO
	atReadDirect                    // the same, found by the large-file provider: EIO
)

func (at staleAt) String() string {
	switch at {
	case atGetattr:
		return opGetattr
	case atOpen:
		return opOpen
	case atOpenDirect:
		return "open_direct"
	case atReadDirect:
		return "read_direct"
	}
	return opRead
}

// level is Warn where a read fails, Info where nothing fails or the
// kernel retries unseen.
func (at staleAt) level() slog.Level {
	if at == atRead || at == atReadDirect {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// drop reports whether the Source's cached entries for the path disagree
// with the file (an old stat, or bytes of another version than the stat).
func (at staleAt) drop() bool { return at != atGetattr && at != atOpen }

// direct reports whether the large-file provider found the change: the
// file on this host is another version than the Source's stat.
func (at staleAt) direct() bool { return at == atOpenDirect || at == atReadDirect }

// stale handles a view inode whose file is no longer the version the
// inode was made for: what was found instead is got (nil: unknown, or
// the errno in gotErrno). It logs (rate-limited), drops the Source's
// cached entries for the path when they disagree with the file, so the
// next lookup sees one whole version, and asks the kernel to forget the
// name, so that the next lookup makes a new inode. The caller answers
// its request with EIO or ESTALE.
//
// A failed read (at.level() Warn) has the kernel forget the name before
// the read returns: on a no-open mount nothing else would stop the
// application's next open() from finding the same inode, whose reads
// fail. Only READ handlers find those, and none holds a lock a lookup
// in the directory could wait for. Every other case asks from another
// goroutine: the kernel takes the directory's lock for the
// invalidation, and a request that holds it (a lookup) may wait for
// this very answer.
func (f *filesystem) stale(ctx context.Context, n *node, at staleAt, got *version, gotErrno syscall.Errno) {
	f.logStale(ctx, n, at, got, gotErrno)
	if at.drop() && f.drop != nil {
		f.drop.Drop(n.path)
	}
	if at.direct() {
		f.noteHostNewer(n)
	}
	if !n.invalidated.CompareAndSwap(false, true) {
		return
	}
	name, parent := n.Parent()
	if parent == nil {
		return // the name already leads elsewhere (or nowhere)
	}
	f.notifyMu.Lock()
	if f.notifyClosed {
		f.notifyMu.Unlock()
		return // unmounting: the kernel drops its entries anyway
	}
	f.notifies.Add(1)
	f.notifyMu.Unlock()
	notify := func() {
		defer f.notifies.Done()
		if errno := parent.NotifyEntry(name); errno != 0 && errno != syscall.ENOENT {
			f.logger.Debug("invalidating a changed file's entry failed", "path", n.path, "errno", errno.Error())
		}
	}
	if at.level() >= slog.LevelWarn {
		notify()
		return
	}
	go notify()
}

func (f *filesystem) logStale(ctx context.Context, n *node, at staleAt, got *version, gotErrno syscall.Errno) {
	if !f.logger.Enabled(ctx, at.level()) {
		return
	}
	limit := &f.staleInfoLog
	if at.level() >= slog.LevelWarn {
		limit = &f.staleWarnLog
	}
	suppressed, ok := limit.allow(time.Now())
	if !ok {
		return
	}

	found := "unknown"
	switch {
	case got != nil:
		found = got.String()
	case gotErrno == syscall.ESTALE:
		found = f.hostVersion(n.path)
	case gotErrno != 0:
		found = "errno " + gotErrno.Error()
	}
	msg := "file changed on the backing file system: the view serves no other version's bytes"
	if at.level() >= slog.LevelWarn {
		msg += "; the read fails with EIO and the next open sees the new version"
	}
	f.logger.LogAttrs(ctx, at.level(), msg,
		slog.String("path", n.path), slog.String("at", at.String()),
		slog.String("view_version", versionOf(n.attr).String()), slog.String("found", found),
		slog.Uint64("suppressed_since_last", suppressed))
}

// goneErrno reports whether a Source's errno for a file the view holds
// means the file at that path is not the one the view holds anymore.
func goneErrno(errno syscall.Errno) bool {
	switch errno {
	case syscall.ENOENT, syscall.ENOTDIR, syscall.ELOOP, syscall.EISDIR, syscall.ESTALE:
		return true
	}
	return false
}

// logLimit lets one log line through per staleLogInterval and counts
// the ones it holds back.
type logLimit struct {
	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

// allow reports whether a line may be logged at now and how many were
// held back since the last one.
func (l *logLimit) allow(now time.Time) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < staleLogInterval {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}

// hostVersion describes the file at viewPath on this host, for the log
// line of a direct read that found another version (the provider says
// only ESTALE). It costs an lstat of the backing file system, at most
// once per log line.
func (f *filesystem) hostVersion(viewPath string) string {
	if _, direct := f.large.(DirectFiles); !direct {
		return "another version (large-file provider)"
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(f.target, viewPath), &st); err != nil {
		return "on this host: " + err.Error()
	}
	return "on this host: " + versionOfStat(&st).String()
}

// hostView marks a file read directly (over MaxCacheable) whose stat on
// this host stands in for the tree's older stat of it.
type hostView struct {
	tree version // the tree's stat it replaces
}

// noteHostNewer records that n's path is newer on this host than n's
// (the tree's) stat, after the large-file provider found so. The bytes
// of such a file come from this host, so its stat is the one to show:
// below the root, the nodes above may keep the old stat for the whole
// job, and the file could not be opened at all. The record holds while
// the tree still reports the stat it replaces.
func (f *filesystem) noteHostNewer(n *node) {
	if _, direct := f.large.(DirectFiles); !direct {
		return
	}
	if _, known := f.hostNewer.Swap(n.path, hostView{tree: versionOf(n.attr)}); !known {
		f.hostNewerCount.Add(1)
	}
}

// hostAdjusted returns the Source's Getattr answer r for path, or this
// host's stat where noteHostNewer marked r's stat as replaced. The host is
// stat'ed at each use, not once: a stat taken while a writer was midway
// (truncated, not yet rewritten) would otherwise stand for the file for
// good — an empty file sends no READ that could find it changed again.
func (f *filesystem) hostAdjusted(path string, r op.Result) op.Result {
	if r.Errno != 0 || f.hostNewerCount.Load() == 0 {
		return r
	}
	v, ok := f.hostNewer.Load(path)
	if !ok {
		return r
	}
	hv := v.(hostView)
	if !versionOf(r.Attr).sameBytes(hv.tree) {
		// The tree moved on and knows better now.
		if f.hostNewer.CompareAndDelete(path, v) {
			f.hostNewerCount.Add(-1)
		}
		return r
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(f.target, path), &st); err != nil {
		if errno := errnoOf(err); goneErrno(errno) {
			return op.Fail(errno)
		}
		return r
	}
	a := op.AttrFromStat(&st)
	a.Dev = hv.tree.dev // keeps the view's inode numbers those of the tree
	return op.Result{Attr: a}
}
