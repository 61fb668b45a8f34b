package slowpfs

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// Model is the emulated server in virtual time. Callers pass the arrival
// time and get back the time the operation completes; they then wait
// until that time. Keeping the server's state in virtual time (slot
// free times, the data pipe's busy-until) rather than in sleeping
// goroutines makes the capacity exact and the accounting testable with
// any clock.
type Model struct {
	params Params

	mu       sync.Mutex
	slotFree []time.Time // when each metadata slot is next free
	pipeFree time.Time   // when the data pipe is next free
	stats    ModelStats
}

// ModelStats sums what the model charged.
type ModelStats struct {
	MetadataOps     int64         `json:"metadata_ops"`
	MetadataBusy    time.Duration `json:"metadata_busy_ns"`     // slot-time used
	MetadataWait    time.Duration `json:"metadata_wait_ns"`     // total time queued for a slot
	MetadataMaxWait time.Duration `json:"metadata_max_wait_ns"` // longest queueing of one operation
	DataOps         int64         `json:"data_ops"`
	DataBytes       int64         `json:"data_bytes"`
	DataBusy        time.Duration `json:"data_busy_ns"`
	DataWait        time.Duration `json:"data_wait_ns"`
	DataMaxWait     time.Duration `json:"data_max_wait_ns"`
}

// NewModel returns an idle server. params must be valid.
func NewModel(params Params) *Model {
	return &Model{params: params, slotFree: make([]time.Time, params.Slots)}
}

// Params returns the model's parameters.
func (m *Model) Params() Params { return m.params }

// Metadata charges ops metadata operations arriving at now, run one after
// another by the same client (a readdir of many pages), and returns when
// the last completes. Each takes the slot that frees first.
func (m *Model) Metadata(now time.Time, ops int) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	at := now
	for range max(ops, 0) {
		i := 0
		for j := 1; j < len(m.slotFree); j++ {
			if m.slotFree[j].Before(m.slotFree[i]) {
				i = j
			}
		}
		start := at
		if m.slotFree[i].After(start) {
			start = m.slotFree[i]
		}
		done := start.Add(m.params.MetadataService)
		m.slotFree[i] = done
		wait := start.Sub(at)
		m.stats.MetadataOps++
		m.stats.MetadataBusy += m.params.MetadataService
		m.stats.MetadataWait += wait
		m.stats.MetadataMaxWait = max(m.stats.MetadataMaxWait, wait)
		at = done
	}
	return at
}

// Data charges a transfer of n bytes arriving at now and returns when it
// completes. Transfers share the pipe first come, first served, which
// gives every client its fair share of the bandwidth over time.
func (m *Model) Data(now time.Time, n int64) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	n = max(n, 0)
	start := now
	if m.pipeFree.After(start) {
		start = m.pipeFree
	}
	cost := transferTime(n, m.params.Bandwidth)
	done := start.Add(cost)
	m.pipeFree = done
	wait := start.Sub(now)
	m.stats.DataOps++
	m.stats.DataBytes += n
	m.stats.DataBusy += cost
	m.stats.DataWait += wait
	m.stats.DataMaxWait = max(m.stats.DataMaxWait, wait)
	return done
}

// transferTime is n bytes at bw bytes per second, rounded up to the
// nanosecond so that no transfer is free. 128-bit arithmetic keeps it
// exact for any byte count and bandwidth.
func transferTime(n, bw int64) time.Duration {
	if n <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(n), uint64(time.Second))
	if hi >= uint64(bw) {
		return time.Duration(math.MaxInt64) // beyond 292 years
	}
	q, r := bits.Div64(hi, lo, uint64(bw))
	if r != 0 {
		q++
	}
	return time.Duration(min(q, math.MaxInt64))
}

// Stats returns what the model has charged since it was made or last
// reset.
func (m *Model) Stats() ModelStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// ResetStats zeroes the sums (the server's queues are left as they are)
// and returns the sums before.
func (m *Model) ResetStats() ModelStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	m.stats = ModelStats{}
	return s
}
