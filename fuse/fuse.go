// Package fuse is copper's kernel-facing surface: a read-only FUSE view
// that shows Options.Target at the mount root and answers every
// operation from a Source (the node: cache → parent → backend). Files
// larger than Options.MaxCacheable are the one exception: their content
// comes from a ContentProvider, by default straight from Target+path on
// this node, as Copper 1.0 does.
//
// Import it as cfuse; go-fuse's own package is also called fuse.
package fuse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/internal/stalemount"
	"github.com/hpc-copper/copper/op"
)

// Source answers one operation on one view path. The node implements it.
type Source interface {
	Get(ctx context.Context, o op.Op, path string) op.Result
}

// Options configure one mount.
type Options struct {
	Mount  string // mount (view) directory, must exist
	Target string // host directory shown at the mount root

	// MaxCacheable is the largest file whose content is fetched whole
	// through the Source; larger files go to LargeFiles.
	MaxCacheable int64

	// Kernel cache lifetimes. The view is read-only, so long values are
	// safe; zero disables that cache.
	EntryTimeout, AttrTimeout, NegativeTimeout time.Duration

	MaxRead      int // largest READ request in bytes; 0 = go-fuse default (128 KiB)
	MaxReadahead int // kernel readahead in bytes; 0 = kernel default
	AllowOther   bool

	// Guard lists extra host-path prefixes answered ENOENT (other copper
	// mounts). Mount itself is always guarded.
	Guard []string

	Logger *slog.Logger // nil: discard
	Debug  bool         // go-fuse request tracing, at debug level

	// OnIoctl sees every ioctl issued inside the mount (Copper 1.0's
	// control commands); nil ok.
	OnIoctl func(cmd uint32, viewPath string)
	// OnOp sees every FUSE operation copper handles; nil ok.
	OnOp func(name string, errno syscall.Errno, d time.Duration)

	// LargeFiles serves files larger than MaxCacheable; nil means
	// DirectFiles{Target, DirectReads}. A block cache can slot in here.
	LargeFiles ContentProvider
	// DirectReads counts the default LargeFiles' reads; nil: the mount
	// makes its own (Mounted.DirectReads).
	DirectReads *DirectReads

	// HandleOpens keeps open(2) and opendir reaching the view, as they
	// did before warm hits: every open checks the file's version (a
	// changed file answers ESTALE and the kernel retries unseen), and a
	// descriptor keeps its whole copy of a small file after its first
	// read. It costs an OPEN and a RELEASE per open file and directory.
	// Off (the default), the view answers the kernel's first OPEN and
	// OPENDIR with ENOSYS and the kernel answers every later open alone
	// (no-open): a warm open, read and close never reach the daemon.
	// The kernel sets no-open for the whole connection, so this is a
	// choice per mount. README "Consistency" says what each guarantees.
	HandleOpens bool
}

// rootIno is the inode number of the view root on every node. Children
// get hashed numbers that never take this value (see inodeNumber).
const rootIno = 1

// maxBackground lets more kernel readahead requests be in flight than
// go-fuse's default of 12; many processes load libraries at once.
const maxBackground = 64

// Mounted is a live mount.
type Mounted struct {
	server     *gofuse.Server
	fsys       *filesystem
	root       *node
	mountpoint string
	logger     *slog.Logger

	readahead int // the kernel's readahead window for this mount, bytes

	mu        sync.Mutex
	unmounted bool
}

// ReadaheadBytes returns the readahead window the kernel uses for this
// mount (max_readahead_bytes if it could be set, see raiseReadahead).
func (m *Mounted) ReadaheadBytes() int { return m.readahead }

// Mount validates opts, mounts the view at opts.Mount and serves it in
// the background until Unmount.
func Mount(src Source, opts Options) (*Mounted, error) {
	fsys, err := newFilesystem(src, opts)
	if err != nil {
		return nil, err
	}
	mountpoint := fsys.mount
	if err := checkMountpoint(mountpoint); err != nil {
		return nil, err
	}
	asRoot := os.Geteuid() == 0

	fsOpts := mountOptions(fsys, opts, asRoot)

	// fs.Mount, with the bridge wrapped (see rawView).
	root := &node{fs: fsys, path: "/"}
	raw := &rawView{RawFileSystem: fs.NewNodeFS(root, fsOpts), fs: fsys, hideRoot: hiddenRootBits(fsys, opts.AllowOther)}
	server, err := gofuse.NewServer(raw, mountpoint, &fsOpts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mount copper view of %s at %s: %w", fsys.target, mountpoint, err)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, fmt.Errorf("mount copper view of %s at %s: %w", fsys.target, mountpoint, err)
	}
	readahead := mountReadahead(fsys, mountpoint, opts)
	fsys.logger.Info("copper view mounted", "mount", mountpoint, "target", fsys.target,
		"guarded", fsys.guards, "direct_mount", asRoot, "readahead_bytes", readahead)
	return &Mounted{server: server, fsys: fsys, root: root, mountpoint: mountpoint, logger: fsys.logger,
		readahead: readahead}, nil
}

// mountOptions is go-fuse's configuration of the view: read-only,
// kernel caching of what never changes, and the timeouts of opts.
func mountOptions(fsys *filesystem, opts Options, asRoot bool) *fs.Options {
	entry, attr := max(opts.EntryTimeout, 0), max(opts.AttrTimeout, 0)
	fsOpts := &fs.Options{
		MountOptions: gofuse.MountOptions{
			FsName:     "copper",
			Name:       "copper",
			AllowOther: opts.AllowOther,
			// "ro" makes the kernel refuse mutations before they reach
			// us (the node methods still answer EROFS, defence in
			// depth) and makes the superblock read-only, without which
			// every read marks atime stale and the next stat sends a
			// GETATTR despite AttrTimeout; default_permissions makes the kernel check mode
			// bits from cached attributes instead of asking us, and
			// keeps allow_other from exposing 0600 files.
			Options: []string{"ro", "default_permissions"},
			// As root, mount(2) directly and keep its errno; others
			// go through fusermount3.
			DirectMountStrict: asRoot,
			DirectMountFlags:  syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV,
			// go-fuse derives max_read and MaxPages from MaxWrite (capped
			// at fs.fuse.max_pages_limit pages). Kernels with FUSE large
			// folios (after 6.18) size page-cache folios by the least of
			// the three; 6.18 keeps 4 KiB folios whatever they are
			// (pfsbench's folio census).
			MaxWrite:      opts.MaxRead,
			MaxReadAhead:  opts.MaxReadahead,
			MaxBackground: maxBackground,
			// A view inode never changes: a changed file is a new inode
			// (see stableAttrFor). Let the kernel keep symlink targets
			// and pages instead of invalidating them on every attribute
			// refresh.
			EnableSymlinkCaching:     true,
			ExplicitDataCacheControl: true,
			// READDIRPLUS: a listing gives the kernel every entry (no
			// LOOKUP follows) and lets the view push held small files
			// into its page cache (push.go); each entry's lookup is a
			// hit in the directory's dirplus.
			DisableReadDirPlus: false,
			// Without EnableLocks the kernel keeps flock/fcntl locks
			// locally: they succeed and still exclude each other
			// between processes on this node.
			EnableLocks: false,
			Debug:       opts.Debug,
			Logger:      slog.NewLogLogger(fsys.logger.Handler(), slog.LevelDebug),
		},
		EntryTimeout: &entry,
		AttrTimeout:  &attr,
		// Show modes exactly: go-fuse otherwise turns mode 0000 into
		// 0644, which default_permissions would then honour.
		NullPermissions: true,
		RootStableAttr:  &fs.StableAttr{Ino: rootIno},
		Logger:          slog.NewLogLogger(fsys.logger.Handler(), slog.LevelDebug),
	}
	if opts.NegativeTimeout > 0 {
		negative := opts.NegativeTimeout
		fsOpts.NegativeTimeout = &negative
	}
	return fsOpts
}

// mountReadahead raises the kernel's readahead window for the mounted
// view to opts.MaxReadahead where it can and returns the window in use.
func mountReadahead(fsys *filesystem, mountpoint string, opts Options) int {
	readahead := kernelReadaheadCap
	if opts.MaxReadahead > kernelReadaheadCap {
		// Not fatal: a view that cannot raise it reads in 128 KiB READs.
		var err error
		if readahead, err = raiseReadahead(mountpoint, opts.MaxReadahead); err != nil {
			// Not root is the usual case on a cluster: said once, not warned.
			level := slog.LevelWarn
			if errors.Is(err, os.ErrPermission) {
				level = slog.LevelInfo
			}
			fsys.logger.Log(context.Background(), level, "copper view keeps the kernel's readahead window", "mount", mountpoint, "err", err)
			readahead = max(readahead, kernelReadaheadCap)
		}
	} else if opts.MaxReadahead > 0 {
		readahead = opts.MaxReadahead
	}
	return readahead
}

// checkMountpoint gives a precise error for the usual failures before
// mount(2) or fusermount3 give a vague one.
func checkMountpoint(mountpoint string) error {
	var st syscall.Stat_t
	err := syscall.Stat(mountpoint, &st)
	switch {
	case err == syscall.ENOTCONN || err == syscall.ECONNABORTED:
		return fmt.Errorf("mount point %s: stale FUSE mount of a dead server (stalemount.Clean removes it): %w", mountpoint, err)
	case err != nil:
		return fmt.Errorf("mount point %s: %w", mountpoint, err)
	case st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
		return fmt.Errorf("mount point %s: %w", mountpoint, syscall.ENOTDIR)
	}
	return nil
}

// Mountpoint returns the absolute mount directory.
func (m *Mounted) Mountpoint() string { return m.mountpoint }

// Wait blocks until the kernel connection ends (after Unmount, or once
// the last user of a lazily unmounted view is gone).
func (m *Mounted) Wait() { m.server.Wait() }

// Unmount unmounts the view. When the mount is busy it falls back to a
// lazy unmount (the kernel detaches it now and finishes once its last
// user is gone). Calling it again is a no-op.
func (m *Mounted) Unmount() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unmounted {
		return nil
	}
	// Invalidations are quick kernel calls; let them finish while the
	// connection is still up, and start no more.
	m.fsys.notifyMu.Lock()
	m.fsys.notifyClosed = true
	m.fsys.notifyMu.Unlock()
	m.fsys.notifies.Wait()
	err := m.server.Unmount()
	if err == nil {
		m.unmounted = true
		return nil
	}
	if lazyErr := stalemount.Detach(m.mountpoint); lazyErr != nil {
		return fmt.Errorf("unmount %s: %w", m.mountpoint, errors.Join(err, lazyErr))
	}
	m.unmounted = true
	m.logger.Warn("copper view busy, unmounted lazily", "mount", m.mountpoint, "err", err)
	return nil
}

// filesystem is what every node of one mount shares.
type filesystem struct {
	src          Source
	mount        string
	target       string
	maxCacheable int64
	large        ContentProvider
	directReads  *DirectReads
	guards       []string // view paths answered ENOENT
	logger       *slog.Logger
	onIoctl      func(cmd uint32, viewPath string)
	onOp         func(name string, errno syscall.Errno, d time.Duration)
	handleOpens  bool // Options.HandleOpens

	drop dropper // the Source's cache, if it has one

	// Kernel invalidations in flight (see stale). notifyMu orders their
	// start before Unmount's wait: requests reach us through the kernel,
	// which gives the Go memory model no edge to Unmount's goroutine.
	notifyMu     sync.Mutex
	notifyClosed bool
	notifies     sync.WaitGroup

	// hostNewer maps view paths to hostView: files read directly whose
	// stat on this host is newer than the tree's. hostNewerCount spares
	// the lookups a map access while it is empty, as it nearly always is.
	hostNewer      sync.Map
	hostNewerCount atomic.Int64

	// pins bounds the large-file descriptors a no-open mount keeps.
	pins pinList

	held   HeldReader // the Source's, if it offers one
	pushes pushes     // held small files into the kernel's cache (push.go)

	// The version-change log, rate-limited apart for failed reads and
	// for changes the kernel's retry hides.
	staleWarnLog, staleInfoLog logLimit
}

func newFilesystem(src Source, opts Options) (*filesystem, error) {
	if src == nil {
		return nil, errors.New("copper fuse: nil Source")
	}
	if opts.Mount == "" || opts.Target == "" {
		return nil, fmt.Errorf("copper fuse: mount %q and target %q must both be set", opts.Mount, opts.Target)
	}
	if opts.MaxCacheable < 0 {
		return nil, fmt.Errorf("copper fuse: max cacheable %d is negative", opts.MaxCacheable)
	}
	mount, err := filepath.Abs(opts.Mount)
	if err != nil {
		return nil, fmt.Errorf("copper fuse: mount %q: %w", opts.Mount, err)
	}
	target, err := filepath.Abs(opts.Target)
	if err != nil {
		return nil, fmt.Errorf("copper fuse: target %q: %w", opts.Target, err)
	}
	guards, err := guardedViews(target, append([]string{mount}, opts.Guard...))
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	drop, _ := src.(dropper)
	held, _ := src.(HeldReader)
	reads := opts.DirectReads
	if reads == nil {
		reads = new(DirectReads)
	}
	large := opts.LargeFiles
	if large == nil {
		large = DirectFiles{Target: target, Reads: reads}
	}
	fsys := &filesystem{
		src:          uninterruptible{src},
		mount:        mount,
		target:       target,
		maxCacheable: opts.MaxCacheable,
		large:        large,
		directReads:  reads,
		guards:       guards,
		logger:       logger,
		onIoctl:      opts.OnIoctl,
		onOp:         opts.OnOp,
		handleOpens:  opts.HandleOpens,
		drop:         drop,
		held:         held,
	}
	fsys.pins.max = maxPinned
	fsys.pushes.recorder, _ = src.(PushRecorder)
	return fsys, nil
}

// observe reports one finished operation to the metrics hook and, when
// it failed, to the debug log: failures are normal traffic here (Python
// probes many missing paths), not errors of copper.
func (f *filesystem) observe(ctx context.Context, name, path string, start time.Time, errno syscall.Errno) syscall.Errno {
	if f.onOp != nil {
		f.onOp(name, errno, time.Since(start))
	}
	if errno != 0 && f.logger.Enabled(ctx, slog.LevelDebug) {
		f.logger.LogAttrs(ctx, slog.LevelDebug, "fuse op failed",
			slog.String("op", name), slog.String("path", path), slog.String("errno", errno.Error()))
	}
	return errno
}

// uninterruptible keeps kernel interrupts away from the Source. The kernel
// interrupts a FUSE request whenever the calling thread gets any signal,
// and Go programs get SIGURG all the time (goroutine preemption); honoring
// that would hand applications spurious EINTR from stat and open, which
// most C code and many tools do not retry. Every Source call ends on its
// own (answer, rpc_timeout_s, or failover), and a fatal signal still ends
// the caller in the kernel.
type uninterruptible struct{ src Source }

func (u uninterruptible) Get(ctx context.Context, o op.Op, path string) op.Result {
	return u.src.Get(context.WithoutCancel(ctx), o, path)
}
