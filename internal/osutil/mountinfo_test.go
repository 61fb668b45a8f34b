package osutil

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Mount
		wantErr string
	}{
		{
			name: "fuse with optional fields",
			in:   "36 35 0:52 / /tmp/cu rw,nosuid,nodev,relatime shared:1 master:2 - fuse.copper copper ro,user_id=0\n",
			want: []Mount{{ID: 36, Major: 0, Minor: 52, Point: "/tmp/cu", FSType: "fuse.copper"}},
		},
		{
			name: "escaped space, tab, newline, backslash; no optional fields; blank line",
			in:   "22 27 8:1 / /mnt/a\\040b\\011c\\012d\\134e rw - ext4 /dev/sda1 rw\n\n23 27 0:21 / /proc rw - proc proc rw\n",
			want: []Mount{
				{ID: 22, Major: 8, Minor: 1, Point: "/mnt/a b\tc\nd\\e", FSType: "ext4"},
				{ID: 23, Major: 0, Minor: 21, Point: "/proc", FSType: "proc"},
			},
		},
		{name: "no separator", in: "36 35 0:52 / /x rw fuse x rw\n", wantErr: "mountinfo:1: malformed"},
		{name: "separator without fstype", in: "36 35 0:52 / /x rw -\n", wantErr: "malformed"},
		{name: "too few fields", in: "36 35 0:52 / /x\n", wantErr: "malformed"},
		{name: "bad id", in: "x 35 0:52 / /x rw - fuse x rw\n", wantErr: "mount id"},
		{name: "bad device", in: "1 35 052 / /x rw - fuse x rw\n", wantErr: "major:minor"},
		{name: "bad major", in: "1 35 a:1 / /x rw - fuse x rw\n", wantErr: "device major"},
		{name: "bad minor", in: "1 35 0:b / /x rw - fuse x rw\n", wantErr: "device minor"},
		{name: "empty mount point", in: "1 35 0:1 /  rw - fuse x rw\n", wantErr: "empty mount point"},
		{name: "bad escape", in: "1 35 0:1 / /x\\09 rw - fuse x rw\n", wantErr: "escape"},
		{name: "truncated escape", in: "1 35 0:1 / /x\\04 rw - fuse x rw\n", wantErr: "truncated escape"},
		{name: "error names the line", in: "1 2 0:1 / / rw - ext4 a rw\nbroken\n", wantErr: "mountinfo:2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMountinfo(strings.NewReader(tt.in), "mountinfo")
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// mountinfoFixture is a trimmed /proc/self/mountinfo of a machine with a
// copper mount (a space in its name) and fusectl mounted.
const mountinfoFixture = `22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
40 24 0:35 / /sys/fs/fuse/connections rw,nosuid,nodev,noexec,relatime shared:17 - fusectl fusectl rw
61 22 0:41 / /tmp rw,nosuid,nodev shared:31 master:2 - tmpfs tmpfs rw,size=8g
702 61 0:52 / /tmp/copper\040e2e/mnt0 ro,nosuid,nodev,relatime shared:400 - fuse.copper copper ro,user_id=0,group_id=0
703 702 0:53 /sub /tmp/copper\040e2e/mnt0/inner rw - fuse  rw,user_id=0
`

func TestFilterUnder(t *testing.T) {
	all, err := ParseMountinfo(strings.NewReader(mountinfoFixture), "fixture")
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

func TestMountsOfThisMachine(t *testing.T) {
	all, err := Mounts()
	require.NoError(t, err)
	require.NotEmpty(t, all)
	root, found, err := TopMount("/")
	require.NoError(t, err)
	assert.True(t, found, "/ is a mount point")
	assert.Equal(t, "/", root.Point)
	under, err := MountsUnder("/proc")
	require.NoError(t, err)
	for _, m := range under {
		assert.True(t, m.Point == "/proc" || strings.HasPrefix(m.Point, "/proc/"), m.Point)
	}
}

func TestIsFUSE(t *testing.T) {
	for fstype, want := range map[string]bool{
		"fuse": true, "fuseblk": true, "fuse.copper": true, "fusectl": false, "tmpfs": false, "": false,
	} {
		assert.Equal(t, want, Mount{FSType: fstype}.IsFUSE(), fstype)
	}
}

// escapeOctal is the kernel's mangle() in show_mountinfo.
func escapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzParseMountinfo: arbitrary input never panics, and never yields an
// fstype holding a separator; a line built the kernel's way from any
// mount point parses back to exactly that mount point.
func FuzzParseMountinfo(f *testing.F) {
	f.Add("36 35 0:52 / /tmp/cu rw,nosuid shared:1 - fuse.copper copper ro\n", "/tmp/cu")
	f.Add("22 27 8:1 / /mnt/with\\040space rw - ext4 /dev/sda1 rw\n", "/a b\\c")
	f.Add("1 35 0:1 / /x\\0 rw - fuse x rw\n", "/x\n\t")
	f.Add("- - - - - - -\n", "-")
	f.Fuzz(func(t *testing.T, in, point string) {
		if entries, err := ParseMountinfo(strings.NewReader(in), "fuzz"); err == nil {
			for _, e := range entries {
				if strings.ContainsAny(e.FSType, " \n") || e.FSType == "" {
					t.Fatalf("fstype %q is empty or holds a separator", e.FSType)
				}
			}
		}
		if point == "" || strings.ContainsRune(point, '\r') {
			return // the kernel never shows an empty point; bufio splits "\r\n" lines
		}
		line := "7 1 0:9 / " + escapeOctal(point) + " rw shared:1 - fuse.copper copper rw\n"
		got, err := ParseMountinfo(strings.NewReader(line), "fuzz")
		if err != nil {
			t.Fatalf("kernel-escaped %q: %v", point, err)
		}
		if len(got) != 1 || got[0].Point != point || got[0].FSType != "fuse.copper" || got[0].Minor != 9 {
			t.Fatalf("kernel-escaped %q parsed as %+v", point, got)
		}
	})
}
