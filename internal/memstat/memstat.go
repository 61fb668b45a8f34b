// Package memstat reads where a running process's memory went, as the Go
// runtime and the kernel see it, and its in-use heap profile: what
// `copper-node memory` asks a node for. Nothing here runs unless asked.
package memstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
)

// Memory is one reading. The heap classes partition what the runtime
// mapped (TotalBytes): Objects + Unused + Free + Released are the heap's
// spans, Stacks the goroutine stacks, Runtime the rest (GC metadata,
// profiling buckets, the runtime's own structures). RSS is the kernel's
// count of resident pages: about Total − Released once freed memory has
// been returned, more while it has not.
type Memory struct {
	RSSBytes      int64 `json:"rss_bytes"`       // VmRSS
	PeakRSSBytes  int64 `json:"peak_rss_bytes"`  // VmHWM
	TotalBytes    int64 `json:"total_bytes"`     // everything the runtime mapped
	ObjectsBytes  int64 `json:"objects_bytes"`   // heap objects, live and not yet swept
	LiveBytes     int64 `json:"live_bytes"`      // heap marked live by the last GC
	UnusedBytes   int64 `json:"unused_bytes"`    // fragmentation inside in-use spans
	FreeBytes     int64 `json:"free_bytes"`      // free heap still resident (not returned)
	ReleasedBytes int64 `json:"released_bytes"`  // free heap returned to the OS
	StacksBytes   int64 `json:"stacks_bytes"`    // goroutine and OS thread stacks
	RuntimeBytes  int64 `json:"runtime_bytes"`   // GC metadata and other runtime memory
	HeapGoalBytes int64 `json:"heap_goal_bytes"` // the heap size the next GC aims at
	// GOGC is the GC percent in force (-1: off); MemoryLimitBytes the
	// Go memory limit in force (math.MaxInt64: none).
	GOGC             int64 `json:"gogc"`
	MemoryLimitBytes int64 `json:"memory_limit_bytes"`
	Goroutines       int64 `json:"goroutines"`
	GCCycles         int64 `json:"gc_cycles"`
}

// names maps each runtime/metrics name to the field it adds to; several
// names may add to one field.
var names = []struct {
	name  string
	field func(*Memory) *int64
}{
	{"/memory/classes/total:bytes", func(m *Memory) *int64 { return &m.TotalBytes }},
	{"/memory/classes/heap/objects:bytes", func(m *Memory) *int64 { return &m.ObjectsBytes }},
	{"/gc/heap/live:bytes", func(m *Memory) *int64 { return &m.LiveBytes }},
	{"/memory/classes/heap/unused:bytes", func(m *Memory) *int64 { return &m.UnusedBytes }},
	{"/memory/classes/heap/free:bytes", func(m *Memory) *int64 { return &m.FreeBytes }},
	{"/memory/classes/heap/released:bytes", func(m *Memory) *int64 { return &m.ReleasedBytes }},
	{"/memory/classes/heap/stacks:bytes", func(m *Memory) *int64 { return &m.StacksBytes }},
	{"/memory/classes/os-stacks:bytes", func(m *Memory) *int64 { return &m.StacksBytes }},
	{"/memory/classes/metadata/mcache/free:bytes", func(m *Memory) *int64 { return &m.RuntimeBytes }},
	{"/memory/classes/metadata/mcache/inuse:bytes", func(m *Memory) *int64 { return &m.RuntimeBytes }},
	{"/memory/classes/metadata/mspan/free:bytes", func(m *Memory) *int64 { return &m.RuntimeBytes }},
	{"/memory/classes/metadata/mspan/inuse:bytes", func(m *Memory) *int64 { return &m.RuntimeBytes }},
	{"/memory/classes/metadata/other:bytes", func(m *Memory) *int64 { return &m.RuntimeBytes }},
	{"/memory/classes/profiling/buckets:bytes", func(m *Memory) *int64 { return &m.RuntimeBytes }},
	{"/memory/classes/other:bytes", func(m *Memory) *int64 { return &m.RuntimeBytes }},
	{"/gc/heap/goal:bytes", func(m *Memory) *int64 { return &m.HeapGoalBytes }},
	{"/gc/gogc:percent", func(m *Memory) *int64 { return &m.GOGC }},
	{"/gc/gomemlimit:bytes", func(m *Memory) *int64 { return &m.MemoryLimitBytes }},
	{"/sched/goroutines:goroutines", func(m *Memory) *int64 { return &m.Goroutines }},
	{"/gc/cycles/total:gc-cycles", func(m *Memory) *int64 { return &m.GCCycles }},
}

// Read takes one reading of this process. The runtime's part is cheap
// (no stop of the world); the kernel's is one read of /proc/self/status.
func Read() (Memory, error) {
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n.name
	}
	metrics.Read(samples)
	var m Memory
	for i, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			*names[i].field(&m) += int64(min(s.Value.Uint64(), 1<<63-1))
		case metrics.KindBad:
			// A name this Go does not know: leave its field at 0.
		default:
			return Memory{}, fmt.Errorf("runtime metric %s: kind %v, want uint64", s.Name, s.Value.Kind())
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return Memory{}, fmt.Errorf("resident set: %w", err)
	}
	if m.RSSBytes, err = statusKiB(status, "VmRSS"); err != nil {
		return Memory{}, err
	}
	if m.PeakRSSBytes, err = statusKiB(status, "VmHWM"); err != nil {
		return Memory{}, err
	}
	return m, nil
}

// statusKiB reads one "Name:   123 kB" line of /proc/<pid>/status as bytes.
func statusKiB(status []byte, name string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+":")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/self/status %s %q: %w", name, rest, err)
		}
		return kib << 10, nil
	}
	return 0, fmt.Errorf("/proc/self/status: no %s line", name)
}

// HeapProfile returns the heap profile (pprof's gzipped protocol
// buffer; `go tool pprof -sample_index=inuse_space`). Its in-use
// figures are those of the last GC, so with gc set it collects first
// to make them current (a full GC: milliseconds on a large heap).
func HeapProfile(gc bool) ([]byte, error) {
	if gc {
		runtime.GC()
	}
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		return nil, fmt.Errorf("heap profile: %w", err)
	}
	return buf.Bytes(), nil
}
