package fuse

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// kernelReadaheadCap is the readahead window the kernel offers a FUSE
// connection at INIT (VM_READAHEAD_PAGES): the INIT reply can only lower
// it, so max_readahead_bytes above it needs the mount's backing device
// (bdi) raised through sysfs.
const kernelReadaheadCap = 128 << 10

// raiseReadahead sets the readahead window of the FUSE mount at
// mountpoint to want bytes through /sys/class/bdi/<major:minor>/
// read_ahead_kb (root only). The kernel splits readahead into READs of
// at most max_pages, so a window as large as MaxRead turns a cold
// sequential read into MaxRead-sized READs instead of 128 KiB ones.
// It returns the window in effect afterwards.
func raiseReadahead(mountpoint string, want int) (int, error) {
	// Only ever a FUSE superblock's bdi: never the disk's under it.
	var fs unix.Statfs_t
	if err := unix.Statfs(mountpoint, &fs); err != nil {
		return 0, fmt.Errorf("readahead of %s: %w", mountpoint, err)
	}
	if fs.Type != unix.FUSE_SUPER_MAGIC {
		return 0, fmt.Errorf("readahead of %s: not a FUSE mount (file system type %#x)", mountpoint, fs.Type)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(mountpoint, &st); err != nil {
		return 0, fmt.Errorf("readahead of %s: %w", mountpoint, err)
	}
	bdi := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	current := func() (int, error) {
		b, err := os.ReadFile(bdi)
		if err != nil {
			return 0, fmt.Errorf("readahead of %s: %w", mountpoint, err)
		}
		kb, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("readahead of %s: %s: %w", mountpoint, bdi, err)
		}
		return kb << 10, nil
	}
	have, err := current()
	if err != nil || have >= want {
		return have, err
	}
	if err := os.WriteFile(bdi, []byte(strconv.Itoa(want>>10)), 0); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return have, fmt.Errorf("readahead of %s stays %d KiB: %s needs root: %w", mountpoint, have>>10, bdi, err)
		}
		return have, fmt.Errorf("readahead of %s stays %d KiB: %w", mountpoint, have>>10, err)
	}
	return current()
}
