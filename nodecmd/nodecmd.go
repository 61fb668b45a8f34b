// Package nodecmd is the copper-node command: serve one node (daemonized
// or in the foreground) and the control commands stats, wait, stop,
// snapshot and memory, which talk to a node over its mount's control socket.
//
//	copper-node [serve] --book FILE --rank R [--site NAME|PATH] [--foreground] [settings flags]
//	copper-node stats --mount DIR [--json]
//	copper-node wait  --mount DIR [--timeout D] [--prefetched] [--job-id ID]
//	copper-node stop  --mount DIR [--timeout D]
//	copper-node snapshot --mount DIR [--tag T]
//	copper-node memory --mount DIR [--heap-profile FILE] [--gc] [--json]
package nodecmd

import (
	"fmt"
	"os"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/internal/manpage"
	"github.com/hpc-copper/copper/internal/version"
)

// Run runs copper-node with args (without the program name) and returns
// its exit status.
func Run(args []string) int {
	if version.IsVersionArgs(args) {
		fmt.Print(version.Get().Format("copper-node"))
		return 0
	}
	if len(args) == 2 && args[0] == "help" && args[1] == "man" { // hidden: make install writes the man page with it
		if err := writeMan(); err != nil {
			fmt.Fprintf(os.Stderr, "copper-node help man: %v\n", err)
			return 1
		}
		return 0
	}
	cmd := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "serve", "stats", "stop", "wait", "snapshot", "memory":
			cmd, args = args[0], args[1:]
		case "help", "-h", "--help":
			fmt.Fprint(os.Stdout, usage)
			return 0
		}
	}
	var err error
	switch cmd {
	case "serve":
		return serve(args)
	case "stats":
		err = stats(args)
	case "stop":
		err = stop(args)
	case "wait":
		err = wait(args)
	case "snapshot":
		err = snapshot(args)
	case "memory":
		err = memory(args, os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-node %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

const usage = `copper-node: one node of copper's read-only cooperative cache.

  copper-node [serve] --book FILE --rank R --token-file F [--site NAME|PATH] [--foreground] [flags]
      Start the node. Without --foreground it daemonizes and returns 0 once the
      mount is up and the node is tree-ready (non-zero with the reason otherwise).
  copper-node stats --mount DIR [--json]   cache tables and counters of the node serving DIR
  copper-node wait  --mount DIR [--timeout D] [--prefetched] [--job-id ID]
      Block until that node is tree-ready; with --prefetched, also until its
      prefetch (setting prefetch) has finished, then print its summary (exits
      non-zero if the manifest could not be read or the node stopped first).
      A start on DIR that failed (for job ID, if given) ends the wait at once,
      printing its reason and the log files that exist.
  copper-node stop  --mount DIR [--timeout D]   stop it cleanly (unmount, exit)
  copper-node snapshot --mount DIR [--tag T]   write profiling/<T>/ and tables/<T>/ in the
      node's job directory now (default tag ioctl-snapshot); prints the directories
  copper-node memory --mount DIR [--heap-profile FILE] [--gc] [--json]
      where that node's memory went (resident set, Go heap by class, stacks,
      GOGC and memory limit); --heap-profile writes its heap profile (pprof)
  copper-node --version   (or: version) version, commit and Go version

Run 'copper-node serve --help' for every settings flag.
`

// writeMan writes copper-node(1) to stdout from serve's own flags and the
// settings table.
func writeMan() error {
	var a serveArgs
	s := config.Default()
	fs := serveFlags(&a, &s)
	return manpage.Write(os.Stdout, manpage.Page{
		Name:     "copper-node",
		Summary:  "one node of copper's read-only cooperative cache",
		Version:  version.Get().Version,
		Synopsis: usage,
		Flags:    fs,
		Settings: s.Describe(),
		SeeAlso:  []string{"copper-launch(1)", "copper-report(1)"},
	})
}
