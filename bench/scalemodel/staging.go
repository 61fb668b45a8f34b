package scalemodel

// stage is staging's setup: node 0 tars the tree from the filesystem
// (one client, one operation at a time), then every node reads the tar
// through its own client and extracts it.
func (s *sim) stage(then func()) {
	t := s.cal.Workload.Tree
	tarBytes := s.cal.Workload.TarBytes() + s.sc.LargeBytes
	var steps []func(func())
	for range t.Dirs {
		steps = append(steps,
			func(f func()) { s.serverOp(0, true, "lookup", "tar", 0, f) },
			func(f func()) { s.serverOp(0, true, "opendir", "tar", 0, f) },
			func(f func()) { s.serverOp(0, true, "readdir", "tar", 0, f) })
	}
	per := int64(0)
	if t.Files > 0 {
		per = t.Bytes / int64(t.Files)
	}
	for range t.Files {
		steps = append(steps,
			func(f func()) { s.serverOp(0, true, "lookup", "tar", 0, f) },
			func(f func()) { s.serverOp(0, true, "open", "tar", 0, f) },
			func(f func()) { s.dataRead(0, true, "tar", per, 1, f) })
	}
	// One tar -c: one thread runnable at a time (tar, or the emulator
	// serving it), so the other jobs slow it by their share of one
	// thread's, not of the extraction's N.
	s.tarCreateSpeed()
	b0 := s.hostBusy()
	var run func(i int)
	run = func(i int) {
		if i < len(steps) {
			steps[i](func() { run(i + 1) })
			return
		}
		// Its own CPU beyond the requests' client side already charged:
		// measured through the mount, or else tar -c on local disk.
		k := s.k // the tar -c's speed
		own := k.TarCreate
		if k.TarCreateCPU > 0 {
			n := int64(t.Files) * (2 + int64(chunks(per)))
			own = max(0, k.TarCreateCPU-float64(n+3*int64(t.Dirs))*k.ClientReq-float64(t.Bytes)*k.ClientByte)
		}
		s.clientCPU(own, func() {
			s.restoreSpeed(b0)
			if s.host != nil && s.k.EmulatorTar > 0 {
				s.host.reserve(s.now, s.k.TarSetupEmu) // the emulator's part per setup, beside the reads
			}
			s.fanOutNodes(func(n, m int, done func()) {
				s.serverOp(n, true, "lookup", "site.tar", m, func() {
					s.serverOp(n, true, "open", "site.tar", m, func() {
						s.tarRead(n, tarBytes, m, func() { s.extract(done) })
					})
				})
			}, then)
		})
	}
	s.at(0, func() { run(0) })
}

// tarCreateSpeed slows the CPU costs for one runnable thread (Host mode
// with Left measured); restoreSpeed returns to the row's, counting the
// CPU booked since busy0 at its own slow-down.
func (s *sim) tarCreateSpeed() {
	if s.host == nil || s.sc.Left <= 0 {
		return
	}
	s.k = s.base.slowed(float64(s.cal.HostCores) / SpeedShare(s.cal.HostCores, s.sc.Left, 1))
}

func (s *sim) restoreSpeed(busy0 float64) {
	if s.host == nil || s.sc.Left <= 0 {
		return
	}
	f := float64(s.cal.HostCores) / SpeedShare(s.cal.HostCores, s.sc.Left, 1)
	s.cpuAdj += (s.hostBusy() - busy0) * (1/f - 1/s.slow)
	s.k = s.base.slowed(s.slow)
}

// extract is one node's tar -x: its CPU (on the host's cores in Host
// mode), then the rest of its measured time, spent waiting on the disk.
func (s *sim) extract(done func()) {
	k := s.k
	s.clientCPU(k.TarExtractCPU, func() { s.at(s.now+max(0, k.TarExtract-k.TarExtractCPU), done) })
}

func (s *sim) fanOutNodes(op func(n, weight int, done func()), then func()) {
	left := 0
	for _, ns := range s.nodes {
		if ns.weight > 0 {
			left++
		}
	}
	for n, ns := range s.nodes {
		if ns.weight == 0 {
			continue
		}
		op(n, ns.weight, func() {
			left--
			if left == 0 {
				then()
			}
		})
	}
}

// tarRead is a node's read of the tarball: the emulator's CPU and the
// shared bandwidth. The reading side's CPU is not charged here: it is
// tar -x's own read syscalls, in the extraction's measured CPU.
func (s *sim) tarRead(node int, size int64, mult int, then func()) {
	k := s.k
	n := chunks(size)
	s.ops["read"] += int64(n * mult)
	s.bytes += size * int64(mult)
	emu := func(f func()) { f() }
	if s.host != nil {
		cpu := float64(n)*k.EmulatorOp + float64(size)*k.EmulatorByte
		if k.EmulatorTar > 0 {
			cpu = float64(size) * k.EmulatorTar // measured on the run's own tarball reads
		}
		emu = func(f func()) { s.at(s.host.reserve(s.now, cpu), f) }
	}
	emu(func() { s.at(s.oss.reserve(s.now, size*int64(mult)), then) })
}

// TarBytes is the staging tarball's size for the tree: its bytes, and a
// header and padding per entry.
func (w *Workload) TarBytes() int64 {
	return w.Tree.Bytes + int64(w.Tree.Files+w.Tree.Dirs)*1024
}
