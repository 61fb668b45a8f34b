package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hpc-copper/copper/internal/osutil"
)

// FuseConnections is where fusectl shows one directory per FUSE
// connection, named by the minor device number of its mount.
const FuseConnections = "/sys/fs/fuse/connections"

// detachRounds bounds DetachMountsUnder: each round may uncover a mount
// that was stacked under a detached one.
const detachRounds = 8

// RequireFuse fails (never skips) the test when this machine cannot
// mount, unmount and abort FUSE connections: it needs /dev/fuse,
// fusermount3 and root.
func RequireFuse(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("/dev/fuse: %v: this test needs FUSE; run `make test` or scripts/setup-test-deps.sh", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Fatalf("fusermount3 not found (%v): install the test dependencies with `make test` or scripts/setup-test-deps.sh", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("this test mounts, unmounts and aborts FUSE connections: run it as root (euid %d)", os.Geteuid())
	}
}

// DetachMountsUnder lazily unmounts (umount -l) every mount at or below
// dir, innermost first, and fails if any is left. A lazy unmount never
// waits on a dead FUSE server; requests already waiting on it are
// released only by AbortIfStuck.
func DetachMountsUnder(dir string) error {
	var errs []error
	for range detachRounds {
		left, err := osutil.MountsUnder(dir)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		errs = errs[:0]
		for i := len(left) - 1; i >= 0; i-- {
			if err := syscall.Unmount(left[i].Point, syscall.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("umount -l %s: %w", left[i].Point, err))
			}
		}
	}
	left, err := osutil.MountsUnder(dir)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		errs = append(errs, fmt.Errorf("%d mounts still under %s after %d rounds of umount -l, first %s",
			len(left), dir, detachRounds, left[0].Point))
		return errors.Join(errs...)
	}
	return nil
}

// EnsureFusectl mounts the fusectl file system at FuseConnections unless
// it is mounted there. An empty directory does not mean it is not
// mounted (it is empty while no FUSE connection exists), so mountinfo
// decides.
func EnsureFusectl() error {
	all, err := osutil.Mounts()
	if err != nil {
		return err
	}
	for _, m := range all {
		if m.Point == FuseConnections && m.FSType == "fusectl" {
			return nil
		}
	}
	if err := syscall.Mount("fusectl", FuseConnections, "fusectl", 0, ""); err != nil {
		return fmt.Errorf("mount fusectl at %s: %w", FuseConnections, err)
	}
	return nil
}

// AbortIfStuck aborts FUSE connection minor if requests are waiting on
// it: its server is dead or hung, and whoever waits would sleep
// uninterruptibly. It returns how many requests were waiting; a
// connection that is gone has none. fusectl must be mounted
// (EnsureFusectl).
func AbortIfStuck(minor uint32) (waiting int, err error) {
	dir := filepath.Join(FuseConnections, strconv.FormatUint(uint64(minor), 10))
	b, err := os.ReadFile(filepath.Join(dir, "waiting"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("FUSE connection %d: %w", minor, err)
	}
	waiting, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("FUSE connection %d: waiting: %w", minor, err)
	}
	if waiting == 0 {
		return 0, nil
	}
	if err := os.WriteFile(filepath.Join(dir, "abort"), []byte("1"), 0); err != nil {
		return waiting, fmt.Errorf("abort FUSE connection %d (%d requests waiting): %w", minor, waiting, err)
	}
	return waiting, nil
}
