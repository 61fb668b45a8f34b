// Command scalemodel calibrates and runs the scale model (package
// bench/scalemodel):
//
//	scalemodel calibrate --results <pfsbench out>/results.json --out calibration.json
//	scalemodel run --calibration calibration.json --out DIR
//	scalemodel probe   # cores' worth of CPU this process gets now (shared host)
//
// run writes DIR/model.json, DIR/model.md (a docs/BENCHMARKS.md section)
// and DIR/scalemodel.svg.
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/bench/scalemodel"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: scalemodel calibrate --results R --out FILE [--available CORES] [--tar] | scalemodel run --calibration FILE --out DIR [--projection-nodes …] | scalemodel probe")
		return 2
	}
	var err error
	switch args[0] {
	case "calibrate":
		err = calibrate(ctx, args[1:])
	case "run":
		err = runModel(args[1:])
	case scalemodel.HopServerCommand: // the child of calibrate's call measurement
		err = scalemodel.ServeHop(ctx, os.Stdin, os.Stdout)
	case "probe":
		fmt.Printf("%.3f\n", scalemodel.ProbeCores(time.Second))
	default:
		err = fmt.Errorf("unknown command %q (calibrate, run)", args[0])
	}
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scalemodel %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func calibrate(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("calibrate", pflag.ContinueOnError)
	results := fs.String("results", "", "pfsbench results.json with N=1 replay rows of local, direct, copper, staging (required)")
	trace := fs.String("trace", "", "the run's import.strace (default: beside results.json)")
	out := fs.String("out", "", "calibration file to write (required)")
	tar := fs.Bool("tar", true, "time tar -c/-x of the package tree on local disk (staging's copy)")
	avail := fs.Float64Slice("available", nil, "cores' worth of CPU probed (scalemodel probe) before the measured run; calibrate probes once more")
	worker := fs.String("worker", "", "the run's pfsbench binary: time its replay worker's start-up CPU (Go start, trace parse), which the clients' CPU includes and the timed run does not")
	gather := fs.String("gather", "", "RANKS:SERVE_MS[:CORES], rank 0's serve time of a measured all-gather (bootstrap's BenchmarkGatherScale serve-ms) and the cores' worth a probe got around it: the launch before tree-ready at scale")
	gatherCPU := fs.Float64("gather-cpu", 0, "rank 0's own CPU per rank of a measured all-gather, µs (BenchmarkGatherScale cpu-us/rank); used instead of --gather's serve time, whose wall includes the joiners sharing this host's cores")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *gatherCPU < 0 || math.IsInf(*gatherCPU, 0) || math.IsNaN(*gatherCPU) {
		return fmt.Errorf("--gather-cpu %v: want a CPU time per rank in µs ≥ 0", *gatherCPU)
	}
	if *results == "" || *out == "" {
		return errors.New("--results and --out are required")
	}
	in := scalemodel.CalibrateInput{Results: *results, Trace: *trace, Tar: *tar, Available: *avail, Worker: *worker,
		GatherCPUPerRank: *gatherCPU / 1e6}
	if self, err := os.Executable(); err == nil {
		in.Self = self // the hop-server child of the two-process call measurement
	}
	if *gather != "" {
		var err error
		if in.GatherRanks, in.GatherServe, in.GatherAvailable, err = parseGather(*gather); err != nil {
			return err
		}
	}
	cal, err := scalemodel.Calibrate(ctx, in)
	if err != nil {
		return err
	}
	cal.Command = "scalemodel calibrate " + strings.Join(args, " ")
	return cal.Write(*out)
}

func runModel(args []string) error {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	calFile := fs.String("calibration", "", "calibration file from scalemodel calibrate (required)")
	out := fs.String("out", "", "output directory (required)")
	nodes := fs.IntSlice("projection-nodes", scalemodel.DefaultPlan().Nodes, "projected node counts")
	procs := fs.Int("procs", scalemodel.DefaultPlan().Procs, "projected processes per node")
	cmdline := fs.String("command", "", "the command to print for this run (default: the arguments)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *calFile == "" || *out == "" {
		return errors.New("--calibration and --out are required")
	}
	cal, err := scalemodel.ReadCalibration(*calFile)
	if err != nil {
		return err
	}
	plan := scalemodel.DefaultPlan()
	plan.Nodes, plan.Procs = *nodes, *procs
	rep, err := scalemodel.Evaluate(cal, plan)
	if err != nil {
		return err
	}
	rep.Command = *cmdline
	if rep.Command == "" {
		rep.Command = "scalemodel run " + strings.Join(args, " ")
	}
	rep.CalibrationFile = *calFile
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	return rep.WriteAll(*out)
}

// parseGather reads --gather RANKS:SERVE_MS[:CORES], CORES the cores'
// worth a probe got around the measurement (0 = not probed).
func parseGather(v string) (ranks int, serveS, avail float64, err error) {
	f := strings.Split(v, ":")
	ok := len(f) == 2 || len(f) == 3
	if ok {
		ranks, err = strconv.Atoi(f[0])
		if err == nil {
			serveS, err = strconv.ParseFloat(f[1], 64)
			serveS /= 1000
		}
		if err == nil && len(f) == 3 {
			avail, err = strconv.ParseFloat(f[2], 64)
		}
	}
	if !ok || err != nil || ranks < 1 || !(serveS > 0) || !(avail >= 0) {
		return 0, 0, 0, fmt.Errorf("--gather %q: want RANKS:SERVE_MS[:CORES], ranks and time > 0 (e.g. 2000:275.7:1.9)", v)
	}
	return ranks, serveS, avail, nil
}
