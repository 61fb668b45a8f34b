// Package op is the vocabulary every copper layer shares: the distributed
// operations, their results, and the rules for view paths. It has no
// dependencies so that tree, cache, net, node and fuse can all speak it.
package op

import (
	"fmt"
	"strings"
	"syscall"
)

// Op is one distributed operation. The numbering is part of the wire
// protocol: never renumber, only append.
type Op uint8

const (
	IsReady  Op = 1 // is the answering node tree-ready?
	Getattr  Op = 2 // lstat of a path
	Readdir  Op = 3 // names and types of a directory
	Readlink Op = 4 // target of a symbolic link
	Read     Op = 5 // whole content of a file no larger than max_cacheable_bytes
	// DirPlus is a directory's complete listing with every entry's lstat
	// (and link text): one request answers a cold directory walk. Its
	// answer is paged on the wire (Result.More); DirPlusNext asks for the
	// page after the name its path ends in: DirPlusNext "/d/x" is the
	// listing of "/d" after "x".
	DirPlus     Op = 6
	DirPlusNext Op = 7
	// Chunk is one fixed-size piece of a file over max_cacheable_bytes,
	// of one version of it: its "path" is a ChunkReq's encoding (see
	// ChunkReq), its answer the chunk's bytes and the stat they were read
	// under, as Read answers.
	Chunk Op = 8
)

// All lists every operation, for tables and loops over counters.
var All = [...]Op{IsReady, Getattr, Readdir, Readlink, Read, DirPlus, DirPlusNext, Chunk}

// Valid reports whether o is a known operation.
func (o Op) Valid() bool { return o >= IsReady && o <= Chunk }

func (o Op) String() string {
	switch o {
	case IsReady:
		return "is_ready"
	case Getattr:
		return "getattr"
	case Readdir:
		return "readdir"
	case Readlink:
		return "readlink"
	case Read:
		return "read"
	case DirPlus:
		return "dirplus"
	case DirPlusNext:
		return "dirplus_next"
	case Chunk:
		return "chunk"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Attr is the part of struct stat that copper carries. Times are
// nanoseconds since the Unix epoch.
type Attr struct {
	Dev     uint64
	Ino     uint64
	Mode    uint32 // file type and permission bits, as st_mode
	Nlink   uint32
	Uid     uint32
	Gid     uint32
	Rdev    uint64
	Size    int64
	Blocks  int64
	Blksize int32
	AtimeNs int64
	MtimeNs int64
	CtimeNs int64
}

// AttrFromStat converts a kernel stat result.
func AttrFromStat(st *syscall.Stat_t) Attr {
	return Attr{
		Dev:     uint64(st.Dev),
		Ino:     st.Ino,
		Mode:    st.Mode,
		Nlink:   uint32(st.Nlink),
		Uid:     st.Uid,
		Gid:     st.Gid,
		Rdev:    uint64(st.Rdev),
		Size:    st.Size,
		Blocks:  st.Blocks,
		Blksize: int32(st.Blksize),
		AtimeNs: st.Atim.Nano(),
		MtimeNs: st.Mtim.Nano(),
		CtimeNs: st.Ctim.Nano(),
	}
}

// IsDir, IsRegular and IsSymlink test the file type bits.
func (a Attr) IsDir() bool     { return a.Mode&syscall.S_IFMT == syscall.S_IFDIR }
func (a Attr) IsRegular() bool { return a.Mode&syscall.S_IFMT == syscall.S_IFREG }
func (a Attr) IsSymlink() bool { return a.Mode&syscall.S_IFMT == syscall.S_IFLNK }

// DirEntry is one name in a directory listing.
type DirEntry struct {
	Name string
	Mode uint32 // file type bits only (S_IFMT part of st_mode)
	Ino  uint64
}

// PlusEntry is one name of a DirPlus listing: its lstat, as Getattr of
// the name answers it, and for a symbolic link its text (HasTarget false
// when the link could not be read: Readlink then asks on its own). A
// small regular file may ride with its directory (dir_files_max_bytes):
// HasData, and Data is its whole content read under Attr, as Read would
// answer it (len(Data) == Attr.Size).
type PlusEntry struct {
	Name      string
	Attr      Attr
	Target    string
	HasTarget bool
	Data      []byte
	HasData   bool
}

// Entry is the DirEntry a Readdir answers for e.
func (e PlusEntry) Entry() DirEntry {
	return DirEntry{Name: e.Name, Mode: e.Attr.Mode & syscall.S_IFMT, Ino: e.Attr.Ino}
}

// Result is the answer to one operation. Errno is zero on success; it
// carries the real error number (ENOENT, ENOTDIR, EACCES, ELOOP, ...) so
// that it can travel the tree unchanged.
type Result struct {
	Errno   syscall.Errno
	Attr    Attr        // Getattr; Read (the stat the data was read under)
	Entries []DirEntry  // Readdir
	Target  string      // Readlink
	Data    []byte      // Read, Chunk
	Ready   bool        // IsReady
	Plus    []PlusEntry // DirPlus, DirPlusNext: sorted by name
	More    bool        // DirPlus, DirPlusNext: a later page follows (DirPlusNext after the last name)
}

// Fail returns a result carrying only an errno.
func Fail(errno syscall.Errno) Result { return Result{Errno: errno} }

// OK reports success.
func (r Result) OK() bool { return r.Errno == 0 }

// Size estimates the bytes a cached copy of r holds, for memory budgets.
func (r Result) Size() int64 {
	n := int64(96) // fixed fields and bookkeeping
	n += int64(len(r.Data)) + int64(len(r.Target))
	for _, e := range r.Entries {
		n += 32 + int64(len(e.Name))
	}
	for _, e := range r.Plus {
		n += 128 + int64(len(e.Name)+len(e.Target)+len(e.Data))
	}
	return n
}

// Path limits, as Linux's PATH_MAX and NAME_MAX.
const (
	MaxPathLen = 4096
	MaxNameLen = 255
)

// CheckPath validates a view path: absolute, clean ("/a/b", never "/a/",
// "/a//b", "/a/./b" or "/a/../b"), no NUL, within PATH_MAX and NAME_MAX.
// It returns the errno a filesystem would give for a bad path
// (ENAMETOOLONG) or EINVAL for one no kernel would produce.
func CheckPath(p string) syscall.Errno {
	if len(p) > MaxPathLen {
		return syscall.ENAMETOOLONG
	}
	if p == "/" {
		return 0
	}
	if len(p) < 2 || p[0] != '/' || p[len(p)-1] == '/' || strings.IndexByte(p, 0) >= 0 {
		return syscall.EINVAL
	}
	// SplitSeq does not allocate: every request is checked on every hop.
	for c := range strings.SplitSeq(p[1:], "/") {
		switch {
		case c == "" || c == "." || c == "..":
			return syscall.EINVAL
		case len(c) > MaxNameLen:
			return syscall.ENAMETOOLONG
		}
	}
	return 0
}

// Join appends one name to a clean view path.
func Join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// Within reports whether path equals prefix or lies below it; both are
// absolute and clean host paths.
func Within(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
