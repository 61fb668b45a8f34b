package nodecmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/profile"
	"github.com/hpc-copper/copper/service"
)

func controlFlags(name string, args []string, withJSON bool) (mount string, asJSON bool, timeout time.Duration, err error) {
	fs, mountp, timeoutp := controlFlagSet(name)
	if withJSON {
		fs.BoolVar(&asJSON, "json", false, "print JSON for scripts")
	}
	err = parseControl(fs, args)
	return *mountp, asJSON, *timeoutp, err
}

// controlFlagSet is the flag set every control command starts from:
// --mount and --timeout; the command adds its own flags before parsing.
func controlFlagSet(name string) (fs *pflag.FlagSet, mount *string, timeout *time.Duration) {
	fs = pflag.NewFlagSet("copper-node "+name, pflag.ContinueOnError)
	mount = fs.String("mount", "", "mount directory of the node (required)")
	timeout = fs.Duration("timeout", 2*time.Minute, "give up after this long")
	return fs, mount, timeout
}

// parseControl parses args into fs and checks what every control command
// needs: a --mount and no stray arguments.
func parseControl(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if m, _ := fs.GetString("mount"); m == "" {
		return errors.New("--mount is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func stats(args []string) error {
	mount, asJSON, timeout, err := controlFlags("stats", args, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var st service.Status
	if asJSON {
		var raw json.RawMessage
		if err := control.Call(ctx, mount, control.Request{Cmd: "stats"}, &raw); err != nil {
			return err
		}
		_, err := os.Stdout.Write(append(raw, '\n'))
		return err
	}
	if err := control.Call(ctx, mount, control.Request{Cmd: "stats"}, &st); err != nil {
		return err
	}
	printStatus(os.Stdout, st)
	return nil
}

func wait(args []string) error {
	var prefetched bool
	fs := pflag.NewFlagSet("copper-node wait", pflag.ContinueOnError)
	mount := fs.String("mount", "", "mount directory of the node (required)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	fs.BoolVar(&prefetched, "prefetched", false, "also wait until the node's prefetch has finished, and print its summary")
	jobID := fs.String("job-id", "", "the job waited for: a failed start's record left by another job on this mount is ignored (default: any)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mount == "" {
		return errors.New("--mount is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := waitReady(ctx, *mount, *jobID); err != nil {
		return err
	}
	if !prefetched {
		return nil
	}
	return waitPrefetched(ctx, *mount, os.Stdout)
}

// waitReady waits until the node serving mount is tree-ready. The node
// may not have created its socket yet; while no node answers, a start
// that failed (its record in the runtime directory, for job jobID) ends
// the wait at once with its reason and the logs that exist. A node that
// failed while the wait was asking it drops the connection unanswered and
// records its failure after: that too is no node, not the wait's error.
func waitReady(ctx context.Context, mount, jobID string) error {
	for {
		err := control.Call(ctx, mount, control.Request{Cmd: "wait"}, nil)
		if err == nil || !(errors.Is(err, control.ErrNoNode) || droppedUnanswered(err)) {
			return err
		}
		f, failed, ferr := control.ReadStartFailure(mount)
		if ferr != nil {
			return ferr
		}
		if failed && f.AppliesTo(jobID) {
			return errors.New(f.Message())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; no node started at mount %s within the timeout, and none recorded a failure (is the start step still running?)", err, mount)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// droppedUnanswered reports whether err is the node closing the control
// connection before it answered (it exited), rather than a refusal or a
// timeout.
func droppedUnanswered(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// waitPrefetched blocks until the node's prefetch has finished and
// prints its summary; a prefetch that could not complete (manifest
// unreadable, node stopped) is an error. A node without a prefetch
// manifest has nothing to wait for.
func waitPrefetched(ctx context.Context, mount string, w io.Writer) error {
	args := map[string]string{"wait": "true"}
	if dl, ok := ctx.Deadline(); ok {
		args["timeout"] = time.Until(dl).String()
	}
	var res service.PrefetchResult
	if err := control.Call(ctx, mount, control.Request{Cmd: "prefetch", Args: args}, &res); err != nil {
		return err
	}
	if !res.Enabled || res.Stats == nil {
		_, err := fmt.Fprintln(w, "prefetch: off (no prefetch manifest)")
		return err
	}
	if _, err := fmt.Fprintln(w, res.Stats.Summary()); err != nil {
		return err
	}
	if res.Stats.Error != "" {
		return fmt.Errorf("mount %s: prefetch did not complete: %s", mount, res.Stats.Error)
	}
	return nil
}

func stop(args []string) error {
	mount, _, timeout, err := controlFlags("stop", args, false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pid, err := control.ServingPID(ctx, mount)
	if err != nil {
		return err
	}
	// Return once the process is gone and the mount unclaimed, so the
	// mount is free for the next job.
	return control.Stop(ctx, mount, pid, false)
}

// snapshot asks the node serving --mount to write a profiling snapshot.
func snapshot(args []string) error {
	fs, mount, timeout := controlFlagSet("snapshot")
	tag := fs.String("tag", profile.TagIoctl, "snapshot tag: the directory under profiling/ and tables/")
	if err := parseControl(fs, args); err != nil {
		return err
	}
	if err := profile.ValidTag(*tag); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var res service.SnapshotResult
	if err := control.Call(ctx, *mount, control.Request{Cmd: "snapshot", Args: map[string]string{"tag": *tag}}, &res); err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "%s\n%s\n", res.Profiling, res.Tables)
	return nil
}

func printStatus(w io.Writer, st service.Status) {
	n := st.Node
	role := fmt.Sprintf("child of rank %d via %s", st.Parent, st.Upstream)
	if n.Root {
		role = "root of tree " + fmt.Sprint(st.Tree)
	}
	ready := "tree-ready"
	if !n.TreeReady {
		ready = "NOT tree-ready"
	}
	fmt.Fprintf(w, "copper node rank %d (%s), %s, pid %d\n", n.Rank, role, ready, st.PID)
	fmt.Fprintf(w, "mount %s -> target %s, endpoint %s, depth %d, children %v\n\n", st.Mount, st.Target, st.Endpoint, st.Depth, st.Children)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tentries\tbytes\thuman\tevictions\t")
	for _, t := range n.Cache.Tables() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t\n", t.Name, t.Entries, t.Bytes, human(t.Bytes), t.Evictions)
	}
	fmt.Fprintf(tw, "all\t\t%d\t%s\tbudget %s\t\n", n.Cache.Bytes, human(n.Cache.Bytes), human(n.Cache.BudgetBytes))
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\thits\tmisses\tcoalesced\tforwarded\tbackend\t")
	for _, o := range n.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", o.Op, o.Hits, o.Misses, o.Coalesced, o.Forwarded, o.BackendOps)
	}
	tw.Flush()
	c := n.Cache
	fmt.Fprintf(w, "\nnegative (ENOENT) TTL: stores %d, serves %d, expires %d, clears %d; forward errors %d, failovers %d\n",
		c.NegativeStores, c.NegativeServes, c.NegativeExpires, c.NegativeClears, n.ForwardErrors, n.Failovers)
	d := st.DirectReads
	fmt.Fprintf(w, "read directly from the target (over max_cacheable_bytes, outside the tree): %d files, %d opens, %s\n",
		d.Files, d.Opens, human(d.Bytes))
	k := st.KernelPushes
	fmt.Fprintf(w, "pushed into the kernel's page cache when listed (no READ follows): %d files, %s; late %d, failed %d\n",
		k.Pushed, human(int64(k.PushedBytes)), k.Late, k.Failed)
	printLargeFiles(w, st)
	if p := st.Prefetch; p != nil {
		fmt.Fprintf(w, "\n%s\n", p.Summary())
	}
	if len(st.Profile) > 0 {
		fmt.Fprintln(w)
		printProfile(w, st.Profile)
	}
}

// printLargeFiles says how files over max_cacheable_bytes are served
// and, when chunked, what went through the chunk store.
func printLargeFiles(w io.Writer, st service.Status) {
	lf := st.LargeFiles
	offer := "not offered"
	if lf.KernelOffersPassthrough {
		offer = "offered, unused"
	}
	fmt.Fprintf(w, "\nlarge files: %s, kernel path %s (passthrough %s)", lf.Mode, lf.KernelPath, offer)
	c := st.Node.Chunks
	if c == nil {
		fmt.Fprintln(w)
		return
	}
	where := c.Store.Dir
	if c.Store.Mode != "disk" {
		where = "memory (spill directory unusable or off)"
	}
	fmt.Fprintf(w, ", chunks of %s; files opened %d, bytes read %d (%s)\n", human(lf.ChunkBytes), lf.Opened, c.LocalBytes, human(c.LocalBytes))
	fmt.Fprintf(w, "chunks: fetched %d (%s), served %d, read ahead %d, stale %d, rejected %d\n",
		c.Fetched, human(c.FetchedB), c.Served, c.Readahead, c.Stale, c.Rejected)
	fmt.Fprintf(w, "chunk store: %s, %d chunks, %s of %s; spilled %d, evicted %d, hits %d, misses %d\n",
		where, c.Store.Chunks, human(c.Store.Bytes), human(c.Store.BudgetBytes), c.Store.Spilled, c.Store.Evicted, c.Store.Hits, c.Store.Misses)
}

// printProfile shows the FUSE operation table of a profiling node.
func printProfile(w io.Writer, rows []profile.OpRow) {
	us := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e3) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fuse op\tcalls\terrors\tENOENT\tavg µs\tp50 µs\tp99 µs\tmax µs\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", r.Op, r.Calls, r.Errors, r.Negative,
			us(r.AvgLatency()), us(r.P50), us(r.P99), us(r.Max))
	}
	tw.Flush()
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
