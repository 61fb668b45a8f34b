package control

import (
	"os"

	"golang.org/x/sys/unix"
)

// dupFD duplicates f's descriptor (same open file), as fork would.
func dupFD(f *os.File) (int, error) { return unix.Dup(int(f.Fd())) }
