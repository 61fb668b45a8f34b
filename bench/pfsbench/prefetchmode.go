package pfsbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hpc-copper/copper/bench/replay"
)

// manifestFile is the copper+prefetch manifest in the scratch directory.
const manifestFile = "prefetch.manifest"

// manifestViews lists every distinct path the trace names, with the
// directories above each (below the prefix), as sorted view paths: the
// paths an earlier run's report would list as used. Paths the trace saw
// missing stay in: prefetching them caches the miss.
func manifestViews(tr *replay.Trace) []string {
	seen := map[string]bool{}
	for _, o := range tr.Ops {
		for p := o.Path; p != "" && p != "/" && !seen[p]; p = filepath.Dir(p) {
			seen[p] = true
		}
	}
	views := make([]string, 0, len(seen))
	for p := range seen {
		views = append(views, p)
	}
	// Sorted, as report writes manifests: a directory comes before
	// what is below it, so the prefetcher walks each ancestor once.
	slices.Sort(views)
	return views
}

// manifestLine is one manifest line for a host path: as is, or
// Go-quoted when a newline, carriage return or invalid UTF-8 would not
// survive a line-based file.
func manifestLine(host string) string {
	if strings.ContainsAny(host, "\n\r") || !utf8.ValidString(host) || strings.HasPrefix(host, `"`) {
		return strconv.Quote(host)
	}
	return host
}

// writeManifest writes views as host paths below target (copper's
// --target, the PFS client the root reads) to file.
func writeManifest(file, target string, views []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# pfsbench copper+prefetch: every path the recorded import touches, below %s\n", target)
	for _, v := range views {
		b.WriteString(manifestLine(target + v))
		b.WriteByte('\n')
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("prefetch manifest %s: %w", file, err)
	}
	return nil
}

// prefetchManifest writes the manifest on first use and returns its
// path; copper's target is always PFS client 0.
func (r *runner) prefetchManifest() (string, error) {
	if r.manifest != "" {
		return r.manifest, nil
	}
	file := filepath.Join(r.work, manifestFile)
	if err := writeManifest(file, r.pfsClient(0), manifestViews(r.trace)); err != nil {
		return "", err
	}
	r.manifest = file
	return file, nil
}

// waitPrefetched runs `copper-node wait --prefetched` on every node at
// once and returns the time until the last one's prefetch finished and
// each node's summary line.
func (t *copperTree) waitPrefetched(ctx context.Context, timeout time.Duration) (time.Duration, []string, error) {
	summaries := make([]string, len(t.mounts))
	errs := make([]error, len(t.mounts))
	var wg sync.WaitGroup
	start := time.Now()
	for rank, m := range t.mounts {
		wg.Go(func() {
			out, err := runBounded(ctx, timeout+10*time.Second, t.r.copperEnv(), filepath.Join(t.r.cfg.Bin, "copper-node"),
				"wait", "--mount", m, "--prefetched", "--timeout", timeout.String())
			summaries[rank] = strings.TrimSpace(out.stdout)
			if err != nil {
				errs[rank] = fmt.Errorf("rank %d: %w", rank, err)
			} else if !strings.Contains(summaries[rank], ": done,") { // exit 0 also means "prefetch: off"
				errs[rank] = fmt.Errorf("rank %d: prefetch not done: %q", rank, summaries[rank])
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := firstErrors(errs, 2); err != nil {
		return took, summaries, fmt.Errorf("wait for %d nodes' prefetch: %w", len(t.mounts), err)
	}
	return took, summaries, nil
}
