// Package slowpfs emulates a shared parallel filesystem (Lustre, GPFS)
// as many clients see it, over an ordinary local directory: a read-only
// FUSE passthrough whose every backend operation is charged against one
// shared server model and counted by type and path.
//
// The model has two resources, both shared by every client mount of one
// Emulator:
//
//   - Metadata (lookup, getattr, open, opendir, readdir, readlink) is
//     served by Slots server slots, each busy for MetadataService per
//     operation. With more clients than slots, operations queue, so the
//     latency a client sees grows with the number of clients — the
//     behaviour of a metadata server (Lustre MDS) under a job-startup
//     storm.
//   - Data (read) shares one pipe of Bandwidth bytes per second, first
//     come first served: N clients reading at once each get 1/N of it.
//
// Reservations are made in virtual time (see Model), so the capacity of
// the emulated server is exact even when the host wakes sleepers late;
// the lateness is measured and reported instead.
//
// Each client mount is a separate FUSE connection, so each has its own
// kernel cache, as each node of a cluster has its own PFS client cache.
package slowpfs

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Params are the emulated server's costs. Defaults and why:
//
//   - MetadataService 300 µs: the service time of one metadata RPC on a
//     busy Lustre MDS (a few tens of µs on an idle server; 0.2–1 ms per
//     getattr/open once thousands of clients contend for the MDT).
//   - Slots 8: the MDS service threads that make progress at once on one
//     MDT under contention (lock and journal serialisation keep the
//     effective concurrency far below the thread count). 8 slots at
//     300 µs give 26,700 metadata operations per second — what a single
//     MDT sustains in mdtest stat/open runs with many clients.
//   - Bandwidth 1 GiB/s: one job's share of the object storage servers
//     (OSS) on a shared, busy filesystem.
//   - DirEntriesPerOp 128: entries one readdir RPC returns (a 4 KiB
//     Lustre directory page holds on the order of a hundred short names).
type Params struct {
	MetadataService time.Duration `json:"metadata_service_ns"`
	Slots           int           `json:"slots"`
	Bandwidth       int64         `json:"bandwidth_bytes_per_s"`
	DirEntriesPerOp int           `json:"dir_entries_per_op"`
}

// DefaultParams returns the documented defaults.
func DefaultParams() Params {
	return Params{
		MetadataService: 300 * time.Microsecond,
		Slots:           8,
		Bandwidth:       1 << 30,
		DirEntriesPerOp: 128,
	}
}

// Validate reports the first parameter outside its range.
func (p Params) Validate() error {
	var errs []error
	if p.MetadataService < 0 || p.MetadataService > time.Second {
		errs = append(errs, fmt.Errorf("metadata service time %v outside [0, 1s]", p.MetadataService))
	}
	if p.Slots < 1 || p.Slots > 4096 {
		errs = append(errs, fmt.Errorf("metadata slots %d outside [1, 4096]", p.Slots))
	}
	if p.Bandwidth < 1<<20 {
		errs = append(errs, fmt.Errorf("bandwidth %d B/s below 1 MiB/s", p.Bandwidth))
	}
	if p.DirEntriesPerOp < 1 {
		errs = append(errs, fmt.Errorf("directory entries per readdir operation %d below 1", p.DirEntriesPerOp))
	}
	return errors.Join(errs...)
}

// MetadataOpsPerSecond is the server's metadata capacity.
func (p Params) MetadataOpsPerSecond() float64 {
	if p.MetadataService <= 0 {
		return 0 // unlimited
	}
	return float64(p.Slots) / p.MetadataService.Seconds()
}

// ScaleCapacity returns p with its metadata capacity (Slots /
// MetadataService) divided by ratio, for a scale model: when this
// emulator's clients stand in for ratio times as many real ones, each of
// them must get the share of the server a real client gets. Slots shrink
// in proportion while at least one is left; below one slot, one slot
// serves with the service time that gives the scaled capacity, so an
// operation on an idle server then takes longer than MetadataService.
// Data bandwidth is left as it is. ratio must be positive.
func (p Params) ScaleCapacity(ratio float64) (Params, error) {
	if !(ratio > 0) || math.IsInf(ratio, 0) {
		return p, fmt.Errorf("capacity scale ratio %v: want a positive finite number", ratio)
	}
	capacity := p.MetadataOpsPerSecond() / ratio
	if capacity <= 0 {
		return p, nil // unlimited stays unlimited
	}
	slots := int(math.Floor(float64(p.Slots)/ratio + 1e-9))
	q := p
	q.Slots = max(slots, 1)
	q.MetadataService = time.Duration(math.Round(float64(q.Slots) / capacity * float64(time.Second)))
	if err := q.Validate(); err != nil {
		return p, fmt.Errorf("capacity scaled by 1/%v: %w", ratio, err)
	}
	return q, nil
}
