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

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/internal/manpage"
	"github.com/hpc-copper/copper/internal/version"
	"github.com/hpc-copper/copper/launch"
)

func main() {
	args := os.Args[1:]
	// Answered before anything else: --version must work where the
	// launcher's environment (rank variables, hostname) is not there.
	if version.IsVersionArgs(args) {
		fmt.Print(version.Get().Format("copper-launch"))
		os.Exit(0)
	}
	if len(args) == 2 && args[0] == "help" && args[1] == "man" { // hidden: make install writes the man page with it
		if err := writeMan(); err != nil {
			fmt.Fprintf(os.Stderr, "copper-launch help man: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	env, err := launch.ProcessEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-launch: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := launch.Main(ctx, env, args)
	stop()
	os.Exit(code)
}

// writeMan writes copper-launch(1) to stdout from the launcher's own flags
// and the settings table.
func writeMan() error {
	fs, err := launch.Flags()
	if err != nil {
		return err
	}
	s := config.Default()
	return manpage.Write(os.Stdout, manpage.Page{
		Name:     "copper-launch",
		Summary:  "start copper, one launcher per node of a job",
		Version:  version.Get().Version,
		Synopsis: launch.Usage,
		Flags:    fs,
		Settings: s.Describe(),
		SeeAlso:  []string{"copper-node(1)", "copper-report(1)"},
	})
}
