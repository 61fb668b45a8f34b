package pfsbench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// The biggest shared library a Debian package ships on this machine (as
// service TestMountLargeSharedLibraryMmapAndDlopen): every node maps it
// whole and dlopens it through its mount after the cold pass.
const (
	largeLibHost    = "/usr/lib/x86_64-linux-gnu/libLLVM-15.so.1"
	largeLibPackage = "libllvm15"
	largeLibFile    = "large/lib/libLLVM-15.so.1"
	// largeLibScript maps the library whole, prints its SHA-256, then
	// loads it and looks up one of its functions.
	largeLibScript = `import ctypes, hashlib, mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print(hashlib.sha256(m).hexdigest())
l = ctypes.CDLL(sys.argv[1])
print(bool(l.LLVMContextCreate))`
)

// LargeDlopen is every node mapping and loading the library at once.
type LargeDlopen struct {
	Library      string  `json:"library"`
	Bytes        int64   `json:"bytes"`
	Nodes        int     `json:"nodes"`
	WallS        float64 `json:"wall_s"`
	BackendBytes int64   `json:"backend_bytes"` // of the library
	// OtherBytes is what the backend served of other files in the same
	// window (a previous pass's readahead still landing), kept apart so
	// the library's own count is exact and the rest is not hidden.
	OtherBytes int64  `json:"other_bytes,omitempty"`
	Skipped    string `json:"skipped,omitempty"` // why not run
}

// copyLargeLib puts the library into the emulated filesystem and returns
// its SHA-256, or "" with why when this machine does not have it.
func copyLargeLib(backing string) (sum, why string, err error) {
	src, err := os.Open(largeLibHost)
	if err != nil {
		return "", fmt.Sprintf("%s not installed (Debian package %s)", largeLibHost, largeLibPackage), nil
	}
	defer src.Close()
	dst := filepath.Join(backing, largeLibFile)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", "", err
	}
	f, err := os.Create(dst)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), src); err != nil {
		return "", "", fmt.Errorf("copy %s: %w", largeLibHost, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), "", f.Close()
}

// largeDlopen has every node's python map the library whole and dlopen
// it through its own mount at the same time, each in a process of its
// own (a page fault of this process on its own mount could stall the Go
// runtime); the emulator counts what the root read.
func (r *runner) largeDlopen(ctx context.Context, lc LargeConfig, tree *copperTree, em *emulator, sum string) (*LargeDlopen, error) {
	fi, err := os.Stat(filepath.Join(r.backing, largeLibFile))
	if err != nil {
		return nil, err
	}
	d := &LargeDlopen{Library: filepath.Base(largeLibHost), Bytes: fi.Size(), Nodes: len(tree.mounts)}
	r.progress("large file: %d nodes each map and dlopen %s (%d MiB) through their mount", d.Nodes, d.Library, d.Bytes>>20)
	if _, err := em.reset(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, lc.Timeout)
	defer cancel()
	want := []byte(sum + "\nTrue\n")
	errs := make([]error, len(tree.mounts))
	var wg sync.WaitGroup
	start := time.Now()
	for i, m := range tree.mounts {
		wg.Go(func() {
			path := filepath.Join(m, largeLibFile)
			out, err := exec.CommandContext(ctx, r.cfg.Python, "-c", largeLibScript, path).CombinedOutput()
			if err != nil || !bytes.Equal(out, want) {
				errs[i] = fmt.Errorf("map and dlopen %s: %v: %q, want %q", path, err, out, want)
			}
		})
	}
	wg.Wait()
	d.WallS = time.Since(start).Seconds()
	if err := firstErrors(errs, 2); err != nil {
		return nil, err
	}
	snap, err := em.reset(ctx)
	if err != nil {
		return nil, err
	}
	d.BackendBytes = snap.Counters.Paths["/"+largeLibFile].Bytes
	d.OtherBytes = snap.Model.DataBytes - d.BackendBytes
	return d, nil
}
