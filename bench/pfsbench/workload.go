package pfsbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/bench/replay"
)

// WorkerCommand is the subcommand under which the pfsbench binary runs
// as a replay worker.
const WorkerCommand = "replay-worker"

// workerReport is a worker's one line of output.
type workerReport struct {
	Results []replay.Result `json:"results"`
	Error   string          `json:"error,omitempty"`
}

// ReplayWorker is one node's replay clients: it parses the trace, prints
// "ready", waits for a line on stdin, then replays the trace once per
// --root concurrently (one simulated process each) and prints the
// results as one JSON line.
func ReplayWorker(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := pflag.NewFlagSet("pfsbench "+WorkerCommand, pflag.ContinueOnError)
	traceFile := fs.String("trace", "", "strace output of the recorded run (required)")
	prefix := fs.String("prefix", "", "directory the trace was recorded against (required)")
	roots := fs.StringArray("root", nil, "directory replacing the prefix; one simulated process per --root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *traceFile == "" || *prefix == "" || len(*roots) == 0 {
		return errors.New("--trace, --prefix and at least one --root are required")
	}
	f, err := os.Open(*traceFile)
	if err != nil {
		return err
	}
	tr, err := replay.Parse(f, *traceFile, *prefix)
	f.Close()
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, "ready"); err != nil {
		return err
	}
	if _, err := bufio.NewReader(stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}
	rep := workerReport{Results: make([]replay.Result, len(*roots))}
	errs := make([]error, len(*roots))
	var wg sync.WaitGroup
	for i, root := range *roots {
		wg.Go(func() { rep.Results[i], errs[i] = replay.Run(ctx, tr, root) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		rep.Error = err.Error()
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// measure is one run of a workload on every node.
type measure struct {
	Wall        time.Duration   // from "go" to the last process finishing
	CPU         time.Duration   // user + system time of the client processes, start-up included
	CPUPerNode  []time.Duration // the same, summed per node (node i's processes)
	Procs       []time.Duration // per process: its own replay or import time
	Sched       replay.Sched    // replays: their threads' CPU and wait for a CPU, summed
	Divergences int
	First       string
}

// gang is a set of started processes that each print "ready", wait for a
// line on stdin, work, print one result line and exit.
type gang struct {
	cmds    []*exec.Cmd
	stdins  []io.WriteCloser
	outs    []*bufio.Reader
	stderrs []*cappedBuffer
}

// startGang starts the commands and waits until every one is ready.
func startGang(ctx context.Context, timeout time.Duration, cmds []*exec.Cmd) (*gang, error) {
	g := &gang{}
	fail := func(err error) (*gang, error) {
		g.kill()
		return nil, err
	}
	for _, cmd := range cmds {
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return fail(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return fail(err)
		}
		stderr := prepare(cmd)
		if err := cmd.Start(); err != nil {
			return fail(fmt.Errorf("start %s: %w", cmd.Path, err))
		}
		g.cmds = append(g.cmds, cmd)
		g.stdins = append(g.stdins, stdin)
		g.outs = append(g.outs, bufio.NewReader(stdout))
		g.stderrs = append(g.stderrs, stderr)
	}
	lines, err := g.readLines(ctx, timeout)
	if err != nil {
		return fail(fmt.Errorf("waiting for ready: %w", err))
	}
	for i, l := range lines {
		if strings.TrimSpace(l) != "ready" {
			return fail(fmt.Errorf("process %d said %q, not ready: %s", i, l, g.stderrs[i].String()))
		}
	}
	return g, nil
}

// readLines reads one line from every process, concurrently.
func (g *gang) readLines(ctx context.Context, timeout time.Duration) ([]string, error) {
	lines := make([]string, len(g.outs))
	errs := make([]error, len(g.outs))
	var wg sync.WaitGroup
	for i, out := range g.outs {
		wg.Go(func() {
			lines[i], errs[i] = out.ReadString('\n')
			if errs[i] != nil {
				errs[i] = fmt.Errorf("process %d (%s): %w: %s", i, g.cmds[i].Path, errs[i], g.stderrs[i].String())
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return lines, errors.Join(errs...)
	case <-time.After(timeout):
		g.kill()
		<-done
		return nil, fmt.Errorf("no answer from %d processes within %v", len(g.outs), timeout)
	case <-ctx.Done():
		g.kill()
		<-done
		return nil, ctx.Err()
	}
}

// run releases every process and returns their result lines and the
// wall time until the last one answered.
func (g *gang) run(ctx context.Context, timeout time.Duration) ([]string, time.Duration, error) {
	start := time.Now()
	for _, in := range g.stdins {
		_, _ = io.WriteString(in, "go\n")
		in.Close()
	}
	lines, err := g.readLines(ctx, timeout)
	wall := time.Since(start)
	g.wait()
	return lines, wall, err
}

func (g *gang) kill() {
	for _, c := range g.cmds {
		killGroup(c)
	}
	g.wait()
}

func (g *gang) wait() {
	for _, c := range g.cmds {
		_ = c.Wait()
	}
}

// cpu sums the user and system time of the finished processes (their
// rusage at exit), in total and per node: perNode consecutive processes
// make one node.
func (g *gang) cpu(perNode int) (time.Duration, []time.Duration) {
	var total time.Duration
	nodes := make([]time.Duration, (len(g.cmds)+perNode-1)/max(perNode, 1))
	for i, c := range g.cmds {
		if ps := c.ProcessState; ps != nil {
			d := ps.UserTime() + ps.SystemTime()
			total += d
			nodes[i/perNode] += d
		}
	}
	return total, nodes
}

// runReplay replays the trace on every node: one worker process per
// node, one simulated process per root of that node.
func (r *runner) runReplay(ctx context.Context, roots [][]string, timeout time.Duration) (measure, error) {
	cmds := make([]*exec.Cmd, len(roots))
	for i, nodeRoots := range roots {
		args := []string{WorkerCommand, "--trace", r.traceInfo.File, "--prefix", r.backing}
		for _, root := range nodeRoots {
			args = append(args, "--root", root)
		}
		cmds[i] = exec.Command(r.cfg.Self, args...)
		// Fewer preemption signals interrupting FUSE requests mid-flight.
		cmds[i].Env = environ("GODEBUG=asyncpreemptoff=1")
	}
	g, err := startGang(ctx, r.cfg.StepTimeout, cmds)
	if err != nil {
		return measure{}, fmt.Errorf("replay workers: %w", err)
	}
	lines, wall, err := g.run(ctx, timeout)
	if err != nil {
		return measure{}, fmt.Errorf("replay: %w", err)
	}
	m := measure{Wall: wall}
	m.CPU, m.CPUPerNode = g.cpu(1) // one worker per node
	for i, l := range lines {
		var rep workerReport
		if err := json.Unmarshal([]byte(l), &rep); err != nil {
			return measure{}, fmt.Errorf("replay worker %d: %w in %q", i, err, l)
		}
		if rep.Error != "" {
			return measure{}, fmt.Errorf("replay worker %d: %s", i, rep.Error)
		}
		for _, res := range rep.Results {
			m.Procs = append(m.Procs, res.Duration)
			m.Sched.Run += res.Sched.Run
			m.Sched.Wait += res.Sched.Wait
			m.Divergences += res.Divergences
			if m.First == "" {
				m.First = res.First
			}
		}
	}
	return m, nil
}

// importScript imports the workload after a barrier: interpreter start-up
// (identical in every mode, from local disk) happens before "ready", the
// import is what is timed.
func (r *runner) importScript() string {
	return "import sys, time; print('ready', flush=True); sys.stdin.readline(); t0 = time.perf_counter(); " +
		r.importStatement() + "; print(time.perf_counter() - t0, flush=True)"
}

// runImports runs one python3 import per root on every node at once.
func (r *runner) runImports(ctx context.Context, roots [][]string) (measure, error) {
	var cmds []*exec.Cmd
	for _, nodeRoots := range roots {
		for _, root := range nodeRoots {
			cmd := exec.Command(r.cfg.Python, "-c", r.importScript())
			cmd.Env = r.pythonEnv(root)
			cmd.Dir = "/"
			cmds = append(cmds, cmd)
		}
	}
	g, err := startGang(ctx, r.cfg.StepTimeout, cmds)
	if err != nil {
		return measure{}, fmt.Errorf("python imports: %w", err)
	}
	lines, wall, err := g.run(ctx, r.cfg.StepTimeout)
	if err != nil {
		return measure{}, fmt.Errorf("python imports: %w", err)
	}
	m := measure{Wall: wall}
	m.CPU, m.CPUPerNode = g.cpu(len(roots[0]))
	for i, l := range lines {
		s, err := strconv.ParseFloat(strings.TrimSpace(l), 64)
		if err != nil {
			return measure{}, fmt.Errorf("python import %d printed %q: %s", i, l, g.stderrs[i].String())
		}
		m.Procs = append(m.Procs, time.Duration(s*float64(time.Second)))
	}
	return m, nil
}

// median of durations (0 for none).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
