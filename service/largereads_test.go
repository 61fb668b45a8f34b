package service_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/profile"
	"github.com/hpc-copper/copper/service"
)

// Through a real mount: a file over max_cacheable_bytes, read straight
// from the target, is counted in `copper-node stats` and in the profile
// (it used to be in neither), and isatty's TCGETS on a copper file is
// counted as a terminal ioctl, not as an error (it used to be an error).
func TestLargeReadsAndTerminalIoctlsThroughMount(t *testing.T) {
	const limit = 64 << 10
	src := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*limit/16+100)
	require.NoError(t, os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "small.py"), []byte("x = 1\n"), 0o644))
	p := startProfiledNode(t, src, func(s *config.Settings) {
		s.MaxCacheableBytes = limit
		s.LargeFiles = "direct" // read straight from the target, as Copper 1.0
	})

	require.NoError(t, within(t, "read big.bin", func() error {
		got, err := os.ReadFile(filepath.Join(p.mnt, "big.bin"))
		if err == nil && !bytes.Equal(got, big) {
			err = errors.New("big.bin: wrong bytes")
		}
		return err
	}))
	const probes = 3
	require.NoError(t, within(t, "isatty on small.py", func() error {
		f, err := os.Open(filepath.Join(p.mnt, "small.py"))
		if err != nil {
			return err
		}
		defer f.Close()
		for range probes {
			if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); !errors.Is(err, unix.ENOTTY) {
				return errors.New("TCGETS on a copper file: want ENOTTY, got " + errString(err))
			}
		}
		return nil
	}))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st service.Status
	require.NoError(t, control.Call(ctx, p.mnt, control.Request{Cmd: "stats"}, &st))
	assert.EqualValues(t, 1, st.DirectReads.Files, "stats: files read directly")
	assert.GreaterOrEqual(t, st.DirectReads.Bytes, int64(len(big)), "stats: bytes read directly")
	assert.GreaterOrEqual(t, st.DirectReads.Opens, int64(1))

	require.NoError(t, p.svc.Profile().Snapshot("counted"))
	agg := aggregate(t, p.file("counted", "profiling_aggregate.csv"))
	assert.Equal(t, "1", agg["large_direct_files"])
	assert.Equal(t, strconv.FormatInt(st.DirectReads.Bytes, 10), agg["large_direct_bytes"])
	assert.Equal(t, src, agg["target"], "the job's own record of its target")
	assert.Equal(t, p.mnt, agg["mount"])
	assert.Equal(t, strconv.Itoa(probes), agg["ioctl_terminal_count"])
	large := csvFile(t, p.file("counted", "profiling_large_files.csv"), profile.LargeFilesHeader)
	require.Len(t, large, 1)
	assert.Equal(t, []string{"/big.bin", strconv.Itoa(len(big))}, large[0][:2])

	ops := opsTable(t, p.file("counted", "profiling_operations.csv"))
	assert.EqualValues(t, probes, ops["ioctl"]["total_calls"])
	assert.Zero(t, ops["ioctl"]["errors"], "terminal ioctls are not errors")
	for _, rec := range csvFile(t, p.file("counted", "profiling_errors.csv"), profile.ErrorsHeader) {
		assert.NotEqual(t, "ENOTTY", rec[2], "profiling_errors.csv: %v", rec)
	}
}

func errString(err error) string {
	if err == nil {
		return "success"
	}
	return err.Error()
}
