package testkit

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

// Mount is one line of a mountinfo file, the parts tests need.
type Mount struct {
	// Minor is the minor device number; for a FUSE mount it names the
	// connection under /sys/fs/fuse/connections.
	Minor  uint32
	Point  string // mount point, unescaped
	FSType string // "fuse.copper", "tmpfs", "fusectl", ...
}

// IsFUSE reports whether m is served by a FUSE daemon ("fuse",
// "fuseblk", "fuse.<subtype>"); the fusectl control file system is not.
func (m Mount) IsFUSE() bool {
	return m.FSType == "fuse" || m.FSType == "fuseblk" || strings.HasPrefix(m.FSType, "fuse.")
}

// ParseMountinfo parses the mountinfo format of proc(5), in its order
// (a mount comes after the one it is mounted on or below).
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		m, err := parseMountLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return out, nil
}

// parseMountLine reads "id parent major:minor root point options
// [optional...] - fstype source superoptions".
func parseMountLine(text string) (Mount, error) {
	// Single spaces separate the fields: the kernel escapes space, tab,
	// newline and backslash in names, but no other white space.
	fields := strings.Split(text, " ")
	if len(fields) < 7 {
		return Mount{}, fmt.Errorf("%d fields, want at least 7: %q", len(fields), text)
	}
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	// Only the file system type must follow the separator: the source
	// and super options are of no use here.
	if sep < 0 || sep+1 >= len(fields) || fields[sep+1] == "" {
		return Mount{}, fmt.Errorf("no \"- fstype\" after the optional fields: %q", text)
	}
	if fields[4] == "" {
		return Mount{}, fmt.Errorf("empty mount point: %q", text)
	}
	_, minorText, ok := strings.Cut(fields[2], ":")
	if !ok {
		return Mount{}, fmt.Errorf("device %q is not major:minor", fields[2])
	}
	minor, err := strconv.ParseUint(minorText, 10, 32)
	if err != nil {
		return Mount{}, fmt.Errorf("device %q: minor: %w", fields[2], err)
	}
	return Mount{Minor: uint32(minor), Point: unescapeOctal(fields[4]), FSType: fields[sep+1]}, nil
}

// unescapeOctal undoes mountinfo's \040-style escapes of space, tab,
// newline and backslash.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
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

// Mounts lists this process's mounts.
func Mounts() ([]Mount, error) {
	f, err := os.Open(MountinfoPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := ParseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", MountinfoPath, err)
	}
	return ms, nil
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
