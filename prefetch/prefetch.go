// Package prefetch warms a node's caches from a manifest: a list of host
// paths, such as the used_paths_existing.txt that copper-report writes
// for an earlier run. Once its node is tree-ready, a Prefetcher asks the
// node, in the background, for every path as an application would
// (getattr; then readdir, readlink or the whole file), so the next job's
// first import finds everything cached on every node.
//
// Every request goes through the node's Get, like a FUSE request: it is
// coalesced with the application's own requests and, through the tree,
// with every other node's prefetch, so each path is still read from the
// backing filesystem once per tree. The manifest is streamed (constant
// memory), a fixed number of workers bound the requests in flight, and
// file data stops being fetched at Config.MaxBytes.
package prefetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/op"
)

// Source answers operations on view paths; *node.Node is one.
type Source interface {
	Get(ctx context.Context, o op.Op, path string) op.Result
}

// DefaultWorkers is how many manifest paths a node prefetches at once.
const DefaultWorkers = 16

// Config sets up a Prefetcher.
type Config struct {
	Manifest     string // host path of the manifest file (required)
	Target       string // absolute, clean host directory shown at the view's "/"
	MaxCacheable int64  // files larger than this are not read (the tree does not cache them)
	// MaxBytes bounds the file data prefetched, so that the prefetch does
	// not evict itself or crowd out the job; 0 = no bound.
	MaxBytes int64
	Workers  int // paths in flight; 0 = DefaultWorkers
	// Ready, when set, blocks until the node can serve (tree-ready); Run
	// reads nothing before it returns nil.
	Ready  func(ctx context.Context) error
	Logger *slog.Logger
}

// Prefetcher pulls one manifest's paths through a Source. Run it once.
type Prefetcher struct {
	src  Source
	cfg  Config
	log  *slog.Logger
	once sync.Once
	done chan struct{} // closed when Run returns

	total, settled              atomic.Int64
	files, dirs, links, other   atomic.Int64
	bytes, reserved             atomic.Int64
	missing, invalid, ancestors atomic.Int64
	outside, large, overBudget  atomic.Int64
	invalidLogged               atomic.Int64

	mu       sync.Mutex
	errnos   map[syscall.Errno]int64
	started  time.Time // zero until the manifest is open
	elapsed  time.Duration
	finished bool
	runErr   error
}

// maxInvalidLogged bounds the warnings about unusable manifest lines.
const maxInvalidLogged = 5

// New checks cfg. Nothing runs until Run.
func New(src Source, cfg Config) (*Prefetcher, error) {
	switch {
	case src == nil:
		return nil, errors.New("prefetch: no source")
	case cfg.Manifest == "":
		return nil, errors.New("prefetch: no manifest")
	case !filepath.IsAbs(cfg.Target) || filepath.Clean(cfg.Target) != cfg.Target:
		return nil, fmt.Errorf("prefetch %s: target %q is not an absolute, clean path", cfg.Manifest, cfg.Target)
	case cfg.Workers < 0:
		return nil, fmt.Errorf("prefetch %s: workers %d: want ≥ 0", cfg.Manifest, cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Prefetcher{src: src, cfg: cfg, log: cfg.Logger, done: make(chan struct{}), errnos: map[syscall.Errno]int64{}}, nil
}

// Run waits for Config.Ready, then prefetches every manifest path and
// returns when all are settled, or early when ctx ends (the paths in
// flight are abandoned, not counted). It logs a summary either way. The
// error says why the prefetch did not complete: the manifest could not
// be opened or read, the node never became ready, or ctx ended. A path
// that is missing or fails is counted in Stats, not returned.
func (p *Prefetcher) Run(ctx context.Context) error {
	err := errors.New("prefetch: Run called twice")
	p.once.Do(func() {
		err = p.run(ctx)
		p.finish(err)
	})
	return err
}

func (p *Prefetcher) run(ctx context.Context) error {
	if p.cfg.Ready != nil {
		if err := p.cfg.Ready(ctx); err != nil {
			return fmt.Errorf("prefetch %s: node not ready: %w", p.cfg.Manifest, err)
		}
	}
	f, err := os.Open(p.cfg.Manifest)
	if err != nil {
		return fmt.Errorf("prefetch: manifest: %w", err)
	}
	defer f.Close()
	p.mu.Lock()
	p.started = time.Now()
	p.mu.Unlock()
	p.log.Debug("prefetch started", "manifest", p.cfg.Manifest, "workers", p.cfg.Workers)

	tasks := make(chan task, p.cfg.Workers)
	var wg sync.WaitGroup
	for range p.cfg.Workers {
		wg.Go(func() {
			for t := range tasks {
				p.do(ctx, t)
			}
		})
	}
	feedErr := p.feed(ctx, f, tasks)
	close(tasks)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("prefetch %s: interrupted: %w", p.cfg.Manifest, err)
	}
	return feedErr
}

// task is one request for a worker: a manifest entry, or the getattr of
// a directory above one that the manifest does not list (a lookup of
// the entry through the mount walks every directory above it).
type task struct {
	path     string // view path
	ancestor bool
}

// feed streams the manifest into tasks, settling the lines that need no
// request (unusable, outside target) itself.
func (p *Prefetcher) feed(ctx context.Context, r io.Reader, tasks chan<- task) error {
	send := func(t task) bool {
		select {
		case tasks <- t:
			return true
		case <-ctx.Done():
			return false
		}
	}
	sc := NewScanner(r, p.cfg.Manifest)
	prev := "" // the last entry sent: the directories above it are done
	for sc.Scan() {
		e := sc.Entry()
		p.total.Add(1)
		if e.Err != nil {
			p.invalid.Add(1)
			p.settled.Add(1)
			if n := p.invalidLogged.Add(1); n <= maxInvalidLogged {
				p.log.Warn("prefetch: skipping manifest line", "err", e.Err)
			} else if n == maxInvalidLogged+1 {
				p.log.Warn("prefetch: further unusable manifest lines are only counted", "manifest", p.cfg.Manifest)
			}
			continue
		}
		view, ok := ViewPath(p.cfg.Target, e.Path)
		if !ok {
			p.outside.Add(1)
			p.settled.Add(1)
			continue
		}
		// A sorted manifest (report writes them sorted) lists a path's
		// directories just before it, so this rarely sends anything.
		for _, dir := range ancestors(view) {
			if prev != "" && op.Within(prev, dir) {
				continue
			}
			if !send(task{path: dir, ancestor: true}) {
				return ctx.Err()
			}
		}
		if !send(task{path: view}) {
			return ctx.Err()
		}
		prev = view
	}
	return sc.Err()
}

// ancestors lists the directories above a view path, "/" first.
func ancestors(view string) []string {
	var out []string
	for i := 0; i < len(view); i++ {
		if view[i] != '/' {
			continue
		}
		if i == 0 {
			if len(view) > 1 {
				out = append(out, "/")
			}
			continue
		}
		out = append(out, view[:i])
	}
	return out
}

func (p *Prefetcher) do(ctx context.Context, t task) {
	if ctx.Err() != nil {
		return // interrupted: drain the queue without asking
	}
	if t.ancestor {
		p.src.Get(ctx, op.Getattr, t.path)
		if ctx.Err() == nil {
			p.ancestors.Add(1)
		}
		return
	}
	p.entry(ctx, t.path)
}

// entry asks for one manifest path what a first use through the mount
// would: its attributes, then its listing, link target or content.
func (p *Prefetcher) entry(ctx context.Context, path string) {
	r := p.src.Get(ctx, op.Getattr, path)
	if ctx.Err() != nil {
		return
	}
	if r.Errno != 0 {
		p.fail(r.Errno)
		return
	}
	var errno syscall.Errno
	switch a := r.Attr; {
	case a.IsDir():
		if errno = p.src.Get(ctx, op.Readdir, path).Errno; errno == 0 {
			p.dirs.Add(1)
		}
	case a.IsSymlink():
		if errno = p.src.Get(ctx, op.Readlink, path).Errno; errno == 0 {
			p.links.Add(1)
		}
	case a.IsRegular():
		errno = p.file(ctx, path, a.Size)
	default: // fifos, sockets, devices: the attributes are all the view has
		p.other.Add(1)
	}
	if ctx.Err() != nil {
		return
	}
	if errno != 0 {
		p.fail(errno)
		return
	}
	p.settled.Add(1)
}

// file reads a regular file whole into the caches, unless it is too
// large to be cached or the data bound is reached.
func (p *Prefetcher) file(ctx context.Context, path string, size int64) syscall.Errno {
	if size > p.cfg.MaxCacheable {
		p.large.Add(1)
		return 0
	}
	if p.cfg.MaxBytes > 0 {
		if p.reserved.Add(size) > p.cfg.MaxBytes {
			p.reserved.Add(-size)
			p.overBudget.Add(1)
			return 0
		}
	}
	r := p.src.Get(ctx, op.Read, path)
	got := int64(len(r.Data))
	p.reserved.Add(got - size)
	switch r.Errno {
	case 0:
		p.files.Add(1)
		p.bytes.Add(got)
	case syscall.EFBIG: // it grew past the limit since its getattr
		p.large.Add(1)
		return 0
	}
	return r.Errno
}

// fail settles an entry that could not be prefetched.
func (p *Prefetcher) fail(errno syscall.Errno) {
	if errno == syscall.ENOENT {
		p.missing.Add(1)
	} else {
		p.mu.Lock()
		p.errnos[errno]++
		p.mu.Unlock()
	}
	p.settled.Add(1)
}

func (p *Prefetcher) finish(err error) {
	p.mu.Lock()
	p.finished = true
	p.runErr = err
	if !p.started.IsZero() {
		p.elapsed = time.Since(p.started)
	}
	p.mu.Unlock()
	st := p.Stats()
	switch {
	case err == nil:
		p.log.Info("prefetch finished", "summary", st.Summary())
	case errors.Is(err, context.Canceled):
		p.log.Info("prefetch stopped", "summary", st.Summary())
	default:
		p.log.Warn("prefetch failed", "summary", st.Summary())
	}
	close(p.done)
}

// Done is closed when Run has returned.
func (p *Prefetcher) Done() <-chan struct{} { return p.done }

// Wait blocks until Run has returned, then reports the final counters
// and Run's error; or until ctx ends.
func (p *Prefetcher) Wait(ctx context.Context) (Stats, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		err := p.runErr
		p.mu.Unlock()
		return p.Stats(), err
	case <-ctx.Done():
		return p.Stats(), fmt.Errorf("prefetch %s: still running: %w", p.cfg.Manifest, ctx.Err())
	}
}
