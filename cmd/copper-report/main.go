// Command copper-report builds cluster reports from a copper job
// directory's per-node profiling files (see docs/PROFILING.md).
//
//	copper-report aggregate <jobdir> [--prefix P] [--source final|<tag>] [--top N]
//	copper-report paths <jobdir> --usage-root ROOT [--output-dir D] [--source S] [--target T]
//	copper-report cache <jobdir> [--source final|<tag>]
//	copper-report doctor <jobdir> [--source S] [--target T] [--probe-fanout N]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/internal/manpage"
	"github.com/hpc-copper/copper/internal/version"
	"github.com/hpc-copper/copper/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `copper-report: cluster reports from a copper job directory (<log_output_dir>/<jobid>).

  copper-report aggregate <jobdir> [--prefix P] [--source final|<tag>] [--top N]
      Merge profiling/<source>/*-profiling_*.csv into profiling/cluster/<P>-profiling_
      {aggregate.csv,operations.csv,summary.md,chart.svg} (P: "cluster", or
      "cluster-<tag>" for a snapshot).
  copper-report paths <jobdir> --usage-root ROOT [--output-dir D] [--source S] [--target T]
      Compare the paths copper saw with every file and directory under ROOT now;
      writes six files into D (default <jobdir>/profiling/cluster/paths).
  copper-report cache <jobdir> [--source final|<tag>]
      Sum tables/<source>/*-cache_tables.csv into profiling/cluster/cache_usage_summary.{txt,csv}.
  copper-report doctor <jobdir> [--source S] [--target T] [--probe-fanout N]
      Name the problems the profile shows, each with its fix: .py files read without a .pyc,
      files over max_cacheable_bytes read directly, long ENOENT probe fan-out, paths fetched
      from the backend more than once per tree. Exit status 0: none found; 1: problems
      found; 2: usage error or the profile could not be read.
  copper-report --version   (or: version) version, commit and Go version

Snapshot tags: runtime-snapshot, pre-destroy, ioctl-snapshot, pre-reset.
Run 'copper-report <command> --help' for a command's flags.
`

// usageError marks command-line mistakes (exit status 2).
type usageError struct{ error }

func usageErrorf(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if version.IsVersionArgs(args) {
		fmt.Fprint(stdout, version.Get().Format("copper-report"))
		return 0
	}
	if len(args) == 2 && args[0] == "help" && args[1] == "man" { // hidden: make install writes the man page with it
		if err := writeMan(ctx, stdout); err != nil {
			fmt.Fprintf(stderr, "copper-report help man: %v\n", err)
			return 1
		}
		return 0
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "aggregate":
		err = aggregate(ctx, args, stdout)
	case "paths":
		err = paths(ctx, args, stdout)
	case "cache":
		err = cache(ctx, args, stdout)
	case "doctor":
		return doctor(ctx, args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "copper-report: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "copper-report %s: %v (see 'copper-report %s --help')\n", cmd, err, cmd)
		return 2
	}
	fmt.Fprintf(stderr, "copper-report %s: %v\n", cmd, err)
	return 1
}

// parse parses flags and returns the one positional argument, the job dir.
func parse(fs *pflag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return "", err
		}
		return "", usageError{err}
	}
	switch fs.NArg() {
	case 1:
		return fs.Arg(0), nil
	case 0:
		return "", usageErrorf("missing <jobdir> (the job's output directory, <log_output_dir>/<jobid>)")
	}
	return "", usageErrorf("want one <jobdir>, got %d arguments: %q", fs.NArg(), fs.Args())
}

func newFlags(name string, stdout io.Writer, synopsis string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("copper-report "+name, pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: copper-report %s %s\n\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func aggregate(ctx context.Context, args []string, stdout io.Writer) error {
	var opts report.AggregateOptions
	fs := newFlags("aggregate", stdout, "<jobdir> [flags]")
	fs.StringVar(&opts.Prefix, "prefix", "", `output name prefix (default "cluster", or "cluster-<tag>" with --source <tag>)`)
	fs.StringVar(&opts.Source, "source", report.FinalSource, "profiling directory to read: final or a snapshot tag")
	fs.IntVar(&opts.TopN, "top", 20, "hottest paths listed per category in the summary")
	jobDir, err := parse(fs, args)
	if err != nil {
		return err
	}
	res, err := report.Aggregate(ctx, jobDir, opts)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, res.Text())
	return err
}

func paths(ctx context.Context, args []string, stdout io.Writer) error {
	var opts report.PathsOptions
	fs := newFlags("paths", stdout, "<jobdir> --usage-root ROOT [flags]")
	fs.StringVar(&opts.UsageRoot, "usage-root", "", "host directory to measure usage against, e.g. the conda env (required)")
	fs.StringVar(&opts.OutputDir, "output-dir", "", "where to write (default <jobdir>/profiling/cluster/paths)")
	fs.StringVar(&opts.Source, "source", report.FinalSource, "profiling directory to read: final or a snapshot tag")
	fs.StringVar(&opts.Target, "target", "", `host directory copper exported as the view's "/" (default: the "target" the nodes recorded in their profiling_aggregate.csv)`)
	jobDir, err := parse(fs, args)
	if err != nil {
		return err
	}
	if opts.UsageRoot == "" {
		return usageErrorf("--usage-root is required: the host directory to measure usage against (e.g. the conda env)")
	}
	res, err := report.Paths(ctx, jobDir, opts)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, res.Text())
	return err
}

func cache(ctx context.Context, args []string, stdout io.Writer) error {
	var opts report.CacheOptions
	fs := newFlags("cache", stdout, "<jobdir> [flags]")
	fs.StringVar(&opts.Source, "source", report.FinalSource, "tables directory to read: final or a snapshot tag")
	jobDir, err := parse(fs, args)
	if err != nil {
		return err
	}
	res, err := report.Cache(ctx, jobDir, opts)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, res.Text())
	return err
}

// doctor runs the doctor command; its exit status says what it found
// (0 nothing, 1 problems), 2 when it could not look.
func doctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var opts report.DoctorOptions
	fs := newFlags("doctor", stdout, "<jobdir> [flags]")
	fs.StringVar(&opts.Source, "source", report.FinalSource, "profiling directory to read: final or a snapshot tag")
	fs.StringVar(&opts.Target, "target", "", `host directory copper exported as the view's "/" (default: the "target" the nodes recorded)`)
	fs.IntVar(&opts.ProbeFanout, "probe-fanout", report.DefaultProbeFanout, "a name missing in this many directories or more is a search-path fan-out")
	jobDir, err := parse(fs, args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "copper-report doctor: %v (see 'copper-report doctor --help')\n", err)
		return 2
	}
	res, err := report.Doctor(ctx, jobDir, opts)
	if err != nil {
		fmt.Fprintf(stderr, "copper-report doctor: %v\n", err)
		return 2
	}
	if _, err := io.WriteString(stdout, res.Text()); err != nil {
		fmt.Fprintf(stderr, "copper-report doctor: %v\n", err)
		return 2
	}
	if len(res.Findings) > 0 {
		return 1
	}
	return 0
}

// writeMan writes copper-report(1): the usage and each command's flags,
// as the commands themselves print them for --help.
func writeMan(ctx context.Context, w io.Writer) error {
	page := manpage.Page{
		Name:     "copper-report",
		Summary:  "cluster reports from a copper job directory",
		Version:  version.Get().Version,
		Synopsis: usage,
		SeeAlso:  []string{"copper-launch(1)", "copper-node(1)"},
	}
	for _, cmd := range []string{"aggregate", "paths", "cache", "doctor"} {
		var help strings.Builder
		if code := run(ctx, []string{cmd, "--help"}, &help, &help); code != 0 {
			return fmt.Errorf("%s --help exited %d: %s", cmd, code, help.String())
		}
		page.Sections = append(page.Sections, manpage.Section{Title: cmd, Text: help.String()})
	}
	return manpage.Write(w, page)
}
