package scalemodel

// Fits that read the measured run beyond its N=1 replay: the setup's CPU
// measured inside the run, and the hop's CPU between processes.

import (
	"errors"
	"fmt"
	"slices"

	"github.com/hpc-copper/copper/bench/pfsbench"
)

// fitSetupCPU takes a copper-node start's CPU from the N=1 copper cold
// row (the daemon's CPU from its start to the cold phase) and an
// extraction's from the N=1 staging cold row (its tar -x's rusage),
// when the run recorded them: measured where the validation was, not in
// a later tar on a differently loaded host.
func fitSetupCPU(cal *Calibration, res *pfsbench.Results) {
	for _, r := range res.Runs {
		if r.Workload != pfsbench.WorkReplay || r.Nodes != 1 || r.Phase != "cold" || r.Error != "" || r.SetupCPU == nil {
			continue
		}
		switch {
		case r.Mode == pfsbench.ModeCopper && r.SetupCPU.DaemonStartS > 0:
			cal.Costs.NodeStartCPU = r.SetupCPU.DaemonStartS
			cal.Sources["costs.node_start_cpu_s"] = "measured: N=1 copper cold replay, CPU of copper-node's launching command (rusage) and of its daemon (schedstat) from its start to the cold phase"
			fitNodeStart(cal, r)
		case r.Mode == pfsbench.ModeStaging && r.SetupCPU.ExtractS > 0:
			if e := r.SetupCPU.ExtractEmulatorS; e > 0 {
				cal.Costs.EmulatorTar = e / float64(cal.Workload.TarBytes())
				cal.Sources["costs.emulator_tarbyte_s"] = "measured: N=1 staging cold replay, the emulator's CPU (its threads' schedstat) while the node's tar -x read the tarball, per tarball byte: one large sequential read costs it less per byte than the trace's small files (emulator_byte_s); this host: the line through the staging setups' (N, emulator CPU) below the held-out N, a part per node's read (per byte) and a part per setup"
			}
			if r.SetupCPU.CreateS > 0 {
				cal.Costs.TarCreateCPU = r.SetupCPU.CreateS
				cal.Sources["costs.tar_create_cpu_s"] = "measured: N=1 staging cold replay, its tar -c's user + system time through the emulator's mount (children's rusage, inside the run)"
			}
			// The wait beyond CPU (the disk) stays the timed tar's.
			wait := max(0, cal.Costs.TarExtract-cal.Costs.TarExtractCPU)
			cal.Costs.TarExtractCPU = r.SetupCPU.ExtractS
			cal.Costs.TarExtract = r.SetupCPU.ExtractS + wait
			cal.Sources["costs.tar_extract_cpu_s"] = "measured: N=1 staging cold replay, its tar -x's user + system time (children's rusage, inside the run)"
		}
	}
}

// hopFitRow is the one measured point beyond N=1 the calibration reads:
// the copper cold row with the most nodes below heldOut (0 = no bound),
// whose non-root daemons' calls to their parents are most of what N=1
// does not show.
func hopFitRow(rows []MeasuredRow, heldOut int) (MeasuredRow, bool) {
	var best MeasuredRow
	for _, m := range rows {
		if heldOut > 0 && m.Nodes >= heldOut {
			continue
		}
		if m.Mode == ModeCopper && m.Phase == "cold" && m.Nodes > 1 && m.CPUS > 0 && m.Nodes > best.Nodes {
			best = m
		}
	}
	return best, best.Nodes > 1
}

// fitHopCPU sets the parent↔child call's CPU from hopFitRow's measured
// CPU. The in-process loop (measureHop) has both ends in one process, so
// it misses what a call between two processes adds (each end's wake-up,
// the scheduler's switch, netpoll's epoll in both daemons); that is a
// lower bound, and the call's CPU is what the N=1 rows cannot show (one
// node makes no calls). The model's CPU is linear in the hop's, so two
// runs solve for it; the in-process figure stays the floor.
func (cal *Calibration) fitHopCPU() error {
	row, ok := hopFitRow(cal.Measured, cal.HeldOutNodes)
	if !ok || cal.Costs.HopCPU <= 0 {
		return nil
	}
	if err := cal.Check(); err != nil {
		return err
	}
	// On this host's costs when fitted (a cluster node keeps the measured
	// call: the fit carries the host's oversubscription); else on both.
	set := func(c *Calibration, h float64) {
		if c.HostCosts != nil {
			hc := *c.HostCosts
			hc.HopCPU = h
			c.HostCosts = &hc
			return
		}
		c.Costs.HopCPU = h
	}
	cpuAt := func(h float64) (float64, error) {
		c := *cal
		set(&c, h)
		r, err := Run(&c, Scenario{Mode: ModeCopper, Nodes: row.Nodes, Procs: cal.Procs, Host: true})
		return r.ColdCPUS, err
	}
	h0 := cal.Costs.HopCPU
	c0, err0 := cpuAt(h0)
	c1, err1 := cpuAt(2 * h0)
	if err := errors.Join(err0, err1); err != nil {
		return fmt.Errorf("fit the hop's CPU at N=%d: %w", row.Nodes, err)
	}
	if c1 <= c0 {
		return nil
	}
	h := max(h0, h0+(row.CPUS-c0)*h0/(c1-c0))
	src := fmt.Sprintf("fitted: the copper cold replay at N=%d (the largest copper row below the held-out N), its measured CPU (%.2f s) against the model's, solved for the call's CPU between two processes on this host; floor: %.1f µs (%s)",
		row.Nodes, row.CPUS, h0*1e6, cal.Sources["costs.hop_cpu_s"])
	if cal.HostCosts != nil {
		cal.Sources["host_costs.hop_cpu_s"] = src
	} else {
		cal.Sources["costs.hop_cpu_s"] = src
	}
	set(cal, h)
	return nil
}

// fitNodeStart takes off the N=1 start's wall time what its daemon spent
// runnable but waiting for a CPU (schedstat): the host's other jobs, not
// a start on a node's own cores. The model charges the rest beyond the
// CPU (the mount, the command's return) after tree-ready.
func fitNodeStart(cal *Calibration, r pfsbench.Row) {
	var wait float64
	for _, d := range r.Daemons {
		wait += d.DaemonWaitS
	}
	if wait <= 0 {
		return
	}
	cal.Costs.NodeStart = max(r.SetupS-wait, min(r.SetupS, r.SetupCPU.DaemonStartS))
	cal.Sources["costs.node_start_s"] = fmt.Sprintf("measured: N=1 copper cold replay's tree-ready wait (one daemon start), %.3f s, less its daemon's wait for a CPU (schedstat), %.3f s", r.SetupS, wait)
}

// fitEmulatorTar fits the emulator's CPU while the staging setups at the
// node counts in fit extracted (setup_cpu.extract_emulator_s) as a part
// per setup and a part per node's tarball read (per byte of tarBytes):
// the line through the setups' (N, CPU), least squares. Measured, the
// per-node CPU falls with N (0.34 s at N=1 to 0.047 s at 32 in one run:
// about 0.3 s per setup and 0.045 s per node), so a per-node charge
// fitted at small N overcharges the large ones. One node count, or a
// line that does not rise, gives the mean per node and no setup part.
func fitEmulatorTar(res *pfsbench.Results, fit []int, tarBytes int64) (perByte, setup float64) {
	var n, sx, sy, sxx, sxy, nodes float64
	for _, r := range res.Runs {
		if r.Workload != pfsbench.WorkReplay || r.Mode != pfsbench.ModeStaging || r.Phase != "cold" || r.Error != "" ||
			!slices.Contains(fit, r.Nodes) || r.SetupCPU == nil || r.SetupCPU.ExtractEmulatorS <= 0 {
			continue
		}
		x, y := float64(r.Nodes), r.SetupCPU.ExtractEmulatorS
		n, sx, sy, sxx, sxy, nodes = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y, nodes+x
	}
	if n == 0 || tarBytes <= 0 {
		return 0, 0
	}
	if d := n*sxx - sx*sx; d > 0 {
		slope := (n*sxy - sx*sy) / d
		if icept := (sy - slope*sx) / n; slope > 0 && icept >= 0 {
			return slope / float64(tarBytes), icept
		}
	}
	return sy / nodes / float64(tarBytes), 0
}
