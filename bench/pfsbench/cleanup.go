package pfsbench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/hpc-copper/copper/internal/osutil"
)

// cleanups is a stack of undo functions: whatever is started registers
// how to stop it, and everything is undone last-in first-out, so copper
// nodes stop before the filesystem they read.
type cleanups struct {
	mu  sync.Mutex
	fns []cleanupFn
}

type cleanupFn struct {
	what string
	fn   func() error
}

func (c *cleanups) push(what string, fn func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, cleanupFn{what, fn})
}

// popTo undoes everything pushed after mark (a value of len) and returns
// the errors joined.
func (c *cleanups) popTo(mark int) error {
	var errs []error
	for {
		c.mu.Lock()
		if len(c.fns) <= mark {
			c.mu.Unlock()
			return errors.Join(errs...)
		}
		f := c.fns[len(c.fns)-1]
		c.fns = c.fns[:len(c.fns)-1]
		c.mu.Unlock()
		if err := f.fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.what, err))
		}
	}
}

func (c *cleanups) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.fns)
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	ms, err := osutil.MountsUnder(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Point)
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// detachAll lazily unmounts everything mounted at or below dir: the last
// resort after helpers were stopped or killed.
func detachAll(dir string) error {
	var errs []error
	for range 4 {
		mounts, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, m := range mounts {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				errs = append(errs, fmt.Errorf("umount -l %s: %w", m, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeWork deletes the scratch directory once nothing is mounted in
// it; with a mount left, deleting would descend into a live filesystem.
func removeWork(dir string) error {
	if err := detachAll(dir); err != nil {
		return err
	}
	if left, _ := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("%d mounts left under %s (%s); not removing it", len(left), dir, left[0])
	}
	return os.RemoveAll(filepath.Clean(dir))
}
