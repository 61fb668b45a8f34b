package launch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func cpuSet(cpus ...int) unix.CPUSet {
	var s unix.CPUSet
	for _, c := range cpus {
		s.Set(c)
	}
	return s
}

func TestUsableCores(t *testing.T) {
	allowed := cpuSet(0, 1, 2, 3, 48, 49)
	tests := []struct {
		name          string
		want          []int
		use, skipped  []int
		wantErrSubstr string
	}{
		{"none wanted", nil, nil, nil, ""},
		{"all available", []int{48, 49}, []int{48, 49}, nil, ""},
		{"some skipped", []int{1, 50, 51}, []int{1}, []int{50, 51}, ""},
		{"beyond the set size", []int{2, maxCPU, 1 << 20}, []int{2}, []int{maxCPU, 1 << 20}, ""},
		{"none available", []int{50, 51}, nil, []int{50, 51}, "service_cores 50-51: none of these CPUs is available to this process (available: 0-3,48-49)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			use, skipped, err := usableCores(tt.want, allowed)
			if tt.wantErrSubstr != "" {
				require.ErrorContains(t, err, tt.wantErrSubstr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.use, use)
			assert.Equal(t, tt.skipped, skipped)
		})
	}
}

func TestFormatCPUs(t *testing.T) {
	tests := map[string][]int{
		"none":        nil,
		"5":           {5},
		"0-3":         {0, 1, 2, 3},
		"0-1,4,48-51": {0, 1, 4, 48, 49, 50, 51},
		"7,3":         {7, 3},
	}
	for want, cpus := range tests {
		assert.Equal(t, want, formatCPUs(cpus))
	}
}

// TestPinThread pins a throwaway thread: pinThread leaves its goroutine
// locked, so the thread exits with the goroutine and the test process
// keeps its affinity.
func TestPinThread(t *testing.T) {
	var before unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &before))
	cpus := cpusOf(before)
	require.NotEmpty(t, cpus)
	target := cpus[len(cpus)-1]

	type result struct {
		got unix.CPUSet
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		if r.err = pinThread([]int{target}); r.err == nil {
			r.err = unix.SchedGetaffinity(0, &r.got)
		}
		done <- r
	}()
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, []int{target}, cpusOf(r.got))

	go func() {
		done <- result{err: pinThread([]int{maxCPU - 1})}
	}()
	if r := <-done; !before.IsSet(maxCPU - 1) {
		require.ErrorContains(t, r.err, "pinning to service_cores")
	}
	require.NoError(t, pinThread(nil), "no cores: nothing to do")

	use, _, err := planCores([]int{target, maxCPU + 5})
	require.NoError(t, err)
	assert.Equal(t, []int{target}, use)
}
