package scalemodel

// This host against a cluster node. The N=1 rows give a cluster node's
// costs: one worker alone on the cores, as each node of a job is. On this
// host every worker shares its 2 cores with the others, and there the
// same operation costs less CPU (the measured runs show it for local
// disk and for the kernel-cached mount alike: one worker alone spends
// more per operation than each of N sharing the cores). So the host's
// per-operation costs are fitted on the run's rows pooled over N below
// the largest N, and the largest N is held out: every number there is
// predicted. N=1 is left out of that pool and its rows are modelled on
// the N=1 costs they gave: they are one worker alone, whose CPU per
// operation the pool of workers sharing the cores understates (the
// committed run's staging N=1 rows: 6.7 µs per syscall alone, 4.9 µs
// pooled over N = 1, 4, 8; -39% and -27% on their time).

import (
	"fmt"
	"slices"
	"sort"

	"github.com/hpc-copper/copper/bench/pfsbench"
)

// holdOut is the node count the host fit leaves out (the run's largest)
// and the counts it pools (the others); none when the run has one count.
func holdOut(res *pfsbench.Results) (held int, fit []int) {
	seen := map[int]bool{}
	for _, r := range res.Runs {
		if r.Workload == pfsbench.WorkReplay && r.Error == "" {
			seen[r.Nodes] = true
		}
	}
	for n := range seen {
		fit = append(fit, n)
	}
	sort.Ints(fit)
	if len(fit) < 2 {
		return 0, nil
	}
	held, fit = fit[len(fit)-1], fit[:len(fit)-1]
	// N=1 is one worker alone, validated on its own (the cluster node's)
	// costs; the host's are those of several workers sharing the cores.
	if len(fit) > 1 && fit[0] == 1 {
		fit = fit[1:]
	}
	return held, fit
}

// pooledRow sums the rows of mode and phase at the node counts in fit
// into one: CPU, counters and nodes add up, so the per-operation fits on
// it are ratios of sums (each row weighted by its size).
func pooledRow(res *pfsbench.Results, fit []int, mode, phase string) (*pfsbench.Row, error) {
	p := &pfsbench.Row{Workload: pfsbench.WorkReplay, Mode: mode, Phase: phase}
	for _, r := range res.Runs {
		if r.Workload != pfsbench.WorkReplay || r.Mode != mode || r.Phase != phase || r.Error != "" || !slices.Contains(fit, r.Nodes) {
			continue
		}
		p.Nodes += r.Nodes
		p.CPUClientsS += r.CPUClientsS
		p.CPUDaemonsS += r.CPUDaemonsS
		p.CPUEmulatorS += r.CPUEmulatorS
		if r.Backend != nil {
			if p.Backend == nil {
				p.Backend = &pfsbench.Backend{Ops: map[string]int64{}}
			}
			for k, v := range r.Backend.Ops {
				p.Backend.Ops[k] += v
			}
			p.Backend.DataBytes += r.Backend.DataBytes
		}
	}
	if p.Nodes == 0 {
		return nil, fmt.Errorf("no %s %s replay row at N in %v", mode, phase, fit)
	}
	return p, nil
}

// fitHostCosts sets the host's per-operation costs from the pooled rows
// below the held-out N (see the file comment); the rest of the host's
// costs are the cluster node's. A run of one node count keeps the N=1
// costs for the host too.
func (cal *Calibration) fitHostCosts(res *pfsbench.Results, w *Workload) error {
	held, fit := holdOut(res)
	if held == 0 {
		return nil
	}
	host := cal.Costs
	pick := func(mode, phase string) (*pfsbench.Row, error) { return pooledRow(res, fit, mode, phase) }
	if err := fitOpCosts(&host, pick, res.Settings.Procs, w); err != nil {
		return fmt.Errorf("host costs: %w", err)
	}
	// Extraction alike: the pooled tar -x CPU per node of the staging
	// setups, the wait beyond it the N=1 one's.
	// The tar -c (one per setup) pooled per setup.
	var xcpu, ccpu float64
	var xnodes, cruns int
	for _, r := range res.Runs {
		if r.Workload == pfsbench.WorkReplay && r.Mode == pfsbench.ModeStaging && r.Phase == "cold" && r.Error == "" &&
			slices.Contains(fit, r.Nodes) && r.SetupCPU != nil && r.SetupCPU.ExtractS > 0 {
			xcpu += r.SetupCPU.ExtractS
			xnodes += r.Nodes
			if r.SetupCPU.CreateS > 0 {
				ccpu += r.SetupCPU.CreateS
				cruns++
			}
		}
	}
	if cruns > 0 && cal.Costs.TarCreateCPU > 0 {
		host.TarCreateCPU = ccpu / float64(cruns)
	}
	// And a daemon start's CPU: the copper setups' pooled per daemon.
	var scpu float64
	var snodes int
	for _, r := range res.Runs {
		if r.Workload == pfsbench.WorkReplay && r.Mode == pfsbench.ModeCopper && r.Phase == "cold" && r.Error == "" &&
			slices.Contains(fit, r.Nodes) && r.SetupCPU != nil && r.SetupCPU.DaemonStartS > 0 {
			scpu += r.SetupCPU.DaemonStartS
			snodes += r.Nodes
		}
	}
	if snodes > 0 && cal.Costs.NodeStartCPU > 0 {
		host.NodeStartCPU = scpu / float64(snodes)
	}
	if cal.Costs.EmulatorTar > 0 {
		host.EmulatorTar, host.TarSetupEmu = fitEmulatorTar(res, fit, w.TarBytes())
	}
	if xnodes > 0 {
		host.TarExtractCPU = xcpu / float64(xnodes)
		host.TarExtract = host.TarExtractCPU + max(0, cal.Costs.TarExtract-cal.Costs.TarExtractCPU)
	}
	cal.HostCosts, cal.HeldOutNodes, cal.FitNodes = &host, held, fit
	cal.Sources["host_costs"] = fmt.Sprintf("fitted: the per-operation CPU costs (client syscalls, FUSE requests and bytes, the emulator's) by the N=1 formulas on the run's local, direct, copper-warm and staging-warm rows pooled over N = %s (sums of CPU, operations and counters), the staging setups' tar -x CPU per node (and the emulator's CPU per tarball byte, where recorded), their tar -c's per setup and the copper setups' start CPU per daemon pooled alike; N = %d held out", fmtInts(fit), held)
	return nil
}

func fmtInts(ns []int) string {
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprint(n)
	}
	return s
}

// onHost is c with the host's per-operation costs (h, if fitted).
func (c Costs) onHost(h *Costs) Costs {
	if h != nil {
		c.ClientOpNative, c.ClientOpMount, c.ClientReq, c.ClientByte = h.ClientOpNative, h.ClientOpMount, h.ClientReq, h.ClientByte
		if h.ClientOpStaged > 0 {
			c.ClientOpStaged = h.ClientOpStaged
		}
		c.EmulatorOp, c.EmulatorByte = h.EmulatorOp, h.EmulatorByte
		if h.EmulatorTar > 0 {
			c.EmulatorTar, c.TarSetupEmu = h.EmulatorTar, h.TarSetupEmu
		}
		if h.HopCPU > 0 {
			c.HopCPU = h.HopCPU
		}
		if h.NodeStartCPU > 0 {
			c.NodeStartCPU = h.NodeStartCPU
		}
		if h.TarCreateCPU > 0 {
			c.TarCreateCPU = h.TarCreateCPU
		}
		if h.TarExtractCPU > 0 {
			c.TarExtract, c.TarExtractCPU = h.TarExtract, h.TarExtractCPU
		}
	}
	return c
}

// RunAvailable is the cores' worth the other jobs left the measured run
// over all its rows' windows together (phases and setups): the run's
// mean, well resolved, for rows whose own window is too short to tell.
func (c *Calibration) RunAvailable() (float64, bool) {
	var others, wall float64
	for _, m := range c.Measured {
		for _, h := range []*HostWindow{m.Host, m.SetupHost} {
			if h != nil && h.WallS > 0 {
				others += max(0, h.BusyS-h.OwnS)
				wall += h.WallS
			}
		}
	}
	if wall < minWindowS {
		return 0, false
	}
	cores := float64(c.HostCores)
	return min(cores, max(cores/8, cores-others/wall)), true
}
