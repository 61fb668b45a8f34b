package scalemodel

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Markdown is the docs/BENCHMARKS.md section of the report. Every number
// in it comes from the report (the calibration's measured or published
// inputs, the measured rows, the model's outputs).
func (rep *Report) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	for _, section := range []func(printf){
		rep.mdIntro,
		rep.mdInputs,
		rep.mdValidation,
		rep.mdValidationSummary,
		rep.mdMisses,
		rep.mdCounts,
		rep.mdFuse,
		rep.mdCPU,
		rep.mdDaemons,
		rep.mdProjection,
		rep.mdTargets,
		rep.mdPaper,
		rep.mdSharding,
		rep.mdSensitivity,
		rep.mdLarge,
		rep.findings,
		rep.mdLeftOut,
		rep.mdCommands,
	} {
		section(p)
	}
	return b.String()
}

// printf writes one formatted piece of the section.
type printf = func(format string, args ...any)

// mdIntro writes the heading and what is measured and what modelled.
func (rep *Report) mdIntro(p printf) {
	p("## Scale model (issue #13): modelled, validated at N ≤ 32\n\n")
	p("Numbers from `%s` on the calibration of %s (`%s`). **Measured** here: the validation rows' *measured* column, and the costs marked measured below. **Modelled**: every other number in this section, from `bench/scalemodel`, a deterministic discrete-event model (no clock) of N nodes × P processes replaying the recorded import (%d traced operations; the tree holds %d files, %d directories, %.1f MiB), with kernel caches per node, copper's per-node cache and singleflight, dirplus (with each directory's small files shipped by the root, and the kernel's READDIRPLUS listings after which the node pushes the listed small files into the page cache), the tree from `tree.Locate`, each hop's CPU and wire, a root's `backend_parallel` slots, and the filesystem as metadata slots and a shared bandwidth.\n\n",
		rep.Command, rep.Created, rep.CalibrationFile, rep.TraceOps, rep.Tree.Files, rep.Tree.Dirs, float64(rep.Tree.Bytes)/(1<<20))
}

// mdInputs writes the costs, servers and machine the model runs on,
// each with its source.
func (rep *Report) mdInputs(p printf) {
	p("### Inputs\n\n| input | value | kind and source |\n|---|---|---|\n")
	k := rep.Costs
	row := func(name, val, key string) { p("| %s | %s | %s |\n", name, val, rep.Sources[key]) }
	row("client syscall, local disk", us(k.ClientOpNative), "costs.client_op_native_s")
	row("client syscall, FUSE mount, cached", us(k.ClientOpMount), "costs.client_op_mount_s")
	if k.ClientOpNative > 0 {
		p("| FUSE overhead of a cached syscall, mount vs local disk | %.2f× | measured: the two rows above (the trace's warm replay through copper's mount against the same replay on local disk; `bench/statloop` measures the same for one stat in `make bench`) |\n", k.ClientOpMount/k.ClientOpNative)
	}
	if k.ClientOpStaged > 0 {
		row("client syscall, a node's staged copy (staging)", us(k.ClientOpStaged), "costs.client_op_staged_s")
	}
	row("client side of a FUSE request", us(k.ClientReq), "costs.client_req_s")
	row("client per byte through FUSE", fmt.Sprintf("%.2f ns", k.ClientByte*1e9), "costs.client_byte_s")
	row("emulator per request (validation only)", us(k.EmulatorOp), "costs.emulator_op_s")
	row("emulator per byte (validation only)", fmt.Sprintf("%.2f ns", k.EmulatorByte*1e9), "costs.emulator_byte_s")
	if k.EmulatorTar > 0 {
		v := fmt.Sprintf("%.2f ns", k.EmulatorTar*1e9)
		if h := rep.HostCosts; h != nil && h.EmulatorTar > 0 {
			v += fmt.Sprintf("; this host: %.2f ns + %.3f s per setup", h.EmulatorTar*1e9, h.TarSetupEmu)
		}
		row("emulator per byte of staging's tarball reads (validation only)", v, "costs.emulator_tarbyte_s")
	}
	row("copper-node per FUSE request or push", us(k.DaemonReq), "costs.daemon_req_s")
	if c := rep.Listing; c.ReaddirplusPerListing > 0 {
		row("READDIRPLUS requests per listed directory", fmt.Sprintf("%.1f", c.ReaddirplusPerListing), "readdirplus_per_listing")
	}
	if c := rep.Listing; c.DirFiles > 0 {
		row("small files shipped with their directory", fmt.Sprintf("up to %d KiB each", c.DirFiles>>10), "dir_files_max_bytes")
	}
	if c := rep.Listing; c.FuseMaxRead > 0 {
		row("FUSE max_read, readahead window", fmt.Sprintf("%d KiB, %d KiB", c.FuseMaxRead>>10, c.FuseReadahead>>10), "fuse_max_read_bytes")
	}
	row("parent↔child call, both ends", us(k.HopCPU), "costs.hop_cpu_s")
	row("parent↔child call per answer byte", fmt.Sprintf("%.2f ns", k.HopByte*1e9), "costs.hop_byte_s")
	if h := rep.HostCosts; h != nil && h.HopCPU > 0 && h.HopCPU != k.HopCPU {
		row("parent↔child call on this host (validation only)", us(h.HopCPU), "host_costs.hop_cpu_s")
	}
	row("copper-node start", fmt.Sprintf("%.3f s", k.NodeStart), "costs.node_start_s")
	if k.NodeStartCPU > 0 {
		row("its CPU (charged on the host's cores, all starts at once)", fmt.Sprintf("%.3f s", k.NodeStartCPU), "costs.node_start_cpu_s")
	}
	p("| readiness probe backoff | %.0f ms, doubling to %.0f ms | copper's default ready_probe_initial_ms and ready_probe_max_ms (config.Default) |\n", rep.Probe.Initial*1e3, rep.Probe.Max*1e3)
	policy := "backoff (a child told \"not ready\" waits the backoff before its next probe)"
	if rep.Probe.Policy == PolicyHold {
		policy = fmt.Sprintf("wait at the parent (a serving parent holds a probe until it is tree-ready, at most %.0f ms)", rep.Probe.Hold*1e3)
	}
	row("readiness policy of the measured copper", policy, "ready_probe.policy")
	if k.GatherPerRank > 0 {
		row("all-gather, rank 0 per rank (projection's discover launch)", us(k.GatherPerRank), "costs.gather_per_rank_s")
	}
	if k.BookPerRank > 0 {
		row("facility book, one node's read (projection's facility-book launch)", fmt.Sprintf("%s + %s per entry", secsStr(k.BookBase)+" s", us(k.BookPerRank)), "costs.book_per_rank_s")
	}
	if h := rep.HostCosts; h != nil {
		p("| this host (validation only): client syscall local / mount / staged copy, FUSE request, per byte; emulator per request, per byte; tar -x CPU per node; start CPU per daemon | %s / %s / %s, %s, %.2f ns; %s, %.2f ns; %.3f s; %.3f s | %s |\n",
			us(h.ClientOpNative), us(h.ClientOpMount), us(h.ClientOpStaged), us(h.ClientReq), h.ClientByte*1e9, us(h.EmulatorOp), h.EmulatorByte*1e9, h.TarExtractCPU, h.NodeStartCPU, rep.Sources["host_costs"])
	}
	row("tar -c of the tree", fmt.Sprintf("%.3f s", k.TarCreate), "costs.tar_create_s")
	row("tar -x of the tree", fmt.Sprintf("%.3f s", k.TarExtract), "costs.tar_extract_s")
	row("its CPU", fmt.Sprintf("%.3f s", k.TarExtractCPU), "costs.tar_extract_cpu_s")
	e := rep.Emulator
	p("| validation filesystem (the emulator) | %s per metadata op × %d slots (%.0f ops/s), %.0f MiB/s | %s |\n",
		us(e.MetadataService), e.Slots, e.Capacity(), e.Bandwidth/(1<<20), rep.Sources["emulator"])
	r := rep.Reference
	p("| projection metadata server | %s per op × %d slots × %d MDT (%.0f ops/s) | %s; %s; %s |\n", us(r.MetadataService), r.Slots, r.MDTs, r.Capacity(),
		rep.Sources["reference.metadata_service_s"], rep.Sources["reference.slots"], rep.Sources["reference.mdts"])
	p("| projection data bandwidth | %.0f MiB/s | %s |\n", r.Bandwidth/(1<<20), rep.Sources["reference.bandwidth_bytes_per_s"])
	m := rep.Machine
	p("| projection node | copper-node on %d cores, each process on its own core | %s |\n", m.DaemonCores, rep.Sources["machine.daemon_cores"])
	p("| projection wire | %s one way, %.0f GB/s per node | %s; %s |\n\n", us(m.NetLatency), m.NICBandwidth/1e9,
		rep.Sources["machine.net_latency_s"], rep.Sources["machine.nic_bandwidth_bytes_per_s"])
}

// mdValidation writes the measured-against-modelled rows and how the
// host is modelled.
func (rep *Report) mdValidation(p printf) {
	p("### Validation: measured vs modelled at N ≤ 32 (%d processes per node, this host's %d cores shared by all)\n\n", rep.ValidationProcs, rep.HostCores)
	p("**This host, not a cluster node.** In validation the model puts every process, daemon and the emulator on the host's %d cores and serves the filesystem with the emulator's parameters; in the projection each node has its own cores and none of this host's sharing applies. The host is shared with other jobs, whose load changes from one row to the next, so each row is modelled at the cores' worth the other jobs left it *during that row* (*cores ours*). Marked *s*, a replay phase: every replay process's thread reports its `/proc/thread-self/schedstat` (CPU run and time runnable but waiting for a CPU, in ns, exact at any length); a phase whose replays waited for a CPU ran on a saturated host, where what the other jobs left it is what it got: the run's own CPU in the phase (rusage and /proc/<pid>/stat: clients, daemons, emulator) less the workers' measured start-up, over the run's time; one that never waited is left every core. A copper setup is marked *s* the same way from its daemons' threads' schedstat at their command's return (its CPU: the launching commands' rusage and the daemons' schedstat, over the setup's time). So on this host a phase's time check is mostly a check of its modelled CPU and of the waits the model adds, not an independent prediction of the other jobs. Unmarked, a setup without schedstat: the host's cores less the other jobs' CPU over its window, from `/proc/stat` read by pfsbench around it, the run's own CPU taken off; marked *p* where the row's window is under %.1f s, too short for /proc/stat's 10 ms ticks: those rows get the run's mean over all its windows; a run without windows would get the spin probes' share, %.2f cores' worth got by a probe around the run, %s, turned into the run's per-thread share by `HostShare`). A row whose demand on an idle host is below its share is not slowed (`SpeedShare`: the kernel shares per runnable thread). *Idle host* is the same model with both cores ours.\n\n",
		rep.HostCores, minWindowS, rep.HostAvailable, rep.Sources["host_available_cores"])
	p("%s\n\n", rep.fitNote())
	p("*Run's scatter* is the measured run's own noise: its slowest process's time minus its median's (every process replays the same trace, so the gap is the scheduler's; %s). *Within* says whether the error is within ±25%%, or else within that scatter (not counted as met).\n\n", rep.repeatNote())
	p("| mode | N | quantity | role | measured s | modelled s | error | within | cores ours | run's scatter s | idle host s |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, v := range rep.Validation {
		sc, in := "–", "no"
		if v.Scatter > 0 {
			sc = secsStr(v.Scatter)
		}
		switch {
		case math.Abs(v.Error) <= 0.25:
			in = "±25%"
		case v.WithinNoise():
			in = "scatter"
		}
		avail := fmt.Sprintf("%.2f", v.Available)
		switch {
		case v.AvailableSched:
			avail += " s"
		case !v.AvailableMeasured:
			avail += " p"
		}
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", v.Mode, v.Nodes, v.What, rep.role(v), secsStr(v.Measured), secsStr(v.Modelled), pct(v.Error), in, avail, sc, secsStr(v.ModelledIdle))
	}
	p("\n")
}

// role says what the row's N was used for in the calibration.
func (rep *Report) role(v ValidationRow) string {
	switch {
	case v.HeldOut:
		return "held out"
	case v.Nodes == 1:
		return "N=1 fit"
	case len(rep.FitNodes) > 0:
		return "CPU pooled"
	}
	return "predicted"
}

// fitNote says which rows the calibration read.
func (rep *Report) fitNote() string {
	s := "What was fitted on which rows: a cluster node's costs on the N=1 rows (one worker alone on the cores, as on each node of a job), on which the N=1 rows are modelled too (role *N=1 fit*: their CPU is fitted, their times are not)"
	if len(rep.FitNodes) > 0 {
		s += fmt.Sprintf("; this host's per-operation CPU costs on the rows at N = %s pooled (role *CPU pooled*: their CPU is fitted, their times are not); every row at N = %d is *held out*: its CPU and time are predicted", fmtInts(rep.FitNodes), rep.HeldOutNodes)
	}
	if strings.HasPrefix(rep.Sources["costs.hop_cpu_s"], "fitted") || strings.HasPrefix(rep.Sources["host_costs.hop_cpu_s"], "fitted") {
		s += "; this host's parent↔child call CPU on one copper cold row's CPU (its input above says which)"
	}
	return s + ". No parameter is fitted on a row's time."
}

// mdValidationSummary writes how many rows are within ±25%, by mode and
// quantity, and the worst of each.
func (rep *Report) mdValidationSummary(p printf) {
	within, noise := 0, 0
	for _, v := range rep.Validation {
		if math.Abs(v.Error) <= 0.25 {
			within++
		} else if v.WithinNoise() {
			noise++
		}
	}
	if len(rep.Validation) > 0 {
		worstRun, wr := rep.MaxAbsError("cold run")
		worstWarm, ww := rep.MaxAbsError("warm run")
		worstSetup, ws := rep.MaxAbsError("setup")
		p("* %d of %d rows within ±25%% (target ≤ 25%%); %d more within their run's own scatter, not counted as met.\n", within, len(rep.Validation), noise)
		if rep.HeldOutNodes > 0 {
			hin, hall := 0, 0
			for _, v := range rep.Validation {
				if v.HeldOut {
					hall++
					if math.Abs(v.Error) <= 0.25 {
						hin++
					}
				}
			}
			p("* held out (N = %d, no parameter fitted on any of its rows): %d of %d within ±25%%.\n", rep.HeldOutNodes, hin, hall)
		}
		p("* verdict: %s.\n", verdict(within == len(rep.Validation)))
		type mq struct{ mode, what string }
		var order []mq
		in, all := map[mq]int{}, map[mq]int{}
		var worst = map[mq]float64{}
		for _, v := range rep.Validation {
			k := mq{v.Mode, v.What}
			if all[k] == 0 {
				order = append(order, k)
			}
			all[k]++
			if math.Abs(v.Error) <= 0.25 {
				in[k]++
			}
			worst[k] = math.Max(worst[k], math.Abs(v.Error))
		}
		var parts []string
		for _, k := range order {
			parts = append(parts, fmt.Sprintf("%s %s %d of %d (worst ±%.0f%%)", k.mode, k.what, in[k], all[k], worst[k]*100))
		}
		p("* by mode and quantity: %s.\n", strings.Join(parts, "; "))
		for _, x := range []struct {
			name  string
			worst float64
			row   ValidationRow
		}{{"cold run", worstRun, wr}, {"warm run", worstWarm, ww}, {"setup", worstSetup, ws}} {
			if x.worst >= 0 {
				p("* worst %s: %s at N=%d, %s (measured %s s, modelled %s s).\n", x.name, x.row.Mode, x.row.Nodes, pct(x.row.Error), secsStr(x.row.Measured), secsStr(x.row.Modelled))
			}
		}
		p("\n")
	}
}

// mdMisses writes what each quantity's modelled mechanism is and where
// the model is known to miss.
func (rep *Report) mdMisses(p printf) {
	p("What the model charges for each quantity on this host (prose, no numbers; the rows above give the size):\n\n")
	p("* **all rows**: the host's cores at the share the other jobs left the row (*cores ours*). On a saturated host a run's wall time is its CPU over that share, so a row's time error is mostly its CPU error (the CPU table below) and the rest is the waits the model adds (the emulator's slots and bandwidth, FUSE round trips, the readiness backoff).\n")
	p("* **warm runs** (copper's mount fully cached, staging's local copy): client syscalls only, CPU-bound on the shared cores; this host's costs are the pooled rows' (see above) at N > 1 and N=1's at N=1 (one worker alone); staging's are its own warm rows' (one extracted copy per node costs more per syscall than local mode's one shared tree).\n")
	p("* **copper setup** (tree-ready, node by node): each rank's copper-node command starts when the measured launcher spawned it (pfsbench forking N commands on this host: the row's own spawn offsets, an input like *cores ours*; a cluster starts each node's on its own node), its start CPU (launcher and daemon; this host: pooled per daemon at N > 1, N=1's at N=1) shares the host's cores alike with every other start running then (processor sharing from each one's spawn), so late spawns register late; then the readiness probes as the measured copper does them (%s): backing off, a node whose parent is not yet tree-ready (or not yet serving) waits %.0f ms, doubling, so its readiness is rounded up to its next probe; waiting at the parent, a serving parent holds the probe and the node is ready half a round trip after it, and a parent not yet listening is probed again every %.0f ms; then the rest of the N=1 start's wall time beyond its CPU (the mount). The setup ends at the last node's return.\n",
		rep.Probe.Policy, rep.Probe.Initial*1e3, rep.Probe.Initial*1e3)
	p("* **staging setup**: tar -c through one client (its metadata operations at the emulator's slots, its CPU as measured inside the run where recorded, beyond the requests' client side; one thread runnable, so the other jobs slow it by one thread's share, `SpeedShare(cores, cores ours, 1)`, not the extraction's), then every node's read of the tarball through the emulator's bandwidth and CPU, and its tar -x's measured CPU (this host: pooled per node at N > 1, N=1's at N=1; its read syscalls are inside it, not charged again), plus the timed tar's wait beyond its CPU.\n")
	rep.mdMissed(p)
}

// mdMissed writes each row outside ±25% with what the run says of it:
// its CPU measured and modelled, and where its cores' worth came from.
func (rep *Report) mdMissed(p printf) {
	var lines []string
	for _, v := range rep.Validation {
		if math.Abs(v.Error) <= 0.25 {
			continue
		}
		l := fmt.Sprintf("%s %s at N=%d, %s", v.Mode, v.What, v.Nodes, pct(v.Error))
		if v.CPUMeasured > 0 && v.CPUModelled > 0 {
			l += fmt.Sprintf(": its CPU measured %s s, modelled %s s (%s)", secsStr(v.CPUMeasured), secsStr(v.CPUModelled), pct((v.CPUModelled-v.CPUMeasured)/v.CPUMeasured))
			// Time over CPU: the cores' worth the row used, against what the model gave it.
			l += fmt.Sprintf("; it used %.2f cores' worth (measured CPU over measured time), modelled at %.2f cores ours", v.CPUMeasured/v.Measured, v.Available)
		}
		switch {
		case v.What == "setup" && !v.AvailableMeasured:
			l += fmt.Sprintf(" (*p*: its window under %.1f s, the run's mean share)", minWindowS)
		case v.WithinNoise():
			l += " (within the run's own scatter)"
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		p("* **misses**: none; every row within ±25%%.\n")
	} else {
		p("* **misses** (computed from the run): %s.\n", strings.Join(lines, "; "))
	}
	if rt := rep.RoundTrip; rt != nil && rt.Opens > 0 {
		c := &Calibration{Emulator: rep.Emulator, Costs: rep.Costs}
		p("* **FUSE round trip, one request in flight** (direct N=1, one process opening and closing one file %d times, %d requests counted by the emulator): measured %s per open, modelled %s (the metadata service time and both sides' CPU per request, N=1 costs).\n",
			rt.Opens, rt.Requests, us(rt.WallS/float64(rt.Opens)), us(rt.Modelled(c)/float64(rt.Opens)))
	}
	p("\n")
}

// mdCounts writes the filesystem counters of the measured runs against
// the model's.
func (rep *Report) mdCounts(p printf) {
	if len(rep.Counts) > 0 {
		p("What the filesystem served, the emulator's counters of the same runs against the model's counts (no timing involved):\n\n")
		p("| mode | N | counter | measured | modelled | error |\n|---|---|---|---|---|---|\n")
		for _, c := range rep.Counts {
			p("| %s | %d | %s | %d | %d | %s |\n", c.Mode, c.Nodes, c.What, c.Measured, c.Modelled, errorOf(float64(c.Modelled), float64(c.Measured)))
		}
		p("\n")
	}
}

// mdCPU writes the CPU seconds of the measured runs against the model's.
func (rep *Report) mdCPU(p printf) {
	if len(rep.CPU) > 0 {
		p("CPU seconds of the same runs (clients' rusage, copper-node's and the emulator's /proc counters) against the CPU the model charges: the cost structure, which the host's other load does not change as it changes wall time:\n\n")
		p("| mode | N | phase | measured CPU s | modelled CPU s | error |\n|---|---|---|---|---|---|\n")
		for _, c := range rep.CPU {
			p("| %s | %d | %s | %s | %s | %s |\n", c.Mode, c.Nodes, c.Phase, secsStr(c.Measured), secsStr(c.Modelled), pct((c.Modelled-c.Measured)/c.Measured))
		}
		p("\n")
	}
}

// mdLeftOut writes what the model leaves out.
func (rep *Report) mdLeftOut(p printf) {
	p("### What the model leaves out\n\n")
	if rep.Costs.GatherPerRank > 0 {
		p("* The launcher's own process start on every node (srun, mpiexec): the projection's nodes start their daemons at the same instant (the validation's start at pfsbench's measured spawn offsets); a spread of start times changes how long the readiness waits. The validation's setup has no all-gather and no facility book of its size (pfsbench writes a book of N entries), so the all-gather's per-rank cost and the book's read are measured apart (the control-plane benchmark, calibrate's book read), not validated here.\n")
	} else {
		p("* The launch before tree-ready (the all-gather of addresses, process start by the launcher): this calibration has no all-gather measurement (scalemodel calibrate --gather), so setup is tree-ready alone.\n")
	}
	p("* Failures, heartbeats and failover; the kernel's own dentry revalidation; network contention beyond each node's NIC; the filesystem's other users.\n")
	p("* Processes of a node are identical in the projection (one representative per node, its per-process filesystem operations issued %d times); on the host they are modelled one by one.\n", rep.Procs)
	p("* The server is first come, first served slots and one shared bandwidth: no lock contention or caching inside the MDS.\n\n")
}

// mdCommands writes the commands that measured, calibrated and ran the model.
func (rep *Report) mdCommands(p printf) {
	p("### Commands\n\n")
	if rep.MeasuredBy != "" {
		p("    # the measured run (validation rows; its N=1 rows calibrate the costs)\n    %s\n", rep.MeasuredBy)
	}
	if rep.CalibrateCmd != "" {
		p("    # the calibration (fit, in-process round trip, tar, CPU probe)\n    %s\n", rep.CalibrateCmd)
	}
	p("    # the model (validation and projection; repeatable from the calibration file alone)\n    %s\n", rep.Command)
	cmds := map[string]bool{}
	for _, v := range rep.Validation {
		if v.Command != "" && !cmds[v.Command] {
			cmds[v.Command] = true
		}
	}
	var cl []string
	for c := range cmds {
		cl = append(cl, c)
	}
	sort.Strings(cl)
	if len(cl) > 0 {
		p("    # each measured row\n")
		for _, c := range cl {
			p("    %s\n", c)
		}
	}
	p("\nInputs: `%s` (costs, sources, the workload). Raw outputs: `model.json` of the run.\n", rep.CalibrationFile)
}
