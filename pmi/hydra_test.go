package pmi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/internal/testkit"
)

// childEnv makes the test binary, started by mpiexec, a PMI client
// instead of a test run; its value is the wire to speak.
const childEnv = "COPPER_PMI_TEST_CHILD"

func TestMain(m *testing.M) {
	if w := os.Getenv(childEnv); w != "" {
		if err := hydraChild(w); err != nil {
			fmt.Fprintln(os.Stderr, "pmi child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hydraChild is one rank under a real launcher: each rank puts a key,
// all fence, each reads every rank's key and a missing one, finalizes.
func hydraChild(wireName string) error {
	w, err := strconv.Atoi(wireName)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, ok, err := EndpointFromEnv(os.Getenv)
	if err != nil || !ok {
		return fmt.Errorf("no PMI endpoint (ok=%v): %v", ok, err)
	}
	c, err := Dial(ctx, e, Wire(w))
	if err != nil {
		return err
	}
	defer c.Close()
	if e.FD >= 0 {
		var st unix.Stat_t
		if err := unix.Fstat(e.FD, &st); !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("PMI_FD=%d is still open after Dial (fstat: %v)", e.FD, err)
		}
	}
	r, size := c.Rank(), c.Size()
	if r < 0 { // PMI-1 over PMI_FD: the launcher's variables say
		r, _ = strconv.Atoi(os.Getenv("PMI_RANK"))
		size, _ = strconv.Atoi(os.Getenv("PMI_SIZE"))
	}
	if err := c.Put(ctx, "copper-test-"+strconv.Itoa(r), fmt.Sprintf("rank%d@127.0.0.1:%d", r, 4000+r)); err != nil {
		return err
	}
	if err := c.Fence(ctx); err != nil {
		return err
	}
	var got []string
	for i := range size {
		v, err := c.Get(ctx, "copper-test-"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		got = append(got, v)
	}
	if _, err := c.Get(ctx, "copper-test-none"); !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("missing key: got %v, want ErrNotFound", err)
	}
	if err := c.Finalize(ctx); err != nil {
		return err
	}
	fmt.Printf("rank %d of %d %s kvs=%q got %s\n", r, size, c.Wire(), c.KVSName(), strings.Join(got, ","))
	return nil
}

// TestRealHydra runs the client under MPICH's own mpiexec (Hydra), over
// PMI_FD and over PMI_PORT (-pmi-port), on both wires.
func TestRealHydra(t *testing.T) {
	mpiexec, err := exec.LookPath("mpiexec.mpich")
	if err != nil {
		t.Fatalf("mpiexec.mpich not found (%v): run scripts/setup-test-deps.sh (Debian package mpich)", err)
	}
	self, err := os.Executable()
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		wire  Wire
		extra []string
	}{
		{"PMI_FD/PMI-1", Wire1, nil},
		{"PMI_FD/PMI-2", Wire2, nil},
		{"PMI_PORT/PMI-1", Wire1, []string{"-pmi-port"}},
		{"PMI_PORT/PMI-2", Wire2, []string{"-pmi-port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.extra...), "-n", "3", self)
			cmd := exec.Command(mpiexec, args...)
			cmd.Env = append(cleanEnv(), childEnv+"="+strconv.Itoa(int(tc.wire)))
			r, err := testkit.RunBounded(cmd, time.Minute)
			require.NoError(t, err, "%s", r)
			require.Equal(t, 0, r.Code, "%s", r)
			for rk := range 3 {
				assert.Contains(t, r.Stdout, fmt.Sprintf("rank %d of 3 %s", rk, tc.wire), "%s", r)
			}
			assert.Equal(t, 3, strings.Count(r.Stdout, "got rank0@127.0.0.1:4000,rank1@127.0.0.1:4001,rank2@127.0.0.1:4002\n"), "%s", r)
			assert.Empty(t, r.Stderr, "Hydra reports nothing abnormal")
			assert.NotContains(t, r.Stdout, "BAD TERMINATION", "every rank finalized")
		})
	}
}

// cleanEnv is this process's environment without an enclosing launcher's
// PMI variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PMI_") && !strings.HasPrefix(kv, childEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}
