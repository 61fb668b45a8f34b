package scalemodel

// A parent↔child call between two processes, each with cores to spare:
// a cluster node's call (its daemon on cores of its own, the parent on
// another node), measured here without the host's oversubscription,
// which the hop fitted on a measured run (fitHopCPU) carries.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	cnet "github.com/hpc-copper/copper/net"
	"github.com/hpc-copper/copper/op"
)

// HopServerCommand is the hidden subcommand of bench/cmd/scalemodel that
// serves the calls of measureHopProcesses.
const HopServerCommand = "hop-server"

const (
	hopTokenEnv = "SCALEMODEL_HOP_TOKEN"
	hopCPUPath  = "/cpu" // answers this process's CPU so far (ns) in Attr.Size
)

// ServeHop is the child's side: it answers a call on "/<n>" with n bytes
// and one on hopCPUPath with its own CPU, prints its address, and serves
// until stdin closes.
func ServeHop(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	token := os.Getenv(hopTokenEnv)
	if token == "" {
		return fmt.Errorf("%s: no %s", HopServerCommand, hopTokenEnv)
	}
	// The answers, made once (the in-process loop's are too); read-only
	// while the server's goroutines call h.
	bufs := map[string][]byte{"/4096": make([]byte, 4<<10), "/131072": make([]byte, 128<<10)}
	h := func(_ context.Context, _ op.Op, path string) op.Result {
		if path == hopCPUPath {
			return op.Result{Attr: op.Attr{Size: int64(cpuNow() * 1e9)}}
		}
		b := bufs[path]
		return op.Result{Attr: op.Attr{Size: int64(len(b))}, Data: b}
	}
	srv, err := cnet.Listen(ctx, "127.0.0.1:0", h, cnet.Config{Token: []byte(token), MaxFrame: 4 << 20})
	if err != nil {
		return err
	}
	defer srv.Shutdown(context.Background())
	if _, err := fmt.Fprintln(stdout, srv.Addr()); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, stdin)
	return nil
}

// measureHopProcesses times calls from this process to a child started
// as `self hop-server` and returns both ends' CPU per call (4 KiB answer,
// less its bytes) and per answer byte.
func measureHopProcesses(ctx context.Context, self string) (perCall, perByte float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	token := "scalemodel-hop-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cmd := exec.CommandContext(ctx, self, HopServerCommand)
	cmd.Env = append(os.Environ(), hopTokenEnv+"="+token)
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("start %s %s: %w", self, HopServerCommand, err)
	}
	defer func() { in.Close(); _ = cmd.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("%s %s: no address: %w", self, HopServerCommand, err)
	}
	c, err := cnet.Dial(ctx, strings.TrimSpace(addr), cnet.Config{Token: []byte(token), MaxFrame: 4 << 20})
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	childCPU := func() (float64, error) {
		r, err := c.Call(ctx, op.Read, hopCPUPath)
		return float64(r.Attr.Size) / 1e9, err
	}
	const calls = 3000
	cpuPer := func(size int) (float64, error) {
		path := "/" + strconv.Itoa(size)
		for range 100 { // warm up buffers
			if _, err := c.Call(ctx, op.Read, path); err != nil {
				return 0, err
			}
		}
		c0, err := childCPU()
		if err != nil {
			return 0, err
		}
		own := cpuNow()
		for range calls {
			r, err := c.Call(ctx, op.Read, path)
			if err != nil || len(r.Data) != size {
				return 0, fmt.Errorf("call %s: %v (%d bytes)", path, err, len(r.Data))
			}
		}
		own = cpuNow() - own
		c1, err := childCPU()
		return (own + c1 - c0) / calls, err
	}
	small, err1 := cpuPer(4 << 10)
	big, err2 := cpuPer(128 << 10)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	perByte = max(0, (big-small)/float64(124<<10))
	return max(0, small-perByte*4096), perByte, nil
}
