package replay

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Sched is one thread's scheduler counters (/proc/thread-self/schedstat):
// the CPU it ran and the time it was runnable but waited for a CPU. The
// wait is the contention a replay met, measured per process and exactly
// (nanoseconds), where /proc/stat's 10 ms ticks cannot resolve a short
// run.
type Sched struct {
	Run  time.Duration `json:"run_ns"`
	Wait time.Duration `json:"wait_ns"`
}

// Sub is s less an earlier reading.
func (s Sched) Sub(before Sched) Sched {
	return Sched{Run: s.Run - before.Run, Wait: s.Wait - before.Wait}
}

// threadSched reads the calling thread's counters; false where the
// kernel has no schedstat (CONFIG_SCHED_INFO off).
func threadSched() (Sched, bool) {
	b, err := os.ReadFile("/proc/thread-self/schedstat")
	if err != nil {
		return Sched{}, false
	}
	s, err := ParseSchedstat(b)
	return s, err == nil
}

// ParseSchedstat decodes a schedstat line: "run_ns wait_ns timeslices".
func ParseSchedstat(b []byte) (Sched, error) {
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return Sched{}, fmt.Errorf("schedstat %q: want 3 fields", b)
	}
	var v [2]int64
	for i := range v {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return Sched{}, fmt.Errorf("schedstat %q: field %d: want a count of ns ≥ 0", b, i+1)
		}
		v[i] = n
	}
	if _, err := strconv.ParseUint(f[2], 10, 64); err != nil {
		return Sched{}, fmt.Errorf("schedstat %q: field 3: want a count of timeslices", b)
	}
	return Sched{Run: time.Duration(v[0]), Wait: time.Duration(v[1])}, nil
}
