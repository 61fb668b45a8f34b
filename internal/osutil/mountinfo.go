package osutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// MountinfoPath is the kernel's list of this process's mounts.
const MountinfoPath = "/proc/self/mountinfo"

// Mount is the part of one mountinfo line copper uses.
type Mount struct {
	ID           int
	Major, Minor uint32 // st_dev of the mount; for FUSE, Minor names its fusectl connection
	Point        string // mount point, unescaped
	FSType       string // "fuse.copper", "tmpfs", "fusectl", ...
}

// IsFUSE reports whether m is served by a FUSE daemon ("fuse",
// "fuseblk", "fuse.<subtype>"); the fusectl control file system is not.
func (m Mount) IsFUSE() bool {
	return m.FSType == "fuse" || m.FSType == "fuseblk" || strings.HasPrefix(m.FSType, "fuse.")
}

// Mounts lists this process's mounts in mountinfo order (a mount comes
// after the one it is mounted on).
func Mounts() ([]Mount, error) {
	f, err := os.Open(MountinfoPath)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	return ParseMountinfo(f, MountinfoPath)
}

// MountsUnder lists the mounts at or below dir, in mountinfo order.
func MountsUnder(dir string) ([]Mount, error) {
	all, err := Mounts()
	if err != nil {
		return nil, err
	}
	return filterUnder(all, dir), nil
}

func filterUnder(all []Mount, dir string) []Mount {
	var out []Mount
	for _, m := range all {
		if m.Point == dir || strings.HasPrefix(m.Point, dir+"/") {
			out = append(out, m)
		}
	}
	return out
}

// TopMount returns the mount that covers dir now: the last one listed at
// that mount point.
func TopMount(dir string) (Mount, bool, error) {
	all, err := Mounts()
	if err != nil {
		return Mount{}, false, err
	}
	var top Mount
	found := false
	for _, m := range all {
		if m.Point == dir {
			top, found = m, true
		}
	}
	return top, found, nil
}

// ParseMountinfo parses the mountinfo format of proc(5):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
//
// name is used in errors (name:line).
func ParseMountinfo(r io.Reader, name string) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		m, err := parseMountLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return out, nil
}

// parseMountLine reads "id parent major:minor root point options
// [optional...] - fstype source superoptions".
func parseMountLine(text string) (Mount, error) {
	// Single spaces separate the fields: the kernel escapes space, tab,
	// newline and backslash in names, but no other white space.
	fields := strings.Split(text, " ")
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if len(fields) < 7 || sep < 0 || sep+1 >= len(fields) || fields[sep+1] == "" {
		return Mount{}, fmt.Errorf("malformed mountinfo line %q: want 6 fields, optional fields, '-', fstype", text)
	}
	id, err := strconv.Atoi(fields[0])
	if err != nil {
		return Mount{}, fmt.Errorf("mount id %q: %w", fields[0], err)
	}
	majorText, minorText, ok := strings.Cut(fields[2], ":")
	if !ok {
		return Mount{}, fmt.Errorf("device %q: want major:minor", fields[2])
	}
	major, err := strconv.ParseUint(majorText, 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("device major %q: %w", majorText, err)
	}
	minor, err := strconv.ParseUint(minorText, 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("device minor %q: %w", minorText, err)
	}
	if fields[4] == "" {
		return Mount{}, fmt.Errorf("empty mount point in %q", text)
	}
	point, err := unescapeOctal(fields[4])
	if err != nil {
		return Mount{}, fmt.Errorf("mount point %q: %w", fields[4], err)
	}
	return Mount{ID: id, Major: uint32(major), Minor: uint32(minor), Point: point, FSType: fields[sep+1]}, nil
}

// unescapeOctal undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in mountinfo paths. The kernel escapes nothing else,
// so a backslash not followed by three octal digits is an error.
func unescapeOctal(s string) (string, error) {
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
