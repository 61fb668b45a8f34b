package fuse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLiveMount reports that a FUSE file system at the mount directory
// still answers: it belongs to a running process and is not stale.
var ErrLiveMount = errors.New("a live FUSE file system is mounted there")

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

// CleanStale lazily unmounts FUSE mounts at mount whose server is gone
// (a killed run: "transport endpoint is not connected") or hung, with a
// warning, and reports whether it did. A FUSE mount that still answers
// is left alone and reported as ErrLiveMount.
func CleanStale(mount string, logger *slog.Logger) (bool, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(mount)
	if err != nil {
		return false, fmt.Errorf("clean stale mount %q: %w", mount, err)
	}
	cleaned := false
	for range maxStackedMounts {
		top, found, err := topMount(abs)
		if err != nil {
			return cleaned, err
		}
		if !found || !isFuse(top.FSType) {
			return cleaned, nil
		}
		errno, answered := probeStat(abs, staleProbeTimeout)
		switch {
		case !answered:
			logger.Warn("hung FUSE mount found, unmounting it lazily", "mount", abs, "fstype", top.FSType,
				"probe_timeout", staleProbeTimeout)
		case errno == syscall.ENOTCONN || errno == syscall.ECONNABORTED:
			logger.Warn("stale FUSE mount found (its server is gone), unmounting it lazily", "mount", abs,
				"fstype", top.FSType, "errno", errno.Error())
		case errno == 0:
			return cleaned, fmt.Errorf("clean stale mount %s (%s): %w", abs, top.FSType, ErrLiveMount)
		default:
			return cleaned, fmt.Errorf("clean stale mount %s (%s): stat: %w", abs, top.FSType, errno)
		}
		if err := detach(abs); err != nil {
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

func isFuse(fstype string) bool { return fstype == "fuse" || strings.HasPrefix(fstype, "fuse.") }

// topMount returns the mount that covers dir now: the last one listed
// at that mount point.
func topMount(dir string) (mountEntry, bool, error) {
	const source = "/proc/self/mountinfo"
	f, err := os.Open(source)
	if err != nil {
		return mountEntry{}, false, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	entries, err := parseMountinfo(f, source)
	if err != nil {
		return mountEntry{}, false, err
	}
	var top mountEntry
	found := false
	for _, e := range entries {
		if e.Mountpoint == dir {
			top, found = e, true
		}
	}
	return top, found, nil
}

// probeStat asks the file system at path for its statfs in the
// background, so a hung FUSE server costs the caller at most timeout (the
// goroutine waits until the server dies or its connection is aborted).
// statfs, not stat: the kernel answers stat of a dead mount's root from its
// attribute cache, but always sends statfs to the server, so only statfs
// tells a dead server (ENOTCONN) from a live one.
func probeStat(path string, timeout time.Duration) (errno syscall.Errno, answered bool) {
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		done <- syscall.Statfs(path, &st)
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return errnoOf(err), true
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

// detach unmounts lazily: directly when root, else through fusermount.
func detach(mount string) error {
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

// mountEntry is the part of one /proc/self/mountinfo line copper uses.
type mountEntry struct {
	ID           int
	Major, Minor uint32 // st_dev of the mount; for FUSE, Minor names its fusectl connection
	Mountpoint   string
	FSType       string
}

// parseMountinfo parses proc(5) mountinfo lines:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
//
// name is used in errors (name:line).
func parseMountinfo(r io.Reader, name string) ([]mountEntry, error) {
	var entries []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		e, err := parseMountinfoLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return entries, nil
}

func parseMountinfoLine(text string) (mountEntry, error) {
	fields := strings.Split(text, " ")
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if len(fields) < 6 || sep < 0 || sep+1 >= len(fields) {
		return mountEntry{}, fmt.Errorf("malformed mountinfo line %q: want 6 fields, optional fields, '-', fstype", text)
	}
	id, err := strconv.Atoi(fields[0])
	if err != nil {
		return mountEntry{}, fmt.Errorf("mount id %q: %w", fields[0], err)
	}
	majorText, minorText, ok := strings.Cut(fields[2], ":")
	if !ok {
		return mountEntry{}, fmt.Errorf("device %q: want major:minor", fields[2])
	}
	major, err := strconv.ParseUint(majorText, 10, 32)
	if err != nil {
		return mountEntry{}, fmt.Errorf("device major %q: %w", majorText, err)
	}
	minor, err := strconv.ParseUint(minorText, 10, 32)
	if err != nil {
		return mountEntry{}, fmt.Errorf("device minor %q: %w", minorText, err)
	}
	mountpoint, err := unescapeMountinfo(fields[4])
	if err != nil {
		return mountEntry{}, fmt.Errorf("mount point %q: %w", fields[4], err)
	}
	return mountEntry{
		ID:         id,
		Major:      uint32(major),
		Minor:      uint32(minor),
		Mountpoint: mountpoint,
		FSType:     fields[sep+1],
	}, nil
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in mountinfo paths.
func unescapeMountinfo(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("truncated escape at byte %d", i)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape %q at byte %d", s[i:i+4], i)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}
