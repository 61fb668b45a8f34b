// Package replay records what a real program (a Python import) does to
// a package tree and replays it with lightweight clients: it parses the
// output of
//
//	strace -f -qq -s 0 -e trace=<TraceSyscalls> -o FILE <program>
//
// keeps the operations on paths below one prefix (the tree) and on file
// descriptors opened there, and replays them against another root (a
// mount), so many simulated processes measure I/O rather than Python's
// CPU time.
package replay

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/op"
)

// TraceSyscalls is the strace -e trace= list the parser understands.
const TraceSyscalls = "open,openat,stat,lstat,fstat,newfstatat,statx,access,faccessat,faccessat2," +
	"readlink,readlinkat,getdents64,read,pread64,mmap,close"

// Kind is one replayed operation.
type Kind uint8

const (
	Stat     Kind = iota + 1 // stat(Path); Flags holds AT_SYMLINK_NOFOLLOW for lstat
	Access                   // access(Path, Flags)
	Open                     // open(Path, Flags) = FD
	Close                    // close(FD)
	Read                     // read(FD, Size)
	Pread                    // pread(FD, Size, Offset)
	Getdents                 // getdents64(FD, Size)
	Fstat                    // fstat(FD)
	Readlink                 // readlink(Path, Size)
	Mmap                     // mmap(FD, Size, Offset, Flags); see Run for the pages touched
)

var kindNames = [...]string{Stat: "stat", Access: "access", Open: "open", Close: "close", Read: "read",
	Pread: "pread", Getdents: "getdents", Fstat: "fstat", Readlink: "readlink", Mmap: "mmap"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Op is one traced operation. Path is relative to the trace's prefix
// ("/" is the prefix itself); FD is the traced descriptor number.
type Op struct {
	Kind   Kind          `json:"kind"`
	Path   string        `json:"path,omitempty"`
	FD     int           `json:"fd,omitempty"`
	Size   int64         `json:"size,omitempty"`
	Offset int64         `json:"offset,omitempty"`
	Flags  int           `json:"flags,omitempty"`
	Errno  syscall.Errno `json:"errno,omitempty"` // the traced outcome; 0 = success
	Line   int           `json:"line"`            // in the trace file
}

// Trace is the operations of one recorded run below one prefix.
type Trace struct {
	Prefix string
	Ops    []Op
	Lines  int      // lines read
	Calls  int      // system calls parsed
	Bad    int      // lines that could not be parsed
	First  []string // the first few problems, "name:line: why"
}

// maxProblems bounds Trace.First.
const maxProblems = 5

// Parse reads strace output (with or without pid prefixes, with
// <unfinished ...>/<... resumed> pairs) and keeps the operations on
// paths at or below prefix, an absolute clean path. name names the
// input in problems. Unparseable lines are counted, not fatal: strace
// output is not a stable format.
func Parse(r io.Reader, name, prefix string) (*Trace, error) {
	if op.CheckPath(prefix) != 0 {
		return nil, fmt.Errorf("replay: prefix %q is not an absolute clean path", prefix)
	}
	p := &parser{name: name, trace: &Trace{Prefix: prefix}, fds: map[int]string{}, pending: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		p.trace.Lines++
		p.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("replay: read %s after line %d: %w", name, p.trace.Lines, err)
	}
	return p.trace, nil
}

type parser struct {
	name    string
	trace   *Trace
	fds     map[int]string    // traced fd -> view path, for fds opened below the prefix
	pending map[string]string // pid -> start of an unfinished call
}

func (p *parser) problem(format string, args ...any) {
	p.trace.Bad++
	if len(p.trace.First) < maxProblems {
		p.trace.First = append(p.trace.First, fmt.Sprintf("%s:%d: %s", p.name, p.trace.Lines, fmt.Sprintf(format, args...)))
	}
}

func (p *parser) line(s string) {
	pid, s := splitPid(s)
	s = strings.TrimSpace(s)
	switch {
	case s == "", strings.HasPrefix(s, "+++"), strings.HasPrefix(s, "---"), strings.HasPrefix(s, "strace:"):
		return
	case strings.HasPrefix(s, "<... "):
		// "<... read resumed>rest": glue to the pending start.
		end := strings.Index(s, " resumed>")
		start, ok := p.pending[pid]
		if end < 0 || !ok {
			p.problem("resumed call without its start")
			return
		}
		delete(p.pending, pid)
		s = start + s[end+len(" resumed>"):]
	}
	if rest, ok := strings.CutSuffix(s, "<unfinished ...>"); ok {
		p.pending[pid] = strings.TrimRight(rest, " ")
		return
	}
	c, err := parseCall(s)
	if err != nil {
		p.problem("%v", err)
		return
	}
	p.trace.Calls++
	p.call(c)
}

var flagValues = map[string]int{
	"O_RDONLY": unix.O_RDONLY, "O_WRONLY": unix.O_WRONLY, "O_RDWR": unix.O_RDWR,
	"O_CREAT": unix.O_CREAT, "O_EXCL": unix.O_EXCL, "O_NOCTTY": unix.O_NOCTTY, "O_TRUNC": unix.O_TRUNC,
	"O_APPEND": unix.O_APPEND, "O_NONBLOCK": unix.O_NONBLOCK, "O_DIRECTORY": unix.O_DIRECTORY,
	"O_NOFOLLOW": unix.O_NOFOLLOW, "O_CLOEXEC": unix.O_CLOEXEC, "O_PATH": unix.O_PATH,
	"O_NOATIME": unix.O_NOATIME, "O_LARGEFILE": 0, "O_DSYNC": unix.O_DSYNC, "O_SYNC": unix.O_SYNC,
	"AT_SYMLINK_NOFOLLOW": unix.AT_SYMLINK_NOFOLLOW, "AT_EMPTY_PATH": unix.AT_EMPTY_PATH,
	"AT_NO_AUTOMOUNT": unix.AT_NO_AUTOMOUNT, "AT_EACCESS": unix.AT_EACCESS,
	"MAP_FIXED": unix.MAP_FIXED, "MAP_PRIVATE": unix.MAP_PRIVATE, "MAP_SHARED": unix.MAP_SHARED,
	"MAP_DENYWRITE": unix.MAP_DENYWRITE, "MAP_ANONYMOUS": unix.MAP_ANONYMOUS,
	"F_OK": unix.F_OK, "R_OK": unix.R_OK, "W_OK": unix.W_OK, "X_OK": unix.X_OK,
}

// errnoByName maps "ENOENT" to syscall.ENOENT, built once.
var errnoByName = sync.OnceValue(func() map[string]syscall.Errno {
	m := map[string]syscall.Errno{}
	for e := syscall.Errno(1); e < 256; e++ {
		if name := unix.ErrnoName(e); name != "" {
			m[name] = e
		}
	}
	return m
})

// view maps a traced path to a path below the prefix ("" when outside).
// Relative paths resolve against a traced directory descriptor; relative
// to the unknown working directory they are outside.
func (p *parser) view(dirfd, rawPath string) string {
	pth, ok := unquote(rawPath)
	if !ok || pth == "" {
		return ""
	}
	if !strings.HasPrefix(pth, "/") {
		fd, ok := number(dirfd)
		dir, tracked := p.fds[int(fd)]
		if !ok || !tracked {
			return ""
		}
		return cleanView(path.Join(dir, pth))
	}
	pth = path.Clean(pth)
	if !op.Within(pth, p.trace.Prefix) {
		return ""
	}
	if p.trace.Prefix == "/" {
		return pth
	}
	return cleanView(strings.TrimPrefix(pth, p.trace.Prefix))
}

func cleanView(v string) string {
	if v == "" {
		return "/"
	}
	return path.Clean("/" + v)
}

func (p *parser) emit(o Op, c call) {
	o.Errno = c.errno
	o.Line = p.trace.Lines
	p.trace.Ops = append(p.trace.Ops, o)
}

// call turns one system call into replayed operations.
func (p *parser) call(c call) {
	if c.noRet {
		return
	}
	switch c.name {
	case "open", "openat":
		p.open(c)
	case "stat", "lstat":
		if v := p.view("AT_FDCWD", c.arg(0)); v != "" {
			flags := 0
			if c.name == "lstat" {
				flags = unix.AT_SYMLINK_NOFOLLOW
			}
			p.emit(Op{Kind: Stat, Path: v, Flags: flags}, c)
		}
	case "newfstatat", "fstatat64", "statx":
		p.statAt(c)
	case "fstat":
		p.fdOp(Op{Kind: Fstat}, c.arg(0), c)
	case "access", "faccessat", "faccessat2":
		dirfd, pathArg, mode := "AT_FDCWD", c.arg(0), c.arg(1)
		if c.name != "access" {
			dirfd, pathArg, mode = c.arg(0), c.arg(1), c.arg(2)
		}
		if v := p.view(dirfd, pathArg); v != "" {
			p.emit(Op{Kind: Access, Path: v, Flags: flagBits(mode)}, c)
		}
	case "readlink", "readlinkat":
		dirfd, pathArg, size := "AT_FDCWD", c.arg(0), c.arg(2)
		if c.name == "readlinkat" {
			dirfd, pathArg, size = c.arg(0), c.arg(1), c.arg(3)
		}
		if v := p.view(dirfd, pathArg); v != "" {
			n, _ := number(size)
			p.emit(Op{Kind: Readlink, Path: v, Size: n}, c)
		}
	case "read":
		n, _ := number(c.arg(2))
		p.fdOp(Op{Kind: Read, Size: n}, c.arg(0), c)
	case "pread64":
		n, _ := number(c.arg(2))
		off, _ := number(c.arg(3))
		p.fdOp(Op{Kind: Pread, Size: n, Offset: off}, c.arg(0), c)
	case "getdents64":
		n, _ := number(c.arg(2))
		p.fdOp(Op{Kind: Getdents, Size: n}, c.arg(0), c)
	case "mmap":
		n, _ := number(c.arg(1))
		off, _ := number(c.arg(5))
		p.fdOp(Op{Kind: Mmap, Size: n, Offset: off, Flags: flagBits(c.arg(3))}, c.arg(4), c)
	case "close":
		fd, ok := number(c.arg(0))
		if _, tracked := p.fds[int(fd)]; ok && tracked {
			p.emit(Op{Kind: Close, FD: int(fd), Path: p.fds[int(fd)]}, c)
			delete(p.fds, int(fd))
		}
	}
}

// open records an open or openat of a path in the tree, and the fd it
// returned.
func (p *parser) open(c call) {
	dirfd, pathArg, flags := "AT_FDCWD", c.arg(0), c.arg(1)
	if c.name == "openat" {
		dirfd, pathArg, flags = c.arg(0), c.arg(1), c.arg(2)
	}
	v := p.view(dirfd, pathArg)
	if v == "" {
		delete(p.fds, int(c.ret)) // an fd reused for a file outside the tree
		return
	}
	p.emit(Op{Kind: Open, Path: v, Flags: flagBits(flags), FD: int(c.ret)}, c)
	if c.errno == 0 && c.ret >= 0 {
		p.fds[int(c.ret)] = v
	}
}

// statAt records newfstatat, fstatat64 or statx: an fstat when it names
// no path (AT_EMPTY_PATH), else a stat of the path.
func (p *parser) statAt(c call) {
	flagArg := c.arg(3)
	if c.name == "statx" {
		flagArg = c.arg(2)
	}
	flags := flagBits(flagArg)
	if s, _ := unquote(c.arg(1)); s == "" && flags&unix.AT_EMPTY_PATH != 0 {
		p.fdOp(Op{Kind: Fstat}, c.arg(0), c)
		return
	}
	if v := p.view(c.arg(0), c.arg(1)); v != "" {
		p.emit(Op{Kind: Stat, Path: v, Flags: flags & unix.AT_SYMLINK_NOFOLLOW}, c)
	}
}

// fdOp emits o for a descriptor opened below the prefix.
func (p *parser) fdOp(o Op, fdArg string, c call) {
	fd, ok := number(fdArg)
	if !ok {
		return
	}
	v, tracked := p.fds[int(fd)]
	if !tracked {
		return
	}
	o.FD, o.Path = int(fd), v
	p.emit(o, c)
}
