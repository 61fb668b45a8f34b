// Command pfsbench measures job startup on an emulated shared parallel
// filesystem: a Python import, real and replayed, by N nodes × P
// processes reading the filesystem directly, through copper, or from a
// staged copy (see package bench/pfsbench).
//
//	pfsbench --quick --out DIR    # the subset, under two minutes + the scale-model rows
//	pfsbench --full  --out DIR    # N = 1..32 for both workloads, under fifteen
//
// It writes DIR/results.json, results.csv, bench-results.md (a fragment
// for docs/BENCHMARKS.md) and pfsbench.svg, prints progress lines on
// stderr, and stops every helper and unmounts everything on exit, on
// failure and on SIGINT/SIGTERM. It needs root (FUSE mounts), strace and
// python3 with the imported packages: scripts/pfsbench.sh installs them,
// builds bin/ and runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/bench/pfsbench"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// Stop helpers in order on a signal: the context ends, Run unwinds.
	// Later signals are swallowed so that cleanup is not cut short.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && args[0] == pfsbench.WorkerCommand {
		if err := pfsbench.ReplayWorker(ctx, args[1:], os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "pfsbench %s: %v\n", pfsbench.WorkerCommand, err)
			return 1
		}
		return 0
	}
	if len(args) > 0 && args[0] == pfsbench.LargeSectionCommand {
		return largeSection(args[1:])
	}

	cfg, code, ok := parseArgs(args)
	if !ok {
		return code
	}
	command := "pfsbench " + strings.Join(args, " ")
	res, err := pfsbench.Run(ctx, cfg, command)
	if res != nil {
		for _, t := range res.Targets {
			fmt.Fprintf(os.Stderr, "target: %s: %s (%s) — %s\n", t.Name, t.Result, t.Goal, t.Verdict)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pfsbench: %v\n", err)
		return 1
	}
	return 0
}

// parseArgs turns the command line into the run's configuration. When ok
// is false the run ends with code: 0 for --help, 2 for a bad command line
// (said on stderr).
func parseArgs(args []string) (cfg pfsbench.Config, code int, ok bool) {
	fs := pflag.NewFlagSet("pfsbench", pflag.ContinueOnError)
	fs.SortFlags = false
	o := defineFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return pfsbench.Config{}, 0, false
		}
		fmt.Fprintf(os.Stderr, "pfsbench: %v\n", err)
		return pfsbench.Config{}, 2, false
	}
	if *o.quick && *o.full {
		fmt.Fprintln(os.Stderr, "pfsbench: --quick and --full exclude each other")
		return pfsbench.Config{}, 2, false
	}
	if *o.out == "" {
		fmt.Fprintln(os.Stderr, "pfsbench: --out is required")
		return pfsbench.Config{}, 2, false
	}
	return o.config(fs)
}

// options are the parsed flags.
type options struct {
	quick         *bool
	full          *bool
	out           *string
	work          *string
	bin           *string
	heapProfiles  *string
	modes         *string
	workloads     *string
	largeBytes    *int64
	largeNodes    *int
	largeScale    *int64
	largeRefBW    *int64
	replayNodes   *[]int
	importNodes   *[]int
	procs         *int
	repeats       *int
	repeatMax     *int
	imports       *string
	directClients *string
	python        *string
	service       *time.Duration
	slots         *int
	bandwidth     *int64
	scaleNodes    *int
	scaleRefNodes *int
	scaleRefProcs *int
	scaleModes    *string
}

// defineFlags declares the command line on fs.
func defineFlags(fs *pflag.FlagSet) *options {
	return &options{
		quick:         fs.Bool("quick", false, "the quick subset (default)"),
		full:          fs.Bool("full", false, "the full matrix"),
		out:           fs.String("out", "", "results directory (required)"),
		work:          fs.String("work", "", "scratch directory for trees and mounts (default: a new one under /tmp, removed at the end)"),
		bin:           fs.String("bin", "", "directory with copper-node and slowpfs (default: this binary's directory)"),
		heapProfiles:  fs.String("heap-profiles", "", "directory for each copper node's memory by class and heap profile, taken with its RSS (copper-node memory)"),
		modes:         fs.String("modes", "", "comma-separated modes (default: local,direct,copper,staging,copper+prefetch)"),
		workloads:     fs.String("workloads", "replay,import,large", "comma-separated workloads: replay, import, large (issue #10: N nodes read one large file)"),
		largeBytes:    fs.Int64("large-bytes", 0, "large workload: the file's size (default 256 MiB quick, 1 GiB full)"),
		largeNodes:    fs.Int("large-nodes", 0, "large workload: readers, one per node (default 8 quick, 32 full)"),
		largeScale:    fs.Int64("large-scale-bytes", -1, "large workload, scale model: the file's size, 0 = no scale-model passes (default 64 MiB quick, 256 MiB full)"),
		largeRefBW:    fs.Int64("large-ref-bandwidth", 0, "large workload, scale model: bytes/s of the reference server, one OST (default 5e9)"),
		replayNodes:   fs.IntSlice("replay-nodes", nil, "node counts for the replay workload (default: the set's)"),
		importNodes:   fs.IntSlice("import-nodes", nil, "node counts for the real import (default: the set's)"),
		procs:         fs.Int("procs", 0, "processes per node (default 4)"),
		repeats:       fs.Int("repeats", 0, "runs of each replay at N ≤ --repeat-max-nodes, each phase keeping its median run (default 5)"),
		repeatMax:     fs.Int("repeat-max-nodes", -1, "largest N whose replay rows are repeated, 0 = none (default 1)"),
		imports:       fs.String("import", "", "modules to import, comma-separated (default numpy)"),
		directClients: fs.String("direct-clients", "", "direct mode: one PFS client per 'node' (default) or per 'process'"),
		python:        fs.String("python", "", "python3 to run (default /usr/bin/python3)"),
		service:       fs.Duration("metadata-service", 0, "emulated metadata service time (default 300µs)"),
		slots:         fs.Int("slots", 0, "emulated metadata slots (default 8)"),
		bandwidth:     fs.Int64("bandwidth", 0, "emulated data bandwidth in bytes/s (default 1 GiB/s)"),
		scaleNodes:    fs.Int("scale-nodes", -1, "node count of the scale-model replay rows, 0 = none (default 32)"),
		scaleRefNodes: fs.Int("scale-ref-nodes", 0, "scale model: nodes of the reference machine sharing one metadata server (default 2048)"),
		scaleRefProcs: fs.Int("scale-ref-procs", 0, "scale model: processes per node of the reference machine (default 12)"),
		scaleModes:    fs.String("scale-modes", "", "scale model: comma-separated modes (default direct,copper)"),
	}
}

// config applies the flags to the quick or full set; a flag left at its
// zero value keeps the set's default.
func (o *options) config(fs *pflag.FlagSet) (pfsbench.Config, int, bool) {
	cfg := pfsbench.Quick()
	if *o.full {
		cfg = pfsbench.Full()
	}
	cfg.Out, cfg.Work, cfg.Bin, cfg.HeapProfiles, cfg.Progress = *o.out, *o.work, *o.bin, *o.heapProfiles, os.Stderr
	if *o.modes != "" {
		cfg.Modes = strings.Split(*o.modes, ",")
	}
	if fs.Changed("replay-nodes") {
		cfg.ReplayNodes = *o.replayNodes
	}
	if fs.Changed("import-nodes") {
		cfg.ImportNodes = *o.importNodes
	}
	for _, w := range strings.Split(*o.workloads, ",") {
		if w != pfsbench.WorkReplay && w != pfsbench.WorkImport && w != pfsbench.WorkLarge {
			fmt.Fprintf(os.Stderr, "pfsbench: unknown workload %q (replay, import, large)\n", w)
			return pfsbench.Config{}, 2, false
		}
	}
	if !strings.Contains(*o.workloads, pfsbench.WorkReplay) {
		cfg.ReplayNodes = nil
	}
	if !strings.Contains(*o.workloads, pfsbench.WorkImport) {
		cfg.ImportNodes = nil
	}
	if !strings.Contains(*o.workloads, pfsbench.WorkLarge) {
		cfg.Large.Bytes = 0
	}
	if !strings.Contains(*o.workloads, pfsbench.WorkReplay) && !strings.Contains(*o.workloads, pfsbench.WorkImport) {
		cfg.Scale.Nodes = 0 // the scale rows replay the import's trace
	}
	o.largeConfig(&cfg.Large)
	if *o.repeats > 0 {
		cfg.Repeats = *o.repeats
	}
	if *o.repeatMax >= 0 {
		cfg.RepeatMaxNodes = *o.repeatMax
	}
	if *o.procs > 0 {
		cfg.Procs = *o.procs
	}
	if *o.imports != "" {
		cfg.Import = *o.imports
	}
	if *o.directClients != "" {
		cfg.DirectClients = *o.directClients
	}
	if *o.python != "" {
		cfg.Python = *o.python
	}
	if *o.service > 0 {
		cfg.Params.MetadataService = *o.service
	}
	if *o.slots > 0 {
		cfg.Params.Slots = *o.slots
	}
	if *o.bandwidth > 0 {
		cfg.Params.Bandwidth = *o.bandwidth
	}
	if *o.scaleNodes >= 0 {
		cfg.Scale.Nodes = *o.scaleNodes
	}
	if *o.scaleRefNodes > 0 {
		cfg.Scale.RefNodes = *o.scaleRefNodes
	}
	if *o.scaleRefProcs > 0 {
		cfg.Scale.RefProcs = *o.scaleRefProcs
	}
	if *o.scaleModes != "" {
		cfg.Scale.Modes = strings.Split(*o.scaleModes, ",")
	}
	return cfg, 0, true
}

// largeConfig applies the large workload's flags.
func (o *options) largeConfig(lc *pfsbench.LargeConfig) {
	if *o.largeBytes > 0 {
		lc.Bytes = *o.largeBytes
	}
	if *o.largeNodes > 0 {
		lc.Nodes = *o.largeNodes
	}
	if *o.largeScale >= 0 {
		lc.ScaleBytes = *o.largeScale
	}
	if *o.largeRefBW > 0 {
		lc.RefServerBandwidth = *o.largeRefBW
	}
}

// largeSection prints the large-full section of docs/BENCHMARKS.md from
// a run's results.json: pfsbench large-section RESULTS.json [NOTE].
func largeSection(args []string) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintf(os.Stderr, "usage: pfsbench %s RESULTS.json [NOTE]\n", pfsbench.LargeSectionCommand)
		return 2
	}
	res, err := pfsbench.LoadResults(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "pfsbench %s: %v\n", pfsbench.LargeSectionCommand, err)
		return 1
	}
	note := ""
	if len(args) == 2 {
		note = args[1]
	}
	fmt.Print(pfsbench.LargeFullSection(res, note))
	return 0
}
