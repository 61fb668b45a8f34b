package scalemodel

import (
	"slices"
	"strings"
)

// Evaluate runs the validation scenarios (the calibration's measured
// rows, on the host's cores against the emulator) and the plan's
// projection (own cores per node, the reference filesystem).
func Evaluate(cal *Calibration, plan Plan) (*Report, error) {
	rep := &Report{Created: cal.Created, CalibrateCmd: cal.Command, MeasuredBy: cal.MeasuredBy, Costs: cal.Costs, Emulator: cal.Emulator, Reference: cal.Reference, Machine: cal.Machine,
		Sources: cal.Sources, HostCores: cal.HostCores, HostAvailable: cal.HostAvailable, Procs: plan.Procs, ValidationProcs: cal.Procs,
		TraceOps: len(cal.Workload.Ops), Tree: cal.Workload.Tree, FitNodes: cal.FitNodes, HeldOutNodes: cal.HeldOutNodes, HostCosts: cal.HostCosts, Probe: cal.ReadyProbe(), RoundTrip: cal.RoundTrip}
	rep.Listing.ReaddirplusPerListing, rep.Listing.DirFiles = cal.ReaddirplusPerListing, cal.DirFiles
	rep.Listing.FuseMaxRead, rep.Listing.FuseReadahead = cal.FuseMaxRead, cal.FuseReadahead
	for _, step := range []func(*Calibration, Plan) error{rep.runValidation, rep.runProjection, rep.runVariants, rep.runSensitivity, rep.runLarge, rep.runOtherPolicy} {
		if err := step(cal, plan); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// runValidation models each measured row's scenario on the host (at
// the cores' worth the row got, as measured during it, and idle) and
// sets the two side by side.
func (rep *Report) runValidation(cal *Calibration, _ Plan) error {
	type key struct {
		mode        string
		nodes       int
		avail, left float64
	}
	memo := map[key]Result{}
	run := func(mode string, nodes int, avail, left float64) (Result, error) {
		k := key{mode, nodes, avail, left}
		if r, ok := memo[k]; ok {
			return r, nil
		}
		r, err := Run(cal, Scenario{Mode: mode, Nodes: nodes, Procs: cal.Procs, Host: true, Available: avail, Left: left, Spawn: cal.spawnOf(mode, nodes)})
		memo[k] = r
		return r, err
	}
	for _, m := range cal.Measured {
		if !slices.Contains(Modes, m.Mode) {
			continue
		}
		if err := rep.addMeasured(cal, m, run); err != nil {
			return err
		}
	}
	slices.SortStableFunc(rep.Validation, func(a, b ValidationRow) int {
		if a.Mode != b.Mode {
			return slices.Index(Modes, a.Mode) - slices.Index(Modes, b.Mode)
		}
		if a.What != b.What {
			return strings.Compare(a.What, b.What)
		}
		return a.Nodes - b.Nodes
	})
	return nil
}

// addMeasured adds measured row m's CPU, counter and time rows against
// the model: each time at the cores' worth the row's window left the run
// (the probe's share when the window is too short to tell), and on an
// idle host.
func (rep *Report) addMeasured(cal *Calibration, m MeasuredRow, run func(string, int, float64, float64) (Result, error)) error {
	idle, err := run(m.Mode, m.Nodes, float64(cal.HostCores), 0)
	if err != nil {
		return err
	}
	// The row's share left by the other jobs, then the speed it runs at:
	// a phase that keeps fewer cores busy (on an idle host) than it is
	// left is not slowed (SpeedShare).
	at := func(h *HostWindow, phase string) (Result, float64, error) {
		// A setup's window is its own time; its daemons start before any worker.
		runS, startCPU := m.RunS, float64(m.Nodes)*cal.Costs.WorkerStartCPU
		if phase == "setup" {
			runS, startCPU = m.SetupS, 0
		}
		a, ok := h.SchedAvailable(cal.HostCores, runS, startCPU)
		if !ok {
			a, ok = h.Available(cal.HostCores)
		}
		if !ok {
			a, _ = cal.RunAvailable() // 0 without windows: the probe's share
		}
		speed := a
		if a > 0 {
			want := idle.Parallelism(phase, cal.Costs.WorkerStartCPU)
			if phase == "setup" {
				want = setupDemand(cal, m)
			}
			speed = SpeedShare(cal.HostCores, a, want)
		}
		r, err := run(m.Mode, m.Nodes, speed, a)
		if a == 0 {
			a = HostShare(cal.HostCores, cal.HostAvailable, m.Nodes*(cal.Procs+1)+1)
		}
		return r, a, err
	}
	r, avail, err := at(m.Host, m.Phase)
	if err != nil {
		return err
	}
	add := func(what string, measured, modelled, modelledIdle, avail float64, fromRow, sched bool, cpu [2]float64) {
		v := ValidationRow{Mode: m.Mode, Nodes: m.Nodes, What: what, Measured: measured, Modelled: modelled, ModelledIdle: modelledIdle,
			Error: (modelled - measured) / measured, Command: m.Command, Available: avail, AvailableMeasured: fromRow, AvailableSched: sched,
			HeldOut: cal.HeldOutNodes > 0 && m.Nodes == cal.HeldOutNodes, CPUMeasured: cpu[0], CPUModelled: cpu[1], Repeats: m.Repeats}
		if what != "setup" {
			v.Scatter = max(0, m.ProcMaxS-m.ProcMedianS)
		}
		rep.Validation = append(rep.Validation, v)
	}
	_, phaseMeasured := m.Host.Available(cal.HostCores)
	_, phaseSched := m.Host.SchedAvailable(cal.HostCores, m.RunS, float64(m.Nodes)*cal.Costs.WorkerStartCPU)
	rep.addCounts(m, r)
	if m.Phase != "cold" {
		add("warm run", m.RunS, r.WarmS, idle.WarmS, avail, phaseMeasured || phaseSched, phaseSched, [2]float64{m.CPUS, r.WarmCPUS})
		return nil
	}
	add("cold run", m.RunS, r.ColdS, idle.ColdS, avail, phaseMeasured || phaseSched, phaseSched, [2]float64{m.CPUS, r.ColdCPUS})
	if m.Mode != ModeDirect {
		rs, as, err := at(m.SetupHost, "setup")
		if err != nil {
			return err
		}
		_, setupMeasured := m.SetupHost.Available(cal.HostCores)
		_, setupSched := m.SetupHost.SchedAvailable(cal.HostCores, m.SetupS, 0)
		var own float64
		if m.SetupHost != nil {
			own = m.SetupHost.OwnS
		}
		add("setup", m.SetupS, rs.SetupS, idle.SetupS, as, setupMeasured || setupSched, setupSched, [2]float64{own, rs.SetupCPUS})
	}
	return nil
}

// addCounts adds measured row m's CPU and filesystem counters against
// the model's r (no timing involved).
func (rep *Report) addCounts(m MeasuredRow, r Result) {
	if m.CPUS > 0 {
		cpu := CPURow{Mode: m.Mode, Nodes: m.Nodes, Phase: m.Phase, Measured: m.CPUS, Modelled: r.ColdCPUS}
		if m.Phase == "warm" {
			cpu.Modelled = r.WarmCPUS
		}
		rep.CPU = append(rep.CPU, cpu)
	}
	rep.addFuse(m, r)
	if m.Mode != ModeStaging {
		what, modelled := "cold metadata ops", r.MetaOps
		if m.Phase == "warm" {
			what, modelled = "warm metadata ops", r.WarmMetaOps
		}
		rep.Counts = append(rep.Counts, CountRow{Mode: m.Mode, Nodes: m.Nodes, What: what, Measured: m.MetaOps, Modelled: modelled})
		if m.Phase == "cold" {
			rep.Counts = append(rep.Counts, CountRow{Mode: m.Mode, Nodes: m.Nodes, What: "cold data bytes", Measured: m.Bytes, Modelled: r.DataBytes})
		}
	}
}

// runProjection models every mode at the plan's node counts.
func (rep *Report) runProjection(cal *Calibration, plan Plan) error {
	for _, mode := range Modes {
		for _, n := range plan.Nodes {
			r, err := Run(cal, Scenario{Mode: mode, Nodes: n, Procs: plan.Procs})
			if err != nil {
				return err
			}
			rep.Projection = append(rep.Projection, r)
		}
	}
	if cal.Costs.BookBase+cal.Costs.BookPerRank <= 0 {
		return nil
	}
	for _, n := range plan.Nodes {
		r, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: n, Procs: plan.Procs, Launch: LaunchBook})
		if err != nil {
			return err
		}
		rep.Book = append(rep.Book, r)
	}
	return nil
}

// runVariants models copper's tree counts and fan-outs at the plan's
// variant node counts.
func (rep *Report) runVariants(cal *Calibration, plan Plan) error {
	for _, n := range plan.VariantNodes {
		for _, t := range plan.TreeCounts {
			for _, f := range plan.Fanouts {
				if t == 1 && f == 0 {
					continue // the projection's own row
				}
				r, err := Run(cal, Scenario{Mode: ModeCopper, Nodes: n, Procs: plan.Procs, Trees: t, Fanout: f})
				if err != nil {
					return err
				}
				rep.Variants = append(rep.Variants, r)
			}
		}
	}
	return nil
}

// runSensitivity models direct and copper on metadata servers faster
// or slower than the reference by the plan's factors.
func (rep *Report) runSensitivity(cal *Calibration, plan Plan) error {
	for _, f := range plan.Capacity {
		c := *cal
		c.Reference.MetadataService /= f
		for _, mode := range []string{ModeDirect, ModeCopper} {
			r, err := Run(&c, Scenario{Mode: mode, Nodes: plan.SensitivityNodes, Procs: plan.Procs})
			if err != nil {
				return err
			}
			rep.Sensitivity = append(rep.Sensitivity, Sensitivity{Factor: f, Result: r})
		}
	}
	return nil
}

// runLarge models the large-file variant: direct, and copper on each
// large-file path.
func (rep *Report) runLarge(cal *Calibration, plan Plan) error {
	if plan.LargeBytes <= 0 {
		return nil
	}
	for _, n := range plan.LargeNodes {
		for _, sc := range []Scenario{
			{Mode: ModeDirect}, {Mode: ModeCopper, LargePath: LargeDirect}, {Mode: ModeCopper, LargePath: LargeChunked},
		} {
			sc.Nodes, sc.Procs, sc.LargeBytes = n, plan.Procs, plan.LargeBytes
			r, err := Run(cal, sc)
			if err != nil {
				return err
			}
			rep.Large = append(rep.Large, r)
		}
	}
	return nil
}

// setupDemand is the cores a setup keeps busy while it computes: its
// work is concurrent starts, not spread over its time (a mean would hide
// the burst): every daemon's start threads (copper) or every node's
// tar -x (staging) at once.
func setupDemand(cal *Calibration, m MeasuredRow) float64 {
	threads := 1.0
	if k := cal.Costs; m.Mode == ModeCopper && k.NodeStart > 0 && k.NodeStartCPU > 0 {
		// As registrations spreads it: the measured parallelism, unrounded.
		threads = max(1, min(float64(cal.HostCores), k.NodeStartCPU/k.NodeStart))
	}
	return float64(m.Nodes) * threads
}

// spawnOf is the measured launcher's spawn offsets of the cold row of
// mode at nodes (copper: when each rank's command started), nil if none.
func (cal *Calibration) spawnOf(mode string, nodes int) []float64 {
	for _, m := range cal.Measured {
		if m.Mode == mode && m.Nodes == nodes && m.Phase == "cold" && len(m.Spawn) == nodes {
			return m.Spawn
		}
	}
	return nil
}

// runOtherPolicy models copper's projection rows (the facility-book
// launch where measured) under the readiness policy the measured copper
// does not use, all else equal: what the other readiness would change.
func (rep *Report) runOtherPolicy(cal *Calibration, plan Plan) error {
	c := *cal
	c.Probe.Policy = PolicyHold
	if cal.ReadyProbe().Policy == PolicyHold {
		c.Probe.Policy = PolicyBackoff
	}
	launch := LaunchDiscover
	if len(rep.Book) > 0 {
		launch = LaunchBook
	}
	for _, n := range plan.Nodes {
		r, err := Run(&c, Scenario{Mode: ModeCopper, Nodes: n, Procs: plan.Procs, Launch: launch})
		if err != nil {
			return err
		}
		rep.OtherPolicy = append(rep.OtherPolicy, r)
	}
	rep.OtherPolicyName = c.Probe.Policy
	return nil
}
