package pfsbench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeOctal(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeOctal undoes mountinfo's \040-style escapes.
func unescapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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
