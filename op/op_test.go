package op

import (
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want syscall.Errno
	}{
		{"/", 0},
		{"/a", 0},
		{"/a/b c/é", 0},
		{"/" + strings.Repeat("n", MaxNameLen), 0},
		{"/" + strings.Repeat("n", MaxNameLen+1), syscall.ENAMETOOLONG},
		{"/" + strings.Repeat("a/", MaxPathLen/2), syscall.ENAMETOOLONG},
		{"", syscall.EINVAL},
		{"a", syscall.EINVAL},
		{"/a/", syscall.EINVAL},
		{"//a", syscall.EINVAL},
		{"/a//b", syscall.EINVAL},
		{"/a/./b", syscall.EINVAL},
		{"/a/../b", syscall.EINVAL},
		{"/..", syscall.EINVAL},
		{"/a\x00b", syscall.EINVAL},
	} {
		assert.Equal(t, tc.want, CheckPath(tc.path), "%q", tc.path)
	}
}

func TestJoinAndWithin(t *testing.T) {
	assert.Equal(t, "/a", Join("/", "a"))
	assert.Equal(t, "/a/b", Join("/a", "b"))
	assert.True(t, Within("/tmp/cu/x", "/tmp/cu"))
	assert.True(t, Within("/tmp/cu", "/tmp/cu"))
	assert.False(t, Within("/tmp/cux", "/tmp/cu"))
	assert.True(t, Within("/anything", "/"))
}

func TestOpNames(t *testing.T) {
	for _, o := range All {
		assert.True(t, o.Valid())
		assert.NotContains(t, o.String(), "op(")
	}
	assert.False(t, Op(0).Valid())
	assert.Equal(t, "op(9)", Op(9).String())
	assert.False(t, Op(len(All)+1).Valid())
}

// Every path CheckPath accepts is one a kernel could send: absolute, no
// empty, "." or ".." component, no NUL, within the limits.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "//", "/a/../b", "/\x00", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath(p) != 0 {
			return
		}
		if p == "/" {
			return
		}
		if !strings.HasPrefix(p, "/") || len(p) > MaxPathLen || strings.ContainsRune(p, 0) {
			t.Fatalf("accepted %q", p)
		}
		for _, c := range strings.Split(p[1:], "/") {
			if c == "" || c == "." || c == ".." || len(c) > MaxNameLen {
				t.Fatalf("accepted %q (component %q)", p, c)
			}
		}
	})
}
