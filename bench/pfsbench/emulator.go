package pfsbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/bench/slowpfs"
)

// emulator is a running slowpfs process with its client mounts.
type emulator struct {
	cmd       *exec.Cmd
	stderr    *cappedBuffer
	sock      string
	mountBase string
	clients   []string // client mount directories, index = client
	done      chan error
	args      []string
}

// emulatorArgs are the slowpfs flags for the model p.
func (r *runner) emulatorArgs(clients int, p slowpfs.Params) []string {
	return []string{
		"--backing", r.backing,
		"--mount-base", r.pfsMounts,
		"--clients", strconv.Itoa(clients),
		"--control", r.emuSock,
		"--metadata-service", p.MetadataService.String(),
		"--slots", strconv.Itoa(p.Slots),
		"--bandwidth", strconv.FormatInt(p.Bandwidth, 10),
		"--dir-entries-per-op", strconv.Itoa(p.DirEntriesPerOp),
		"--client-cache", r.cfg.ClientCache.String(),
	}
}

// startEmulator starts slowpfs with the given number of clients and
// model, and registers its stop.
func (r *runner) startEmulator(ctx context.Context, clients int, p slowpfs.Params) (*emulator, error) {
	args := r.emulatorArgs(clients, p)
	cmd := exec.Command(filepath.Join(r.cfg.Bin, "slowpfs"), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	e := &emulator{cmd: cmd, stderr: prepare(cmd), sock: r.emuSock, mountBase: r.pfsMounts, done: make(chan error, 1), args: args}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start slowpfs: %w", err)
	}
	r.cleanup.push("stop slowpfs", e.stop)
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if !ok && strings.HasPrefix(sc.Text(), "slowpfs: ready") {
				ok = true
				ready <- nil
			}
		}
		if !ok {
			ready <- errors.New("exited before it was ready")
		}
		e.done <- cmd.Wait()
	}()
	timer := time.NewTimer(r.cfg.StepTimeout)
	defer timer.Stop()
	select {
	case err = <-ready:
	case <-timer.C:
		err = fmt.Errorf("not ready after %v", r.cfg.StepTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("slowpfs with %d clients: %w: %s", clients, err, e.stderr.String())
	}
	for i := range clients {
		e.clients = append(e.clients, r.pfsClient(i))
	}
	return e, nil
}

// pfsClient is the mount directory of slowpfs client i.
func (r *runner) pfsClient(i int) string {
	return filepath.Join(r.pfsMounts, strconv.Itoa(i))
}

// reset returns the counters since the last reset and zeroes them.
func (e *emulator) reset(ctx context.Context) (slowpfs.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return slowpfs.Query(ctx, e.sock, slowpfs.CmdReset)
}

// stop ends slowpfs (it unmounts its clients on SIGTERM) and detaches
// whatever it left mounted.
func (e *emulator) stop() error {
	if e.cmd.Process == nil {
		return nil
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-e.done:
		e.done <- err // stop may be called again
	case <-time.After(20 * time.Second):
		killGroup(e.cmd)
		err = errors.New("did not stop within 20s of SIGTERM; killed")
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		err = fmt.Errorf("%w: %s", err, e.stderr.String())
	}
	if derr := detachAll(e.mountBase); derr != nil {
		err = errors.Join(err, derr)
	}
	_ = os.Remove(e.sock)
	return err
}
