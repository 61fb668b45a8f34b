package replay

import (
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A slice of a real `strace -f -qq -s 0` of `import numpy` with
// PYTHONPATH=/pfs/site, plus the awkward cases strace produces.
const sample = `4242 execve("/usr/bin/python3", ["/usr/bin/python3", "-c", "import numpy"], 0x7ffc /* 36 vars */) = 0
4242 openat(AT_FDCWD, "/lib/x86_64-linux-gnu/libm.so.6", O_RDONLY|O_CLOEXEC) = 3
4242 read(3, ""..., 832) = 832
4242 close(3)                          = 0
4242 newfstatat(AT_FDCWD, "/pfs/site", {st_mode=S_IFDIR|0755, st_size=4096, ...}, 0) = 0
4242 openat(AT_FDCWD, "/pfs/site", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3
4242 newfstatat(3, "", {st_mode=S_IFDIR|0755, st_size=4096, ...}, AT_EMPTY_PATH) = 0
4242 getdents64(3, 0x250b7020 /* 3 entries */, 32768) = 80
4242 getdents64(3, 0x250b7020 /* 0 entries */, 32768) = 0
4242 close(3)                          = 0
4242 newfstatat(AT_FDCWD, "/pfs/site/numpy/__init__.cpython-311-x86_64-linux-gnu.so", 0x7ffd, 0) = -1 ENOENT (No such file or directory)
4242 openat(AT_FDCWD, "/pfs/site/numpy/__pycache__/__init__.cpython-311.pyc", O_RDONLY|O_CLOEXEC) = 3
4242 newfstatat(3, "", {st_mode=S_IFREG|0644, st_size=12345, ...}, AT_EMPTY_PATH) = 0
4242 read(3, ""..., 12346) = 12345
4242 read(3, "", 1)                    = 0
4242 close(3)                          = 0
4243 openat(AT_FDCWD, "/pfs/site/numpy/core/_multiarray_umath.so", O_RDONLY|O_CLOEXEC <unfinished ...>
4242 stat("/pfs/site/numpy/a\"b\\c\303\251", 0x7ffd) = -1 ENOENT (No such file or directory)
4243 <... openat resumed>) = 4
[pid  4243] read(4, ""..., 832) = 832
4243 pread64(4, ""..., 784, 64) = 784
4243 mmap(NULL, 913680, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 4, 0) = 0x7fdda28c1000
4243 mmap(0x7fdda28d1000, 475136, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 4, 0x10000) = 0x7fdda28d1000
4243 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7fdda2693000
4243 close(4)                          = 0
4242 readlink("/pfs/site/link", ""..., 4096) = 6
4242 openat(AT_FDCWD, "/pfs/site/numpy", O_RDONLY|O_DIRECTORY) = 5
4242 newfstatat(5, "core", 0x7ffd, AT_SYMLINK_NOFOLLOW) = 0
4242 access("/pfs/site/numpy/py.typed", R_OK) = -1 ENOENT (No such file or directory)
4242 statx(AT_FDCWD, "/pfs/site/x", AT_STATX_SYNC_AS_STAT|AT_SYMLINK_NOFOLLOW, STATX_ALL, 0x7ffd) = 0
4242 read(7, ""..., 10) = 10
4242 openat(AT_FDCWD, "/pfsother/x", O_RDONLY) = 6
4242 openat(AT_FDCWD, "relative/x", O_RDONLY) = 8
4242 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---
4242 +++ exited with 0 +++
4242 exit_group(0)                     = ?
`

func TestParseKeepsOperationsBelowThePrefix(t *testing.T) {
	tr, err := Parse(strings.NewReader(sample), "sample", "/pfs")
	require.NoError(t, err)
	assert.Zero(t, tr.Bad, "problems: %v", tr.First)
	type row struct {
		kind  Kind
		path  string
		fd    int
		size  int64
		off   int64
		flags int
		errno syscall.Errno
	}
	var got []row
	for _, o := range tr.Ops {
		got = append(got, row{o.Kind, o.Path, o.FD, o.Size, o.Offset, o.Flags, o.Errno})
	}
	so := "/site/numpy/core/_multiarray_umath.so"
	pyc := "/site/numpy/__pycache__/__init__.cpython-311.pyc"
	want := []row{
		{kind: Stat, path: "/site"},
		{kind: Open, path: "/site", fd: 3, flags: unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_DIRECTORY},
		{kind: Fstat, path: "/site", fd: 3},
		{kind: Getdents, path: "/site", fd: 3, size: 32768},
		{kind: Getdents, path: "/site", fd: 3, size: 32768},
		{kind: Close, path: "/site", fd: 3},
		{kind: Stat, path: "/site/numpy/__init__.cpython-311-x86_64-linux-gnu.so", errno: syscall.ENOENT},
		{kind: Open, path: pyc, fd: 3, flags: unix.O_CLOEXEC},
		{kind: Fstat, path: pyc, fd: 3},
		{kind: Read, path: pyc, fd: 3, size: 12346},
		{kind: Read, path: pyc, fd: 3, size: 1},
		{kind: Close, path: pyc, fd: 3},
		{kind: Stat, path: "/site/numpy/a\"b\\cé", errno: syscall.ENOENT},
		{kind: Open, path: so, fd: 4, flags: unix.O_CLOEXEC},
		{kind: Read, path: so, fd: 4, size: 832},
		{kind: Pread, path: so, fd: 4, size: 784, off: 64},
		{kind: Mmap, path: so, fd: 4, size: 913680, flags: unix.MAP_PRIVATE | unix.MAP_DENYWRITE},
		{kind: Mmap, path: so, fd: 4, size: 475136, off: 0x10000, flags: unix.MAP_PRIVATE | unix.MAP_FIXED | unix.MAP_DENYWRITE},
		{kind: Close, path: so, fd: 4},
		{kind: Readlink, path: "/site/link", size: 4096},
		{kind: Open, path: "/site/numpy", fd: 5, flags: unix.O_DIRECTORY},
		{kind: Stat, path: "/site/numpy/core", flags: unix.AT_SYMLINK_NOFOLLOW},
		{kind: Access, path: "/site/numpy/py.typed", flags: unix.R_OK, errno: syscall.ENOENT},
		{kind: Stat, path: "/site/x", flags: unix.AT_SYMLINK_NOFOLLOW},
	}
	assert.Equal(t, want, got)
	assert.Equal(t, "/pfs", tr.Prefix)
	assert.Equal(t, strings.Count(sample, "\n"), tr.Lines)
}

func TestParseCountsBadLines(t *testing.T) {
	tests := []struct {
		name, line, problem string
	}{
		{"no call", "hello world", "no system call"},
		{"bad name", "Open(\"/pfs/x\") = 3", "bad system call name"},
		{"no close paren", `4242 openat(AT_FDCWD, "/pfs/x"`, "no closing parenthesis"},
		{"unterminated string", `openat(AT_FDCWD, "/pfs/x) = 3`, "unterminated string"},
		{"no return value", `close(3)`, "no return value"},
		{"bad return", `close(3) = banana`, "return value"},
		{"unknown errno", `close(3) = -1 EBANANA (Banana)`, "unknown errno"},
		{"unbalanced", `read(3, }, 3) = 3`, "unbalanced"},
		{"resumed without start", `4242 <... read resumed>) = 3`, "resumed call without its start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := Parse(strings.NewReader(tt.line+"\n"), "t.trace", "/pfs")
			require.NoError(t, err)
			assert.Equal(t, 1, tr.Bad)
			require.Len(t, tr.First, 1)
			assert.Contains(t, tr.First[0], "t.trace:1: ")
			assert.Contains(t, tr.First[0], tt.problem)
			assert.Empty(t, tr.Ops)
		})
	}
}

func TestParseRejectsBadPrefix(t *testing.T) {
	for _, prefix := range []string{"", "pfs", "/pfs/", "/a/../b"} {
		_, err := Parse(strings.NewReader(""), "t", prefix)
		assert.Error(t, err, "prefix %q", prefix)
	}
}

func TestParseRootPrefixKeepsAbsolutePaths(t *testing.T) {
	tr, err := Parse(strings.NewReader(`stat("/etc//passwd", 0x1) = 0`+"\n"), "t", "/")
	require.NoError(t, err)
	require.Len(t, tr.Ops, 1)
	assert.Equal(t, "/etc/passwd", tr.Ops[0].Path)
}

func TestParseForgetsDescriptorsReusedOutsideThePrefix(t *testing.T) {
	in := `openat(AT_FDCWD, "/pfs/a", O_RDONLY) = 3
openat(AT_FDCWD, "/elsewhere", O_RDONLY) = 3
read(3, ""..., 10) = 10
`
	tr, err := Parse(strings.NewReader(in), "t", "/pfs")
	require.NoError(t, err)
	require.Len(t, tr.Ops, 1, "the read is on the file outside the tree")
	assert.Equal(t, Open, tr.Ops[0].Kind)
}

func TestUnquote(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`"plain"`, "plain", true},
		{`"trunc"...`, "trunc", true},
		{`"tab\there"`, "tab\there", true},
		{`"\x41\102\0"`, "AB\x00", true},
		{`"\777"`, "", false},
		{`"\xZZ"`, "", false},
		{`NULL`, "", false},
		{`"`, "", false},
		{`""`, "", true},
	}
	for _, tt := range tests {
		got, ok := unquote(tt.in)
		assert.Equal(t, tt.ok, ok, "%s", tt.in)
		assert.Equal(t, tt.want, got, "%s", tt.in)
	}
}

func FuzzParse(f *testing.F) {
	for _, line := range strings.Split(sample, "\n") {
		f.Add(line + "\n")
	}
	f.Add(sample)
	f.Add("4243 openat(AT_FDCWD, \"/pfs/x\", O_RDONLY <unfinished ...>\n4243 <... openat resumed>) = 4\nread(4, \"\\\"..., 9) = 9\n")
	f.Add(`openat(3</pfs/d>, "x", O_RDONLY) = 4` + "\n")
	f.Add(`mmap(NULL, 18446744073709551615, PROT_READ, MAP_PRIVATE, 3, 0) = 0xffffffffffffffff` + "\n")
	f.Fuzz(func(t *testing.T, in string) {
		tr, err := Parse(strings.NewReader(in), "fuzz", "/pfs")
		if err != nil {
			return // over-long line
		}
		assert.LessOrEqual(t, tr.Calls+tr.Bad, tr.Lines)
		assert.LessOrEqual(t, len(tr.First), maxProblems)
		for _, o := range tr.Ops {
			require.True(t, strings.HasPrefix(o.Path, "/"), "op %+v has a path outside the view", o)
			require.NotContains(t, o.Path, "/../")
			require.GreaterOrEqual(t, o.Line, 1)
			require.LessOrEqual(t, o.Line, tr.Lines)
			require.NotEmpty(t, o.Kind.String())
		}
	})
}
