// Package stalemount detaches FUSE mounts whose server died or hung. It
// links no FUSE library, so copper-launch can clean a mount directory
// without carrying go-fuse; the fuse package uses it too.
package stalemount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hpc-copper/copper/internal/osutil"
)

// ErrLive reports that a FUSE file system at the mount directory
// still answers: it belongs to a running process and is not stale.
var ErrLive = errors.New("a live FUSE file system is mounted there")

const (
	// staleProbeTimeout bounds the stat that tells a dead server from a
	// live one; a server that does not answer within it is hung.
	staleProbeTimeout = 2 * time.Second
	// maxStackedMounts bounds the detach loop: each killed run may have
	// left one mount on top of the previous one.
	maxStackedMounts = 8
	// helperTimeout bounds fusermount.
	helperTimeout = 10 * time.Second
)

// Clean lazily unmounts FUSE mounts at mount whose server is gone
// (a killed run: "transport endpoint is not connected") or hung, with a
// warning, and reports whether it did. A FUSE mount that still answers
// is left alone and reported as ErrLive.
func Clean(mount string, logger *slog.Logger) (bool, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(mount)
	if err != nil {
		return false, fmt.Errorf("clean stale mount %q: %w", mount, err)
	}
	cleaned := false
	for range maxStackedMounts {
		top, found, err := osutil.TopMount(abs)
		if err != nil {
			return cleaned, err
		}
		if !found || !top.IsFUSE() {
			return cleaned, nil
		}
		errno, answered := probeStatfs(abs, staleProbeTimeout)
		switch {
		case !answered:
			logger.Warn("hung FUSE mount found, unmounting it lazily", "mount", abs, "fstype", top.FSType,
				"probe_timeout", staleProbeTimeout)
		case errno == syscall.ENOTCONN || errno == syscall.ECONNABORTED:
			logger.Warn("stale FUSE mount found (its server is gone), unmounting it lazily", "mount", abs,
				"fstype", top.FSType, "errno", errno.Error())
		case errno == 0:
			return cleaned, fmt.Errorf("clean stale mount %s (%s): %w", abs, top.FSType, ErrLive)
		default:
			return cleaned, fmt.Errorf("clean stale mount %s (%s): stat: %w", abs, top.FSType, errno)
		}
		if err := Detach(abs); err != nil {
			return cleaned, fmt.Errorf("clean stale mount %s: %w", abs, err)
		}
		cleaned = true
		if !answered {
			// Release whoever waits on the hung server, our probe included.
			abortConnection(top.Minor, logger)
		}
	}
	return cleaned, fmt.Errorf("clean stale mount %s: still mounted after %d lazy unmounts", abs, maxStackedMounts)
}

// probeStatfs asks the file system at path for its statfs in the
// background, so a hung FUSE server costs the caller at most timeout (the
// goroutine waits until the server dies or its connection is aborted).
// statfs, not stat: the kernel answers stat of a dead mount's root from its
// attribute cache, but always sends statfs to the server, so only statfs
// tells a dead server (ENOTCONN) from a live one.
func probeStatfs(path string, timeout time.Duration) (errno syscall.Errno, answered bool) {
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		done <- syscall.Statfs(path, &st)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return osutil.Errno(err), true
	case <-timer.C:
		return 0, false
	}
}

// abortConnection aborts a FUSE connection through fusectl, when it is
// mounted, failing every request still waiting on it.
func abortConnection(minor uint32, logger *slog.Logger) {
	abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", minor)
	if err := os.WriteFile(abort, []byte("1"), 0); err != nil {
		logger.Warn("could not abort hung FUSE connection; its waiters stay blocked", "path", abort, "err", err)
	}
}

// Detach unmounts mount lazily: directly when root, else through fusermount.
func Detach(mount string) error {
	var direct error
	if os.Geteuid() == 0 {
		if direct = syscall.Unmount(mount, syscall.MNT_DETACH); direct == nil {
			return nil
		}
		direct = fmt.Errorf("umount2(%s, MNT_DETACH): %w", mount, direct)
	}
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		if bin, err = exec.LookPath("fusermount"); err != nil {
			return errors.Join(direct, fmt.Errorf("lazy unmount of %s: no fusermount3 or fusermount: %w", mount, err))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-u", "-z", mount).CombinedOutput()
	if err != nil {
		return errors.Join(direct, fmt.Errorf("%s -u -z %s: %w: %s", bin, mount, err, strings.TrimSpace(string(out))))
	}
	return nil
}
