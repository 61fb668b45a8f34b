package testkit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mountinfoFixture is a trimmed /proc/self/mountinfo of a machine with a
// copper mount (a space in its name) and fusectl mounted.
const mountinfoFixture = `22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
40 24 0:35 / /sys/fs/fuse/connections rw,nosuid,nodev,noexec,relatime shared:17 - fusectl fusectl rw
61 22 0:41 / /tmp rw,nosuid,nodev shared:31 master:2 - tmpfs tmpfs rw,size=8g
702 61 0:52 / /tmp/copper\040e2e/mnt0 ro,nosuid,nodev,relatime shared:400 - fuse.copper copper ro,user_id=0,group_id=0
703 702 0:53 /sub /tmp/copper\040e2e/mnt0/inner rw - fuse  rw,user_id=0
`

func TestParseMountinfo(t *testing.T) {
	got, err := ParseMountinfo(strings.NewReader(mountinfoFixture))
	require.NoError(t, err)
	assert.Equal(t, []Mount{
		{Minor: 2, Point: "/", FSType: "ext4"},
		{Minor: 22, Point: "/sys", FSType: "sysfs"},
		{Minor: 35, Point: "/sys/fs/fuse/connections", FSType: "fusectl"},
		{Minor: 41, Point: "/tmp", FSType: "tmpfs"},
		{Minor: 52, Point: "/tmp/copper e2e/mnt0", FSType: "fuse.copper"},
		{Minor: 53, Point: "/tmp/copper e2e/mnt0/inner", FSType: "fuse"}, // empty source
	}, got)
}

func TestParseMountinfoRejectsMalformedLines(t *testing.T) {
	for _, tc := range []struct {
		name, line, wantErr string
	}{
		{"too few fields", "22 1 259:2 / /", "5 fields"},
		{"no separator", "22 1 259:2 / / rw shared:1 ext4 /dev/x rw", `no "- fstype"`},
		{"nothing after separator", "22 1 259:2 / / rw -", `no "- fstype"`},
		{"empty file system type", "22 1 259:2 / / rw -  /dev/x rw", `no "- fstype"`},
		{"empty mount point", "22 1 259:2 /  rw - ext4 /dev/x rw", "empty mount point"},
		{"device without minor", "22 1 259 / / rw - ext4 /dev/x rw", `device "259" is not major:minor`},
		{"minor not a number", "22 1 259:x / / rw - ext4 /dev/x rw", `device "259:x": minor`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMountinfo(strings.NewReader("22 1 259:2 / / rw - ext4 /dev/x rw\n" + tc.line + "\n"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "mountinfo line 2: ")
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestMountIsFUSE(t *testing.T) {
	for fstype, want := range map[string]bool{
		"fuse": true, "fuseblk": true, "fuse.copper": true, "fuse.sshfs": true,
		"fusectl": false, "tmpfs": false, "ext4": false, "": false,
	} {
		assert.Equal(t, want, Mount{FSType: fstype}.IsFUSE(), fstype)
	}
}

func TestFilterUnder(t *testing.T) {
	all, err := ParseMountinfo(strings.NewReader(mountinfoFixture))
	require.NoError(t, err)
	points := func(ms []Mount) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Point)
		}
		return out
	}
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{"/tmp/copper e2e", []string{"/tmp/copper e2e/mnt0", "/tmp/copper e2e/mnt0/inner"}},
		{"/tmp/copper e2e/mnt0/inner", []string{"/tmp/copper e2e/mnt0/inner"}},
		{"/tmp/copper", nil}, // a prefix of the name is not a parent directory
		{"/sys", []string{"/sys", "/sys/fs/fuse/connections"}},
	} {
		assert.Equal(t, tc.want, points(filterUnder(all, tc.dir)), tc.dir)
	}
}

// TestMountsReadsThisProcess checks the parser against the running
// kernel's format: a parse error here would fail every teardown.
func TestMountsReadsThisProcess(t *testing.T) {
	ms, err := Mounts()
	require.NoError(t, err)
	var root bool
	for _, m := range ms {
		root = root || m.Point == "/"
	}
	assert.True(t, root, "/ is mounted: %v", ms)
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(mountinfoFixture)
	for _, line := range strings.Split(mountinfoFixture, "\n") {
		f.Add(line)
	}
	f.Add("22 1 259:2 / / rw -")
	f.Add("1 2 3:4 5 \\\\ 7 - x\n\n")
	f.Fuzz(func(t *testing.T, data string) {
		ms, err := ParseMountinfo(strings.NewReader(data))
		if err != nil {
			return
		}
		lines := strings.Count(data, "\n")
		if !strings.HasSuffix(data, "\n") && data != "" {
			lines++
		}
		if len(ms) != lines {
			t.Fatalf("%d mounts from %d lines", len(ms), lines)
		}
		for _, m := range ms {
			if m.Point == "" || m.FSType == "" {
				t.Fatalf("%+v: empty mount point or file system type from %q", m, data)
			}
		}
	})
}

// escapeOctal escapes a mount point as the kernel writes it in mountinfo.
func escapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzMountPointRoundTrip checks that any mount point the kernel writes
// reads back as itself.
func FuzzMountPointRoundTrip(f *testing.F) {
	for _, seed := range []string{"/", "/tmp/copper e2e/mnt0", "/a\tb\nc", `/back\slash`, `/\040literal`, "/é/ü"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, point string) {
		if point == "" {
			return // the kernel writes no empty mount point
		}
		line := "702 61 0:52 / " + escapeOctal(point) + " rw shared:1 - fuse.copper copper rw\n"
		ms, err := ParseMountinfo(strings.NewReader(line))
		require.NoError(t, err, line)
		require.Len(t, ms, 1)
		require.Equal(t, Mount{Minor: 52, Point: point, FSType: "fuse.copper"}, ms[0])
	})
}
