package slowpfs

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const us = time.Microsecond

func TestModelMetadataSlots(t *testing.T) {
	type arrival struct {
		at   time.Duration
		ops  int
		done time.Duration
	}
	tests := []struct {
		name     string
		slots    int
		service  time.Duration
		arrivals []arrival
		wait     time.Duration // total queueing
		maxWait  time.Duration
	}{
		{
			name: "fewer clients than slots never queue", slots: 4, service: 300 * us,
			arrivals: []arrival{{0, 1, 300 * us}, {0, 1, 300 * us}, {10 * us, 1, 310 * us}},
		},
		{
			name: "the ninth of nine simultaneous operations waits one service time", slots: 8, service: 300 * us,
			arrivals: []arrival{
				{0, 1, 300 * us}, {0, 1, 300 * us}, {0, 1, 300 * us}, {0, 1, 300 * us},
				{0, 1, 300 * us}, {0, 1, 300 * us}, {0, 1, 300 * us}, {0, 1, 300 * us},
				{0, 1, 600 * us},
			},
			wait: 300 * us, maxWait: 300 * us,
		},
		{
			name: "one slot serves arrivals in order", slots: 1, service: 100 * us,
			arrivals: []arrival{{0, 1, 100 * us}, {0, 1, 200 * us}, {50 * us, 1, 300 * us}, {1000 * us, 1, 1100 * us}},
			wait:     100*us + 150*us, maxWait: 150 * us,
		},
		{
			name: "a multi-page readdir runs its pages one after another", slots: 8, service: 300 * us,
			arrivals: []arrival{{0, 3, 900 * us}, {0, 1, 300 * us}},
		},
		{
			name: "multi-page operations interleave with others on a full server", slots: 1, service: 100 * us,
			arrivals: []arrival{{0, 2, 200 * us}, {0, 1, 300 * us}},
			wait:     200 * us, maxWait: 200 * us,
		},
		{
			name: "zero service time is free", slots: 1, service: 0,
			arrivals: []arrival{{0, 1, 0}, {0, 5, 0}, {7 * us, 1, 7 * us}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewModel(Params{MetadataService: tt.service, Slots: tt.slots, Bandwidth: 1 << 30, DirEntriesPerOp: 1})
			var ops int64
			for i, a := range tt.arrivals {
				assert.Equal(t, at(a.done), m.Metadata(at(a.at), a.ops), "arrival %d", i)
				ops += int64(a.ops)
			}
			s := m.Stats()
			assert.Equal(t, ops, s.MetadataOps)
			assert.Equal(t, time.Duration(ops)*tt.service, s.MetadataBusy)
			assert.Equal(t, tt.wait, s.MetadataWait)
			assert.Equal(t, tt.maxWait, s.MetadataMaxWait)
		})
	}
}

func TestModelThroughputMatchesCapacity(t *testing.T) {
	// 10,000 operations arriving at once on 8 slots of 300 µs take
	// ceil(10000/8) service times: the capacity, 26,667 ops/s, exactly.
	p := DefaultParams()
	m := NewModel(p)
	var last time.Time
	for range 10_000 {
		last = m.Metadata(t0, 1)
	}
	assert.Equal(t, at(1250*300*us), last)
	assert.InDelta(t, 26_666.7, p.MetadataOpsPerSecond(), 0.1)
}

func TestModelDataBandwidth(t *testing.T) {
	type transfer struct {
		at    time.Duration
		bytes int64
		done  time.Duration
	}
	mib := int64(1 << 20)
	tests := []struct {
		name      string
		bandwidth int64
		transfers []transfer
		wait      time.Duration
	}{
		{
			name: "one MiB at 1 GiB/s takes 976.5625 µs, rounded up", bandwidth: 1 << 30,
			transfers: []transfer{{0, mib, 976563}},
		},
		{
			name: "simultaneous transfers share the pipe", bandwidth: 1 << 30,
			transfers: []transfer{{0, mib, 976563}, {0, mib, 976563 + 976563}},
			wait:      976563,
		},
		{
			name: "an idle pipe starts at the arrival", bandwidth: 1 << 20,
			transfers: []transfer{{0, 1024, 976563}, {time.Second, 2048, time.Second + 1953125}},
		},
		{
			name: "empty reads cost nothing", bandwidth: 1 << 30,
			transfers: []transfer{{5 * us, 0, 5 * us}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewModel(Params{MetadataService: us, Slots: 1, Bandwidth: tt.bandwidth, DirEntriesPerOp: 1})
			var bytes int64
			for i, tr := range tt.transfers {
				assert.Equal(t, at(tr.done), m.Data(at(tr.at), tr.bytes), "transfer %d", i)
				bytes += tr.bytes
			}
			s := m.Stats()
			assert.Equal(t, bytes, s.DataBytes)
			assert.Equal(t, int64(len(tt.transfers)), s.DataOps)
			assert.Equal(t, tt.wait, s.DataWait)
		})
	}
}

func TestTransferTime(t *testing.T) {
	tests := []struct {
		n, bw int64
		want  time.Duration
	}{
		{0, 1 << 30, 0},
		{1, 1 << 30, 1},
		{1 << 30, 1 << 30, time.Second},
		{3, 2, 1500 * time.Millisecond},
		{1 << 40, 1 << 20, (1 << 20) * time.Second},
		{math.MaxInt64, 1 << 20, time.Duration(math.MaxInt64)},
		{math.MaxInt64, math.MaxInt64, time.Second},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, transferTime(tt.n, tt.bw), "%d bytes at %d B/s", tt.n, tt.bw)
	}
}

func TestModelResetStatsKeepsQueues(t *testing.T) {
	m := NewModel(Params{MetadataService: 100 * us, Slots: 1, Bandwidth: 1 << 30, DirEntriesPerOp: 1})
	m.Metadata(t0, 1)
	before := m.ResetStats()
	assert.Equal(t, int64(1), before.MetadataOps)
	assert.Zero(t, m.Stats())
	// The slot is still busy until 100 µs: a reset is bookkeeping only.
	assert.Equal(t, at(200*us), m.Metadata(t0, 1))
}

func TestParamsValidate(t *testing.T) {
	require.NoError(t, DefaultParams().Validate())
	tests := []struct {
		name   string
		modify func(*Params)
		want   string
	}{
		{"negative service", func(p *Params) { p.MetadataService = -1 }, "metadata service time"},
		{"no slots", func(p *Params) { p.Slots = 0 }, "metadata slots 0"},
		{"tiny bandwidth", func(p *Params) { p.Bandwidth = 1000 }, "bandwidth 1000"},
		{"no entries per readdir", func(p *Params) { p.DirEntriesPerOp = 0 }, "directory entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			tt.modify(&p)
			assert.ErrorContains(t, p.Validate(), tt.want)
		})
	}
}

func TestParamsScaleCapacity(t *testing.T) {
	def := DefaultParams() // 8 slots × 300 µs
	tests := []struct {
		name    string
		ratio   float64
		slots   int
		service time.Duration
	}{
		{"unchanged", 1, 8, 300 * time.Microsecond},
		{"fewer slots, same service time", 4, 2, 300 * time.Microsecond},
		{"below one slot: longer service", 192, 1, 7200 * time.Microsecond}, // 2,048 × 12 vs 32 × 4
		{"more capacity", 0.5, 16, 300 * time.Microsecond},
		{"fractional slots round down", 3, 2, 225 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := def.ScaleCapacity(tt.ratio)
			require.NoError(t, err)
			assert.Equal(t, tt.slots, q.Slots)
			assert.Equal(t, tt.service, q.MetadataService)
			assert.InDelta(t, def.MetadataOpsPerSecond()/tt.ratio, q.MetadataOpsPerSecond(), 1e-6*def.MetadataOpsPerSecond())
			assert.Equal(t, def.Bandwidth, q.Bandwidth, "data bandwidth is not scaled")
		})
	}
	for _, bad := range []float64{0, -1, math.Inf(1), math.NaN(), 1e9} {
		_, err := def.ScaleCapacity(bad)
		assert.Error(t, err, "ratio %v", bad)
	}
}
