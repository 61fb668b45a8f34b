package pfsbench

import (
	"fmt"
	"slices"
	"strings"
)

// largeSection writes the large-file workload's part of the fragment.
func (res *Results) largeSection(b *strings.Builder) {
	l := res.Large
	if l == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### Large files through the tree (issue #10)\n\n")
	if l.Error != "" {
		w("The large-file workload failed: %s.\n\n", l.Error)
		return
	}
	s := res.Settings
	w("%d nodes each read one %d MiB file (a fixed pattern, checked with CRC-32C on every read) at the same time: "+
		"*direct*, each node from its own PFS client mount of the emulated filesystem (%.0f MiB/s shared by all clients); "+
		"*copper*, each node through its copper mount, the root reading PFS client 0, chunks of %d MiB "+
		"(`%s`). Every PFS client mount has its own kernel page cache and the emulator counts and charges "+
		"every byte a client reads, so readers on this one host do not share pages at the backend: direct costs "+
		"N × the file, as on a real cluster.\n\n",
		l.Nodes, l.FileBytes>>20, float64(s.Params.Bandwidth)/(1<<20), l.ChunkBytes>>20, l.CopperFlags)
	w("| mode | wall time, all nodes | backend bytes | × file size |\n|---|---|---|---|\n")
	w("| direct | %.2f s | %d | %.2f |\n", l.DirectS, l.DirectBackendBytes, float64(l.DirectBackendBytes)/float64(l.FileBytes))
	w("| copper (cold; tree start %.2f s not included) | %.2f s | %d | %.2f |\n\n", l.CopperSetupS, l.CopperS, l.CopperBackendBytes,
		float64(l.CopperBackendBytes)/float64(l.FileBytes))
	w("Direct mode's time is the emulator's bandwidth model (its readers wait; the emulator's own CPU is in the passes table below); copper's is the work of %d "+
		"copper-node daemons moving %d MiB each (TCP to their children, the chunk store, FUSE) on this machine's %d cores "+
		"at the load average in the header, where on a cluster each node has its own.\n\n", l.Nodes, l.FileBytes>>20, res.Machine.Cores)
	w("Warm, on rank %d's mount after the cold read, against the same file in this host's page cache, "+
		"median of %d alternating rounds: sequential read (1 MiB reads) %.0f vs %.0f MiB/s native; "+
		"mmap and touch one byte per 4 KiB page %.0f vs %.0f MiB/s native. Kernel path: `%s`.\n\n",
		l.Nodes-1, l.WarmRounds, l.WarmSeqMiBs, l.NativeSeqMiBs, l.WarmMmapMiBs, l.NativeMmapMiBs, l.KernelPath)
	if strings.HasPrefix(l.KernelPath, "page_cache") {
		w("The warm copper numbers are the kernel's page cache of the FUSE inode (no passthrough, see docs/DESIGN.md): " +
			"no request reaches copper-node; a mapping of it is filled page fault by page fault, the native one by the local " +
			"file system's own fault path.\n\n")
	}
	if l.ServedColdMiBs > 0 {
		w("One reader on rank %d's mount (1 MiB reads): a %d MiB file no node had read, fetched through the tree, %.0f MiB/s; "+
			"the same file with the mount's pages of it dropped (posix_fadvise DONTNEED), every READ answered from the node's chunk "+
			"store, %.0f MiB/s (median of %d).\n\n", l.Nodes-1, l.FileBytes>>20, l.ServedColdMiBs, l.ServedSpillMiBs, l.WarmRounds)
	}
	l.dlopenText(w)
	l.faultsText(w)
	if len(l.Passes) > 0 {
		w("Each pass against its two lower bounds: the *CPU floor* (CPU seconds of the readers, the copper daemons and the emulator over "+
			"this machine's %d cores: every node shares them) and the *server time* (backend bytes over the emulated bandwidth). "+
			"A pass within 1.25× of the larger bound is called bound by it.\n\n", res.Machine.Cores)
		w("| model | mode | N | file MiB | server MiB/s | wall s | backend × file | CPU s (readers + daemons + emulator) | CPU floor s | server time s | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, p := range l.Passes {
			w("| %s | %s | %d | %d | %.1f | %.2f | %.2f | %.2f + %.2f + %.2f | %.2f | %.2f | %s |\n", p.Model, p.Mode, p.Nodes, p.FileBytes>>20,
				float64(p.Bandwidth)/(1<<20), p.WallS, float64(p.BackendBytes)/float64(max(p.FileBytes, 1)),
				p.CPUReadersS, p.CPUDaemonsS, p.CPUEmulatorS, p.CPUFloorS, p.ServerS, p.Verdict)
		}
		w("\n")
	}
	if sd := l.pass("scale", ModeDirect); sd != nil && l.RefNodes > 0 {
		ref := float64(l.RefServerBandwidth)
		w("Scale model: on the reference machine, %d nodes read one file that sits on one Lustre OST (the default stripe count is 1) "+
			"of %.1f GB/s (*assumption*: a per-OST rate for an NVMe or large-HDD ClusterStor OST; Orion, Frontier's Lustre, reads 14 TB/s "+
			"over all of its OSTs). When all read at once each node has %.2f MB/s of that OST; here %d nodes share an emulated server of "+
			"%.1f GB/s × %d / %d = %.2f MB/s, so each has the same share. Direct on the reference machine would take %d × the file / %.1f GB/s "+
			"(%.0f s for a 1 GiB file); copper reads the file from the OST once (%.2f s for 1 GiB) plus the tree's chunk latencies.\n\n",
			l.RefNodes, ref/1e9, ref/float64(l.RefNodes)/1e6, sd.Nodes, ref/1e9, sd.Nodes, l.RefNodes, float64(sd.Bandwidth)/1e6,
			l.RefNodes, ref/1e9, float64(l.RefNodes)*(1<<30)/ref, (1<<30)/ref)
	}
	w("| rank | RSS MiB | limit MiB (cache budget + 64) | chunks fetched | chunks served | spill | spill MiB | spill budget MiB |\n|---|---|---|---|---|---|---|---|\n")
	mem := slices.Clone(l.Memory)
	for _, m := range mem {
		w("| %d | %.1f | %.0f | %d | %d | %s | %.1f | %.0f |\n", m.Rank, mib(m.RSSBytes), mib(m.LimitBytes), m.Fetched, m.Served,
			m.SpillMode, mib(m.SpillBytes), mib(m.SpillBudget))
	}
	w("\n")
}

// faultsText writes the warm mmap's page faults and folio census, the
// why of the mmap ratio.
func (l *LargeResult) faultsText(w func(format string, args ...any)) {
	if l.WarmMmapFaults > 0 && l.NativeMmapFaults > 0 {
		mibs := float64(l.FileBytes) / (1 << 20)
		w("Page faults of one mmap+touch pass (medians, this process's minor faults): %d through the mount (%.0f KiB mapped per fault), "+
			"%d native (%.0f KiB per fault), %.0f× as many. The kernel maps a FUSE file's cached pages one fault-around window at a time; "+
			"the local file system keeps the file in large folios that a fault maps whole. The gap is the kernel's FUSE page cache, "+
			"not a request to copper-node (none is sent: TestWarmLargeFileStaysInTheKernel).\n\n",
			l.WarmMmapFaults, mibs*1024/float64(l.WarmMmapFaults), l.NativeMmapFaults, mibs*1024/float64(l.NativeMmapFaults),
			float64(l.WarmMmapFaults)/float64(l.NativeMmapFaults))
	}
	if len(l.WarmFolios) > 0 && len(l.NativeFolios) > 0 {
		w("Page-cache folios behind one mapping of each, after the last round's touch (/proc/self/pagemap → /proc/kpageflags, root only): "+
			"through the mount %s; native %s. A 2 MiB folio under a 2 MiB-aligned mapping is mapped by one PMD fault; smaller folios "+
			"one fault-around window (64 KiB by default) per fault, and read(2) copies them a folio at a time. The FUSE folio size is "+
			"the kernel's choice: copper's mount options do not raise it on a kernel without FUSE large folios.\n\n",
			folioText(l.WarmFolios), folioText(l.NativeFolios))
	}
}

// dlopenText says how every node's map and dlopen of a large shared
// library went, or why it was not run.
func (l *LargeResult) dlopenText(w func(format string, args ...any)) {
	d := l.Dlopen
	switch {
	case d == nil:
		return
	case d.Skipped != "":
		w("The map and dlopen of a large shared library was not run: %s; `service` TestMountLargeSharedLibraryMmapAndDlopen "+
			"installs it and checks the same on a 2-node tree.\n\n", d.Skipped)
		return
	}
	w("After these reads, %d nodes at once each mapped whole (SHA-256 checked) and dlopened `%s` (%.1f MiB, the biggest shared library "+
		"a Debian package ships here), every one through its own mount (rank 0's is the root, the others non-root), each in its own python3: "+
		"%.2f s for all; the filesystem served %d bytes of it, %.2f× the library",
		d.Nodes, d.Library, mib(d.Bytes), d.WallS, d.BackendBytes, float64(d.BackendBytes)/float64(max(d.Bytes, 1)))
	if d.OtherBytes != 0 {
		w(" (and %d bytes of other files in the same window: an earlier pass's reads still landing)", d.OtherBytes)
	}
	w(".\n\n")
}
