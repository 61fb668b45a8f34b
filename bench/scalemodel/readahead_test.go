package scalemodel

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/bench/replay"
)

// The kernel's first window for a read at the start of a file
// (get_init_ra_size), for a 1 MiB window (256 pages).
func TestInitWindow(t *testing.T) {
	for _, tc := range []struct {
		name      string
		req, want int64
	}{
		{"an ELF header: one page, quadrupled", 832, 16 << 10},
		{"8 pages (1/32 of the window): quadrupled", 32 << 10, 128 << 10},
		{"23 pages: 32, doubled", 91749, 256 << 10},
		{"64 pages (1/4): doubled", 256 << 10, 512 << 10},
		{"77 pages: 128, the whole window", 312787, 1 << 20},
		{"beyond the window: the window", 3 << 20, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, initWindow(tc.req, 1<<20))
		})
	}
}

func TestReadRequests(t *testing.T) {
	mib := int64(1 << 20)
	for _, tc := range []struct {
		name            string
		maxRead, window int64
		size, first     int64
		want            int
	}{
		{"a .pyc read in one call: one READ", mib, mib, 312786, 312787, 1},
		{"a file over the window read in one call", mib, mib, 3 * mib, 3*mib + 1, 3},
		{"a shared object: its header, then one window", mib, mib, 663168, 832, 2},
		{"a large shared object: its header, then full windows", mib, mib, 4673656, 832, 1 + 5},
		{"a header that holds the whole file", mib, mib, 10000, 832, 1},
		{"a mapping: full windows", mib, mib, 2*mib + 1, 0, 3},
		{"a window split at max_read", 128 << 10, mib, 2 * mib, 0, 16},
		{"no rule (old calibration): one per 128 KiB", 0, 0, 663168, 832, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Calibration{FuseMaxRead: tc.maxRead, FuseReadahead: tc.window}
			assert.Equal(t, tc.want, c.readRequests(tc.size, tc.first))
		})
	}
}

// The model's READs per node follow the first access: the shared
// object's header read costs a READ of its own, the .pyc's whole read one.
func TestNodeFuseReadsByFirstAccess(t *testing.T) {
	w := &Workload{
		Trace: "toy",
		Ops: []replay.Op{
			{Kind: replay.Open, Path: "/m.so", FD: 3},
			{Kind: replay.Read, Path: "/m.so", FD: 3, Size: 832},
			{Kind: replay.Mmap, Path: "/m.so", FD: 3, Size: 663168},
			{Kind: replay.Open, Path: "/m.pyc", FD: 4},
			{Kind: replay.Read, Path: "/m.pyc", FD: 4, Size: 663169},
		},
		Dirs: map[string][]Entry{"/": {{Name: "m.pyc", Size: 663168}, {Name: "m.so", Size: 663168}}}, // sorted by name
	}
	cal := toyCal(w)
	cal.Sources = map[string]string{}
	require.Equal(t, 6+6, cal.nodeFuse().ops[fuseRead], "without the rule: one per 128 KiB")
	cal.fitReadahead()
	assert.Equal(t, 2+1, cal.nodeFuse().ops[fuseRead])
	assert.Contains(t, cal.Sources["fuse_max_read_bytes"], "config.Default")
}
