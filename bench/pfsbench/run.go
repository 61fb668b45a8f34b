package pfsbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/bench/replay"
	"github.com/hpc-copper/copper/bench/slowpfs"
	"github.com/hpc-copper/copper/internal/osutil"
)

// runner is the state of one Run.
type runner struct {
	cfg     Config
	started time.Time
	cleanup cleanups

	work         string // scratch root
	ownWork      bool   // created by Run, removed at the end
	backing      string // the emulated filesystem's content: <work>/pfs
	pfsMounts    string // slowpfs client mounts: <work>/pfsmnt/<i>
	copperMounts string // <work>/copper/<rank>
	localDir     string // staging copies: <work>/local/<node>
	runtimeDir   string // XDG_RUNTIME_DIR for copper control sockets
	logDir       string
	emuSock      string

	trace     *replay.Trace
	traceInfo TraceInfo
	manifest  string // copper+prefetch manifest, written on first use
	res       *Results
}

// Run runs the benchmark and writes its results to cfg.Out. It returns
// the results even when some runs failed (their rows say why); the error
// then lists the failures. Every helper process and mount is gone when
// it returns.
func Run(ctx context.Context, cfg Config, command string) (res *Results, err error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("pfsbench: %w", err)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("pfsbench: output directory: %w", err)
	}
	r := &runner{cfg: cfg, started: time.Now()}
	if err := r.makeWork(); err != nil {
		return nil, fmt.Errorf("pfsbench: %w", err)
	}
	r.res = &Results{Label: cfg.Label, Command: command, Started: r.started, Machine: machine(cfg.Python)}
	defer func() {
		if cerr := r.finish(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("pfsbench cleanup: %w", cerr))
		}
	}()

	if len(cfg.ReplayNodes)+len(cfg.ImportNodes) > 0 || cfg.Scale.Nodes > 0 {
		r.progress("building the package tree on the emulated filesystem")
		if r.res.Tree, err = r.buildTree(ctx); err != nil {
			return nil, fmt.Errorf("pfsbench: %w", err)
		}
		r.progress("recording %q with strace", r.importStatement())
		if r.trace, r.traceInfo, err = r.recordTrace(ctx); err != nil {
			return nil, fmt.Errorf("pfsbench: %w", err)
		}
		r.res.Trace = r.traceInfo
	}
	r.res.Settings = r.settings()

	for _, work := range []string{WorkReplay, WorkImport} {
		nodes := cfg.ReplayNodes
		if work == WorkImport {
			nodes = cfg.ImportNodes
		}
		for _, n := range nodes {
			for _, mode := range cfg.Modes {
				if ctx.Err() != nil {
					return r.res, r.save(ctx.Err())
				}
				r.runRepeated(ctx, work, mode, n)
			}
		}
	}
	if n := cfg.Scale.Nodes; n > 0 {
		r.progress("scale model: server capacity divided by %.1f (%d×%d client processes vs %d×%d here)",
			cfg.Scale.Ratio(cfg.Procs), cfg.Scale.RefNodes, cfg.Scale.RefProcs, n, cfg.Procs)
		for _, mode := range cfg.Scale.Modes {
			if ctx.Err() != nil {
				return r.res, r.save(ctx.Err())
			}
			r.runMode(ctx, WorkScale, mode, n)
		}
	}
	if cfg.Large.Bytes > 0 && ctx.Err() == nil {
		r.runLarge(ctx)
	}
	if slices.Contains(cfg.Modes, ModeCopper) && ctx.Err() == nil && r.trace != nil {
		r.progress("warm import: local disk vs a non-root copper mount, %d alternating rounds", cfg.WarmImportRounds)
		wi, err := r.warmImport(ctx)
		if err != nil {
			r.res.Errors = append(r.res.Errors, fmt.Sprintf("warm import vs local disk: %v", err))
		} else {
			r.res.WarmImport = wi
		}
	}
	return r.res, r.save(ctx.Err())
}

// save computes the targets and writes every output file; failures of
// single runs become the returned error.
func (r *runner) save(cause error) error {
	r.res.Elapsed = time.Since(r.started).Seconds()
	r.res.computeTargets()
	var errs []error
	if cause != nil {
		errs = append(errs, cause)
		r.res.Errors = append(r.res.Errors, "interrupted: "+cause.Error())
	}
	for _, write := range []func(string) error{r.res.writeJSON, r.res.writeCSV, r.res.writeMarkdown, r.res.writeSVG, r.res.writeIssue9} {
		if err := write(r.cfg.Out); err != nil {
			errs = append(errs, err)
		}
	}
	for _, e := range r.res.Errors {
		errs = append(errs, errors.New(e))
	}
	r.progress("wrote %s", strings.Join([]string{"results.json", "results.csv", FragmentFile, PlotFile, Issue9File}, ", "))
	return errors.Join(errs...)
}

func (r *runner) makeWork() error {
	work := r.cfg.Work
	if work == "" {
		dir, err := os.MkdirTemp("", "pfsbench-")
		if err != nil {
			return err
		}
		work, r.ownWork = dir, true
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	work, err := filepath.Abs(work)
	if err != nil {
		return err
	}
	r.work = work
	r.backing = filepath.Join(work, "pfs")
	r.pfsMounts = filepath.Join(work, "pfsmnt")
	r.copperMounts = filepath.Join(work, "copper")
	r.localDir = filepath.Join(work, "local")
	r.runtimeDir = filepath.Join(work, "run")
	r.logDir = filepath.Join(work, "logs")
	r.emuSock = filepath.Join(work, "slowpfs.sock")
	for _, d := range []string{r.backing, r.pfsMounts, r.copperMounts, r.runtimeDir, r.logDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return os.Chmod(r.backing, 0o755)
}

// finish undoes everything: helpers in reverse order of start, then any
// process still naming the scratch directory (a daemon that never
// reported its pid), then any mount left, then the directory itself.
func (r *runner) finish() error {
	var errs []error
	if err := r.cleanup.popTo(0); err != nil {
		errs = append(errs, err)
	}
	for _, pid := range osutil.ProcessesMentioning(r.work) {
		errs = append(errs, fmt.Errorf("pid %d still running after cleanup; killed", pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid, r.work, 5*time.Second)
	}
	if err := detachAll(r.work); err != nil {
		errs = append(errs, err)
	}
	if r.ownWork {
		if err := removeWork(r.work); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "[pfsbench %s +%.1fs] %s\n", r.cfg.Label, time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
}

// env is one mode's setup at one scale.
type env struct {
	em     *emulator
	tree   *copperTree
	roots  [][]string // per node, per process
	setup  time.Duration
	setupB *Backend
	// reaped: this process's children's CPU before the setup (see
	// setupCPU); staging: the tar -c's and the N tar -x's CPU (rusage)
	reaped   time.Duration
	stageCPU stageCPU
	host     hostClock // from the setup's start
	// copper+prefetch: the wait for every node's prefetch (part of
	// setup) and each node's summary.
	prefetch          time.Duration
	prefetchSummaries []string
}

// startEnv brings up a mode at n nodes.
func (r *runner) startEnv(ctx context.Context, work, mode string, n int) (*env, error) {
	p := r.cfg.Procs
	params := r.paramsFor(work)
	e := &env{roots: make([][]string, n), reaped: childrenCPU(), host: startHostClock()}
	each := func(root func(node, proc int) string) {
		for i := range n {
			e.roots[i] = make([]string, p)
			for j := range p {
				e.roots[i][j] = root(i, j)
			}
		}
	}
	var err error
	switch mode {
	case ModeLocal:
		each(func(int, int) string { return r.backing })
		return e, nil
	case ModeDirect:
		clients := n
		if r.cfg.DirectClients == "process" {
			clients = n * p
		}
		if e.em, err = r.startEmulator(ctx, clients, params); err != nil {
			return nil, err
		}
		each(func(i, j int) string {
			if r.cfg.DirectClients == "process" {
				return e.em.clients[i*p+j]
			}
			return e.em.clients[i]
		})
	case ModeCopper, ModePrefetch:
		var extra []string
		if mode == ModePrefetch {
			manifest, err := r.prefetchManifest()
			if err != nil {
				return nil, err
			}
			extra = []string{"--prefetch", manifest}
		}
		if e.em, err = r.startEmulator(ctx, 1, params); err != nil {
			return nil, err
		}
		job := fmt.Sprintf("pfsbench-n%d-%d", n, time.Now().UnixNano())
		if e.tree, err = r.startCopper(ctx, n, e.em.clients[0], job, extra...); err != nil {
			return nil, err
		}
		e.setup = e.tree.ready
		if mode == ModePrefetch {
			// The nodes prefetch in the background from tree-ready on;
			// the job waits for all of them before its processes start.
			if e.prefetch, e.prefetchSummaries, err = e.tree.waitPrefetched(ctx, r.cfg.StepTimeout); err != nil {
				return nil, err
			}
			e.setup += e.prefetch
		}
		each(func(i, _ int) string { return e.tree.mounts[i] })
	case ModeStaging:
		if e.em, err = r.startEmulator(ctx, n, params); err != nil {
			return nil, err
		}
		var locals []string
		if e.setup, locals, e.stageCPU, err = r.stage(ctx, e.em, n); err != nil {
			return nil, err
		}
		each(func(i, _ int) string { return locals[i] })
	default:
		return nil, fmt.Errorf("mode %q cannot run", mode)
	}
	snap, err := e.em.reset(ctx)
	if err != nil {
		return nil, err
	}
	e.setupB = backendOf(snap)
	return e, nil
}

// runMode runs one workload cold then warm in one mode at n nodes and
// records both, or the failure.
func (r *runner) runMode(ctx context.Context, work, mode string, n int) {
	mark := r.cleanup.mark()
	rows := []Row{
		{Workload: work, Mode: mode, Nodes: n, Procs: r.cfg.Procs, Phase: "cold", Command: r.runCommand(work, mode)},
		{Workload: work, Mode: mode, Nodes: n, Procs: r.cfg.Procs, Phase: "warm", Command: r.runCommand(work, mode)},
	}
	fail := func(err error) {
		for i := range rows {
			if rows[i].Error == "" && rows[i].RunS == 0 {
				rows[i].Error = err.Error()
			}
		}
		r.res.Errors = append(r.res.Errors, fmt.Sprintf("%s %s N=%d: %v", work, mode, n, err))
		r.progress("%s N=%d %s: FAILED: %v", mode, n, work, err)
	}
	defer func() {
		if err := r.cleanup.popTo(mark); err != nil {
			r.res.Errors = append(r.res.Errors, fmt.Sprintf("%s %s N=%d: stop: %v", work, mode, n, err))
		}
		r.res.Runs = append(r.res.Runs, rows...)
	}()

	r.progress("%s N=%d %s: setting up", mode, n, work)
	e, err := r.startEnv(ctx, work, mode, n)
	if err != nil {
		fail(err)
		return
	}
	e.recordSetup(&rows[0], mode)
	var daemons []int
	if e.tree != nil {
		daemons = e.tree.pids
	}
	var emuPid []int
	if e.em != nil {
		emuPid = []int{e.em.cmd.Process.Pid}
	}
	var calls []*nodeCounters // the nodes' counters before the phase
	for i := range rows {
		r.progress("%s N=%d %s %s", mode, n, work, rows[i].Phase)
		daemonCPU, emuCPU := cpuTimes(daemons), cpuTime(emuPid)
		if i == 0 {
			rows[0].SetupCPU, rows[0].SetupHost = e.setupCPU(daemonCPU), e.host.stop(sumDurations(daemonCPU)+childrenCPU()-e.reaped+emuCPU)
			if e.tree != nil { // read before the phase's CPU: stats cost the daemons some
				calls, daemonCPU = e.tree.counters(ctx), cpuTimes(daemons)
			}
		}
		var m measure
		phaseHost := startHostClock()
		if work != WorkImport {
			m, err = r.runReplay(ctx, e.roots, r.timeoutFor(work))
		} else {
			m, err = r.runImports(ctx, e.roots)
		}
		if err != nil {
			fail(err)
			return
		}
		row := &rows[i]
		row.RunS = secs(m.Wall)
		row.TotalS = row.SetupS + row.RunS
		row.ProcMedianS, row.ProcMaxS = secs(median(m.Procs)), secs(maxOf(m.Procs))
		row.Divergences = m.Divergences
		row.CPUClientsS = secs(m.CPU)
		row.CPUClientPerNodeS = secondsOf(m.CPUPerNode)
		row.CPUDaemonPerNodeS = nil
		for k, after := range cpuTimes(daemons) {
			row.CPUDaemonPerNodeS = append(row.CPUDaemonPerNodeS, secs(max(after-daemonCPU[k], 0)))
			row.CPUDaemonsS += row.CPUDaemonPerNodeS[k]
		}
		row.CPUEmulatorS = secs(cpuTime(emuPid) - emuCPU)
		row.CPUFloorS = (row.CPUClientsS + row.CPUDaemonsS + row.CPUEmulatorS) / float64(runtime.NumCPU())
		row.Host = phaseHost.stop(time.Duration((row.CPUFloorS * float64(runtime.NumCPU())) * float64(time.Second))).withSched(m.Sched)
		calls = r.recordCalls(ctx, e, row, calls)
		if m.Divergences > 0 && mode != ModeLocal {
			r.progress("%s N=%d %s %s: %d replay divergences, first: %s", mode, n, work, row.Phase, m.Divergences, m.First)
		}
		if e.em != nil {
			snap, err := e.em.reset(ctx)
			if err != nil {
				fail(err)
				return
			}
			row.Backend = backendOf(snap)
		}
		r.progress("%s N=%d %s %s: %.3f s (+%.3f s setup; CPU floor %.3f s)", mode, n, work, row.Phase, row.RunS, row.SetupS, row.CPUFloorS)
	}
	r.afterPhases(ctx, e, rows, work, mode, n)
}

// recordSetup puts the setup's measurements in the cold row.
func (e *env) recordSetup(row *Row, mode string) {
	row.SetupS = secs(e.setup)
	row.PrefetchS, row.Prefetch = secs(e.prefetch), e.prefetchSummaries
	if mode == ModeStaging || mode == ModeCopper || mode == ModePrefetch {
		row.SetupBackend = e.setupB
	}
	if e.tree != nil {
		row.Daemons = e.tree.starts
	}
}

// afterPhases records what is measured after both phases: the copper
// nodes' memory; at direct N=1 of the replay, the emulator's round trip
// one request at a time (the scale model's).
func (r *runner) afterPhases(ctx context.Context, e *env, rows []Row, work, mode string, n int) {
	if e.tree != nil {
		mem, err := e.tree.memory(ctx, fmt.Sprintf("%s-%s-n%d", work, mode, n))
		if err != nil {
			r.res.Errors = append(r.res.Errors, fmt.Sprintf("%s %s N=%d: memory: %v", work, mode, n, err))
		}
		rows[1].Memory = mem
		rows[0].ReadyPolicy = e.tree.policy // rows[0].Daemons (recordSetup) shares starts, probes included
	}
	if mode == ModeDirect && n == 1 && work == WorkReplay && e.em != nil && len(e.roots) > 0 && len(e.roots[0]) > 0 {
		rt, err := measureRoundTrip(ctx, e.em, e.roots[0][0])
		if err != nil {
			r.res.Errors = append(r.res.Errors, fmt.Sprintf("%s %s N=%d: round trip: %v", work, mode, n, err))
		}
		rows[1].RoundTrip = rt
	}
}

// runCommand is how a run's processes were started, for the report.
func (r *runner) runCommand(work, mode string) string {
	root := map[string]string{
		ModeLocal:    "<pfs backing dir>",
		ModeDirect:   "<pfs client of the node>",
		ModeCopper:   "<copper mount of the node>",
		ModePrefetch: "<copper mount of the node>",
		ModeStaging:  "<node-local copy>",
	}[mode]
	if work != WorkImport {
		return fmt.Sprintf("per node: pfsbench %s --trace import.strace --prefix <pfs backing dir> %s",
			WorkerCommand, strings.Repeat("--root "+root+" ", r.cfg.Procs))
	}
	return fmt.Sprintf("per process: PYTHONPATH=%s/site %s -c %s", root, r.cfg.Python, quoteArgs([]string{r.importScript()})[0])
}

// paramsFor is the emulated server of a workload's rows: the scale
// model's for WorkScale, the configured one otherwise.
func (r *runner) paramsFor(work string) slowpfs.Params {
	if work == WorkScale {
		// check() made sure the scaling succeeds.
		if q, err := r.cfg.Params.ScaleCapacity(r.cfg.Scale.Ratio(r.cfg.Procs)); err == nil {
			return q
		}
	}
	return r.cfg.Params
}

// timeoutFor bounds one run of a workload's rows.
func (r *runner) timeoutFor(work string) time.Duration {
	if work == WorkScale {
		return max(r.cfg.StepTimeout, r.cfg.Scale.StepTimeout)
	}
	return r.cfg.StepTimeout
}

func (r *runner) settings() Settings {
	p := r.cfg.Params
	var scale *ScaleSettings
	if s := r.cfg.Scale; s.Nodes > 0 {
		q := r.paramsFor(WorkScale)
		scale = &ScaleSettings{Nodes: s.Nodes, RefNodes: s.RefNodes, RefProcs: s.RefProcs,
			Ratio: s.Ratio(r.cfg.Procs), Params: q, MetadataOpsSec: q.MetadataOpsPerSecond(),
			EmulatorCmd: "slowpfs " + strings.Join(quoteArgs(r.emulatorArgs(1, q)), " ")}
	}
	return Settings{
		Scale:          scale,
		Params:         p,
		MetadataOpsSec: p.MetadataOpsPerSecond(),
		ClientCacheS:   r.cfg.ClientCache.Seconds(),
		DirectClients:  r.cfg.DirectClients,
		Import:         r.cfg.Import,
		Procs:          r.cfg.Procs,
		ReplayNodes:    r.cfg.ReplayNodes,
		ImportNodes:    r.cfg.ImportNodes,
		EmulatorCmd:    "slowpfs " + strings.Join(quoteArgs(r.emulatorArgs(1, p)), " "),
		CopperCmd: "copper-node --book <book> --rank R --token-file <token> --mount <dir> --target <pfs client 0> --log-dir <dir> --job-id <job> " +
			"--log-level 2 --cache-memory-bytes 536870912 --ready-timeout-s 60 --rpc-timeout-s 60 --stop-timeout 10s " +
			strings.Join(r.cfg.CopperFlags, " "),
		PrefetchCmd: "copper-node ... (as copper) --prefetch <manifest: every path the trace touches and the directories above, under <pfs client 0>>; " +
			"then on every node at once: copper-node wait --mount <dir> --prefetched --timeout " + r.cfg.StepTimeout.String(),
		ReplayCmd: r.runCommand(WorkReplay, ModeCopper),
		ImportCmd: fmt.Sprintf("PYTHONPATH=<root>/site PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 OPENBLAS_NUM_THREADS=1 %s -c %s",
			r.cfg.Python, quoteArgs([]string{r.importScript()})[0]),
	}
}

// warmImport alternates single warm imports from local disk and from
// rank 1 of a 2-node copper whose root reads the emulated filesystem.
func (r *runner) warmImport(ctx context.Context) (*WarmImport, error) {
	mark := r.cleanup.mark()
	defer func() { _ = r.cleanup.popTo(mark) }()
	em, err := r.startEmulator(ctx, 1, r.cfg.Params)
	if err != nil {
		return nil, err
	}
	tree, err := r.startCopper(ctx, 2, em.clients[0], fmt.Sprintf("pfsbench-warm-%d", time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	one := func(root string) (float64, error) {
		m, err := r.runImports(ctx, [][]string{{root}})
		if err != nil {
			return 0, err
		}
		return secs(m.Procs[0]), nil
	}
	leaf := tree.mounts[1]
	// Warm both: the first import through the mount fills copper's and
	// the kernel's caches, the first local one the page cache.
	for _, root := range []string{leaf, r.backing} {
		if _, err := one(root); err != nil {
			return nil, err
		}
	}
	w := &WarmImport{Rounds: r.cfg.WarmImportRounds}
	for range r.cfg.WarmImportRounds {
		l, err := one(r.backing)
		if err != nil {
			return nil, err
		}
		m, err := one(leaf)
		if err != nil {
			return nil, err
		}
		w.LocalS, w.MountS = append(w.LocalS, l), append(w.MountS, m)
	}
	w.LocalMedS, w.MountMedS = medianF(w.LocalS), medianF(w.MountS)
	if w.LocalMedS > 0 {
		w.Ratio = w.MountMedS / w.LocalMedS
	}
	w.Command = fmt.Sprintf("alternately PYTHONPATH=<pfs backing dir>/site and PYTHONPATH=<rank 1 mount>/site %s -c %s (import time inside the process)",
		r.cfg.Python, quoteArgs([]string{r.importScript()})[0])
	return w, nil
}

// setupCPU is the cold row's setup CPU, read just before the cold phase:
// copper's daemons (their CPU so far) and their foreground processes
// (reaped once the daemon is ready), staging's extractions; nil else.
func (e *env) setupCPU(daemonCPU []time.Duration) *SetupCPU {
	switch {
	case e.tree != nil:
		return &SetupCPU{DaemonStartS: secs(sumDurations(daemonCPU) + childrenCPU() - e.reaped)}
	case e.stageCPU.extract > 0:
		return &SetupCPU{ExtractS: secs(e.stageCPU.extract), CreateS: secs(e.stageCPU.create), ExtractEmulatorS: secs(e.stageCPU.extractEmulator)}
	}
	return nil
}

func sumDurations(ds []time.Duration) (t time.Duration) {
	for _, d := range ds {
		t += d
	}
	return t
}

func secondsOf(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = secs(d)
	}
	return out
}

func medianF(v []float64) float64 {
	ds := make([]time.Duration, len(v))
	for i, x := range v {
		ds[i] = time.Duration(x * float64(time.Second))
	}
	return secs(median(ds))
}

// machine describes this machine for the report.
func machine(python string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Commit: "unknown"}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = "Linux " + utsString(u.Release[:])
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		m.MemGiB = int((uint64(si.Totalram)*uint64(si.Unit) + 1<<29) >> 30)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command(python, "--version").CombinedOutput(); err == nil {
		m.Python = strings.TrimSpace(string(out))
	}
	return m
}

func utsString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}
