// Command copper-node serves one copper node: a read-only FUSE view of the
// target, backed by its parent in the overlay tree (or, at a root, by the
// backing filesystem), and a server for its children. See package nodecmd
// and `copper-node --help`.
package main

import (
	"os"

	"github.com/hpc-copper/copper/nodecmd"
)

func main() { os.Exit(nodecmd.Run(os.Args[1:])) }
