// Command copper-launch starts copper on every node of a job: run it once
// per node under mpiexec or srun, or with --local N on one host. See
// package launch and `copper-launch --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hpc-copper/copper/launch"
)

func main() {
	env, err := launch.ProcessEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-launch: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := launch.Main(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}
