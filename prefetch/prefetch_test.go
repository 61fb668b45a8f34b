package prefetch_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/cache"
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/prefetch"
)

// unitMaxCacheable is max_cacheable_bytes for the unit fixtures.
const unitMaxCacheable = 4096

// rootNode is a tree's root serving target from this process.
func rootNode(t *testing.T, target string) (*node.Node, *backend.Backend) {
	t.Helper()
	be, err := backend.New(backend.Config{Target: target, Parallel: 4, MaxCacheable: unitMaxCacheable})
	require.NoError(t, err)
	t.Cleanup(func() { _ = be.Close() })
	n, err := node.New(node.Config{
		Cache:   cache.New(cache.Config{BudgetBytes: 64 << 20, NegativeTTL: time.Hour}),
		Backend: be,
	})
	require.NoError(t, err)
	n.MarkRegistered()
	return n, be
}

// backendOps counts the backend operations of each type so far.
func backendOps(be *backend.Backend) map[op.Op]int64 {
	out := map[op.Op]int64{}
	for _, o := range []op.Op{op.Getattr, op.Readdir, op.Readlink, op.Read, op.DirPlus} {
		out[o] = be.Ops(o)
	}
	return out
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte{'x'}, size), 0o644))
}

func writeManifest(t *testing.T, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "used_paths_existing.txt")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return path
}

// unitTree is a small source with one entry of every kind and a manifest
// naming each, with the outcome each must get.
func unitTree(t *testing.T) (target, manifest string) {
	t.Helper()
	target = filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "dir", "sub"), 0o755))
	writeFile(t, filepath.Join(target, "dir", "a.py"), 1000)
	writeFile(t, filepath.Join(target, "dir", "b.txt"), 1000)
	writeFile(t, filepath.Join(target, "dir", "odd\nname.py"), 1000)
	writeFile(t, filepath.Join(target, "file.txt"), 10)
	writeFile(t, filepath.Join(target, "big.bin"), unitMaxCacheable+1)
	require.NoError(t, os.Symlink("dir/a.py", filepath.Join(target, "link")))
	require.NoError(t, os.Symlink("/nonexistent/x", filepath.Join(target, "dangling")))
	require.NoError(t, os.Symlink("loop", filepath.Join(target, "loop")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(target, "fifo"), 0o644))

	h := func(rel string) string { return filepath.Join(target, rel) }
	manifest = writeManifest(t, []string{
		"# used paths of an earlier run",
		target,                                  // dir "/"
		h("big.bin"),                            // too large: attributes only
		h("dangling"),                           // link
		h("dir"),                                // dir
		h("dir/a.py"),                           // file
		h("dir/b.txt"),                          // file
		strconv.Quote(h("dir/odd\nname.py")),    // file, quoted as report writes it
		h("dir/sub"),                            // dir
		h("fifo"),                               // other
		h("file.txt/child"),                     // ENOTDIR
		h("gone.py"),                            // missing
		h("link"),                               // link
		h("loop/x"),                             // ELOOP
		h("nonexistent/x"),                      // missing: the dangling link's target, under a directory that does not exist
		h(strings.Repeat("n", op.MaxNameLen+1)), // ENAMETOOLONG
		"",
		"relative/path.py", // invalid
		"/elsewhere/x.py",  // outside target
	})
	return target, manifest
}

// wantUnit is what unitTree's manifest must give.
var wantUnit = prefetch.Stats{
	Total: 17, Done: 17,
	Files: 3, Dirs: 3, Links: 2, Other: 1, Bytes: 3000,
	Missing:              2,
	Errors:               map[string]int64{"ENOTDIR": 1, "ELOOP": 1, "ENAMETOOLONG": 1},
	Invalid:              1,
	SkippedOutsideTarget: 1,
	SkippedLarge:         1,
	Started:              true,
	Finished:             true,
}

// comparable drops what differs from run to run.
func comparable(st prefetch.Stats) prefetch.Stats {
	st.Manifest, st.ElapsedSec, st.Ancestors = "", 0, 0
	return st
}

func TestRunCountsEveryOutcome(t *testing.T) {
	target, manifest := unitTree(t)
	n, be := rootNode(t, target)
	var logs bytes.Buffer
	p, err := prefetch.New(n, prefetch.Config{
		Manifest: manifest, Target: target, MaxCacheable: unitMaxCacheable,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	require.NoError(t, err)
	require.NoError(t, p.Run(t.Context()))

	st := p.Stats()
	assert.Equal(t, manifest, st.Manifest)
	assert.Equal(t, wantUnit, comparable(st))
	// Directories above entries that the manifest does not list:
	// /file.txt, /loop and /nonexistent.
	assert.Equal(t, int64(3), st.Ancestors)
	assert.Contains(t, logs.String(), "prefetch finished")
	assert.Contains(t, logs.String(), "17/17 paths")
	assert.Contains(t, logs.String(), "errors ELOOP 1 ENAMETOOLONG 1 ENOTDIR 1")
	assert.Contains(t, logs.String(), "relative/path.py", "the unusable line is named in a warning")
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Run")
	}

	// Each path reached the file system once. Directories are fetched as
	// dirplus: "/", /dir and /dir/sub, each entry stat'ed (7 + 4, and "/"
	// itself: 12 lstats) and each link read (3, loop included), plus the
	// failed dirplus of /file.txt (ENOTDIR) and /loop (ELOOP) for the
	// names below them; the missing names are absent from the listing of
	// "/" — unless a worker asks for /nonexistent/x before that listing
	// is stored: then the dirplus of /nonexistent answers ENOENT from the
	// file system (once: the ENOENT is cached); 3 small files read; never
	// the large file's data.
	want := map[op.Op]int64{op.Getattr: 12, op.Readdir: 0, op.Readlink: 3, op.Read: 3}
	got := backendOps(be)
	dirplus := got[op.DirPlus]
	assert.Contains(t, []int64{5, 6}, dirplus, "dirplus")
	want[op.DirPlus] = dirplus
	assert.Equal(t, want, got)

	// What a first use asks now comes from the cache.
	for _, rel := range []string{"/dir/a.py", "/dir/odd\nname.py"} {
		r := n.Get(t.Context(), op.Read, rel)
		require.True(t, r.OK(), rel)
		assert.Len(t, r.Data, 1000)
	}
	assert.Equal(t, "dir/a.py", n.Get(t.Context(), op.Readlink, "/link").Target)
	assert.Len(t, n.Get(t.Context(), op.Readdir, "/dir").Entries, 4)
	assert.Equal(t, want, backendOps(be))

	// A second run finds everything cached but the errors, which the
	// cache does not keep (ENOTDIR, ELOOP: one dirplus each).
	again, err := prefetch.New(n, prefetch.Config{Manifest: manifest, Target: target, MaxCacheable: unitMaxCacheable})
	require.NoError(t, err)
	require.NoError(t, again.Run(t.Context()))
	assert.Equal(t, wantUnit, comparable(again.Stats()))
	want[op.DirPlus] += 2
	assert.Equal(t, want, backendOps(be))

	require.EqualError(t, p.Run(t.Context()), "prefetch: Run called twice")
}

// Prefetchers running at once on one node share its requests: every
// listing, link and file is read from the file system once.
func TestConcurrentRunsCoalesce(t *testing.T) {
	target, manifest := unitTree(t)
	n, be := rootNode(t, target)
	var wg sync.WaitGroup
	runs := make([]*prefetch.Prefetcher, 4)
	for i := range runs {
		p, err := prefetch.New(n, prefetch.Config{Manifest: manifest, Target: target, MaxCacheable: unitMaxCacheable, Workers: 3})
		require.NoError(t, err)
		runs[i] = p
		wg.Go(func() { assert.NoError(t, p.Run(t.Context())) })
	}
	wg.Wait()
	for _, p := range runs {
		assert.Equal(t, wantUnit, comparable(p.Stats()))
	}
	ops := backendOps(be)
	assert.Equal(t, map[op.Op]int64{op.Getattr: 12, op.Readdir: 0, op.Readlink: 3, op.Read: 3}, map[op.Op]int64{
		op.Getattr: ops[op.Getattr], op.Readdir: ops[op.Readdir], op.Readlink: ops[op.Readlink], op.Read: ops[op.Read]})
	// A dirplus that fails with ENOTDIR or ELOOP is not cached and may be
	// asked again by a run that missed the flight: at most once per run
	// (and /nonexistent's once, as in TestRunCountsEveryOutcome).
	assert.GreaterOrEqual(t, ops[op.DirPlus], int64(5))
	assert.LessOrEqual(t, ops[op.DirPlus], int64(6+2*(len(runs)-1)))
}

func TestMaxBytesBoundsFileData(t *testing.T) {
	target, manifest := unitTree(t)
	n, be := rootNode(t, target)
	p, err := prefetch.New(n, prefetch.Config{Manifest: manifest, Target: target, MaxCacheable: unitMaxCacheable, MaxBytes: 2500})
	require.NoError(t, err)
	require.NoError(t, p.Run(t.Context()))
	st := p.Stats()
	assert.Equal(t, int64(2), st.Files)
	assert.Equal(t, int64(2000), st.Bytes)
	assert.Equal(t, int64(1), st.SkippedBudget)
	assert.Equal(t, st.Total, st.Done)
	assert.Equal(t, int64(2), be.Ops(op.Read))
}

// blockingSource answers nothing until the asker gives up.
type blockingSource struct{ asked chan struct{} }

func (b blockingSource) Get(ctx context.Context, _ op.Op, _ string) op.Result {
	select {
	case b.asked <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return op.Fail(syscall.EINTR)
}

func TestRunStopsWithContext(t *testing.T) {
	target, manifest := unitTree(t)
	src := blockingSource{asked: make(chan struct{}, 1)}
	p, err := prefetch.New(src, prefetch.Config{Manifest: manifest, Target: target, MaxCacheable: unitMaxCacheable, Workers: 2})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	<-src.asked
	st := p.Stats()
	assert.True(t, st.Started)
	assert.False(t, st.Finished)
	assert.Contains(t, st.Summary(), "running")
	cancel()
	err = <-errc
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "interrupted")

	final, werr := p.Wait(t.Context())
	require.ErrorIs(t, werr, context.Canceled)
	assert.True(t, final.Finished)
	assert.Contains(t, final.Error, "interrupted")
	// Requests cut short are not outcomes: nothing that needed an answer
	// counts as done.
	assert.Zero(t, final.Files+final.Dirs+final.Links+final.Other+final.Missing+final.Failed())
	assert.Less(t, final.Done, final.Total)
}

func TestRunWaitsForReady(t *testing.T) {
	target, manifest := unitTree(t)
	n, be := rootNode(t, target)
	ready := make(chan struct{})
	p, err := prefetch.New(n, prefetch.Config{
		Manifest: manifest, Target: target, MaxCacheable: unitMaxCacheable,
		Ready: func(ctx context.Context) error {
			select {
			case <-ready:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- p.Run(t.Context()) }()

	// Not ready: Wait gives up with the counters untouched.
	expired, cancel := context.WithCancel(t.Context())
	cancel()
	st, err := p.Wait(expired)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, st.Started)
	assert.Contains(t, st.Summary(), "waiting for tree-ready")
	assert.Zero(t, be.Ops(op.Getattr))

	close(ready)
	require.NoError(t, <-errc)
	st, err = p.Wait(t.Context())
	require.NoError(t, err)
	assert.Equal(t, wantUnit, comparable(st))
}

func TestRunFailures(t *testing.T) {
	target, manifest := unitTree(t)
	n, _ := rootNode(t, target)
	notReady := errors.New("parent not tree-ready after 2m0s")
	tests := []struct {
		name     string
		cfg      prefetch.Config
		wantErr  string
		wantIs   error
		unstated bool // Started stays false
	}{
		{"manifest missing", prefetch.Config{Manifest: filepath.Join(target, "no-such-manifest.txt"), Target: target},
			"prefetch: manifest: open " + filepath.Join(target, "no-such-manifest.txt") + ": no such file or directory", syscall.ENOENT, true},
		{"manifest is a directory", prefetch.Config{Manifest: target, Target: target},
			"is a directory", syscall.EISDIR, false},
		{"never ready", prefetch.Config{Manifest: manifest, Target: target, Ready: func(context.Context) error { return notReady }},
			"prefetch " + manifest + ": node not ready: parent not tree-ready after 2m0s", notReady, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := prefetch.New(n, tt.cfg)
			require.NoError(t, err)
			err = p.Run(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.ErrorIs(t, err, tt.wantIs)
			st, werr := p.Wait(t.Context())
			assert.Equal(t, err, werr)
			assert.True(t, st.Finished)
			assert.Equal(t, err.Error(), st.Error)
			assert.Equal(t, !tt.unstated, st.Started)
			assert.Contains(t, st.Summary(), "stopped")
		})
	}
}

func TestNewChecksConfig(t *testing.T) {
	n, _ := rootNode(t, t.TempDir())
	tests := []struct {
		name    string
		src     prefetch.Source
		cfg     prefetch.Config
		wantErr string
	}{
		{"no source", nil, prefetch.Config{Manifest: "/m", Target: "/"}, "no source"},
		{"no manifest", n, prefetch.Config{Target: "/"}, "no manifest"},
		{"relative target", n, prefetch.Config{Manifest: "/m", Target: "src"}, `target "src"`},
		{"unclean target", n, prefetch.Config{Manifest: "/m", Target: "/src/"}, `target "/src/"`},
		{"negative workers", n, prefetch.Config{Manifest: "/m", Target: "/", Workers: -1}, "workers -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := prefetch.New(tt.src, tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// Without root's CAP_DAC_OVERRIDE, unreadable files and directories give
// real EACCES errors, which the counters report by name.
func TestUnreadableEntriesAsUnprivilegedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test drops root in a child process: run it as root (euid %d)", os.Geteuid())
	}
	dir := t.TempDir()
	// The child, as nobody, must reach the fixture through t.TempDir's
	// private parents.
	for d := dir; strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	target := filepath.Join(dir, "src")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "locked"), 0o755))
	writeFile(t, filepath.Join(target, "open.txt"), 5)
	writeFile(t, filepath.Join(target, "secret.txt"), 5)
	writeFile(t, filepath.Join(target, "locked", "inner.txt"), 5)
	require.NoError(t, os.Chmod(filepath.Join(target, "secret.txt"), 0))
	require.NoError(t, os.Chmod(filepath.Join(target, "locked"), 0))
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(target, "locked"), 0o755) })
	manifest := filepath.Join(dir, "manifest.txt")
	require.NoError(t, os.WriteFile(manifest, []byte(strings.Join([]string{
		filepath.Join(target, "locked"),              // lstat works, listing: EACCES
		filepath.Join(target, "locked", "inner.txt"), // no search permission: EACCES
		filepath.Join(target, "open.txt"),            // file
		filepath.Join(target, "secret.txt"),          // lstat works, open: EACCES
		filepath.Join(target, "vanished.txt"),        // missing
	}, "\n")), 0o644))

	st := runHelper[prefetch.Stats](t, unprivilegedEnv, unprivilegedJob{Target: target, Manifest: manifest})
	assert.Equal(t, prefetch.Stats{
		Total: 5, Done: 5, Files: 1, Bytes: 5, Missing: 1,
		Errors:   map[string]int64{"EACCES": 3},
		Started:  true,
		Finished: true,
	}, comparable(st))
}
