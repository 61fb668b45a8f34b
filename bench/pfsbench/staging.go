package pfsbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SetupCPU is a cold row's setup CPU seconds, for the scale model
// (bench/scalemodel): what N starts at once cost the host's cores.
type SetupCPU struct {
	DaemonStartS float64 `json:"daemon_start_s,omitempty"` // copper: the daemons' CPU from their start to the cold phase (/proc/<pid>/stat) and their reaped foreground processes' (rusage)
	ExtractS     float64 `json:"extract_s,omitempty"`      // staging: the N tar -x's CPU (children's rusage)
	CreateS      float64 `json:"create_s,omitempty"`       // staging: the tar -c's CPU through PFS client 0 (children's rusage)
	// staging: the emulator's CPU while the N tar -x read the tarball
	// (its threads' schedstat): what serving one large sequential read costs it.
	ExtractEmulatorS float64 `json:"extract_emulator_s,omitempty"`
}

// stageCPU is the staging's children's CPU: the one tar -c, the N tar -x.
type stageCPU struct{ create, extract, extractEmulator time.Duration }

// stagingTar is where the staging mode's tarball lives on the emulated
// filesystem, beside (not inside) the package tree.
const stagingTar = "_staging/site.tar"

// stage is the staging mode's preparation, timed: tar the tree once
// through PFS client 0, then on every node at once extract the tarball,
// read through that node's PFS client, into a node-local directory.
// Writing the tarball to the PFS is not charged (the emulator models
// reads); reading the tree for it and every node's read of it are.
// cpu is the CPU the tar -c and the N tar -x spent (the children's
// rusage over each): the scale model charges it, measured in the run it
// validates against, not in a later tar on a differently loaded host.
func (r *runner) stage(ctx context.Context, em *emulator, n int) (elapsed time.Duration, locals []string, cpu stageCPU, err error) {
	tarball := filepath.Join(r.backing, stagingTar)
	if err := os.MkdirAll(filepath.Dir(tarball), 0o755); err != nil {
		return 0, nil, stageCPU{}, err
	}
	r.cleanup.push("remove staged copies", func() error {
		return errors.Join(os.RemoveAll(filepath.Dir(tarball)), os.RemoveAll(r.localDir))
	})
	start, created := time.Now(), childrenCPU()
	if _, err := runBounded(ctx, r.cfg.StepTimeout, nil, "tar", "-cf", tarball, "-C", em.clients[0], "site"); err != nil {
		return 0, nil, stageCPU{}, fmt.Errorf("staging: tar the tree: %w", err)
	}
	before, emu := childrenCPU(), []int{em.cmd.Process.Pid}
	cpu.create = before - created
	emuBefore := cpuTime(emu)
	locals = make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		locals[i] = filepath.Join(r.localDir, strconv.Itoa(i))
		client := em.clients[i%len(em.clients)]
		wg.Go(func() {
			if err := os.MkdirAll(locals[i], 0o755); err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = runBounded(ctx, r.cfg.StepTimeout, nil, "tar", "-xf", filepath.Join(client, stagingTar), "-C", locals[i])
		})
	}
	wg.Wait()
	cpu.extract, cpu.extractEmulator = childrenCPU()-before, cpuTime(emu)-emuBefore
	if err := errors.Join(errs...); err != nil {
		return 0, nil, stageCPU{}, fmt.Errorf("staging: extract on %d nodes: %w", n, err)
	}
	return time.Since(start), locals, cpu, nil
}

// childrenCPU is the user + system time of this process's waited-for
// children (RUSAGE_CHILDREN); 0 if getrusage fails.
func childrenCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
