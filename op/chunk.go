package op

import (
	"strconv"
	"strings"
	"syscall"
)

// Version is one state of a file's content as its stat shows it: two
// stats with the same Version show the same bytes (a write moves mtime
// and ctime, a rename over or re-create moves ino or ctime).
type Version struct {
	Dev, Ino               uint64
	Size, MtimeNs, CtimeNs int64
}

// VersionOf is the version a stat shows.
func VersionOf(a Attr) Version {
	return Version{Dev: a.Dev, Ino: a.Ino, Size: a.Size, MtimeNs: a.MtimeNs, CtimeNs: a.CtimeNs}
}

// SameBytes reports whether two versions show the same content. st_dev is
// left out: it numbers a mount on one host, and a parallel file system can
// have another number on every node (a failover root on another host),
// while the rest comes from the file system itself.
func (v Version) SameBytes(w Version) bool {
	return v.Ino == w.Ino && v.Size == w.Size && v.MtimeNs == w.MtimeNs && v.CtimeNs == w.CtimeNs
}

// Chunks is how many chunks of chunkBytes a file of size bytes has.
func Chunks(size, chunkBytes int64) int64 {
	if size <= 0 || chunkBytes <= 0 {
		return 0
	}
	return (size-1)/chunkBytes + 1 // no overflow near MaxInt64
}

// ChunkReq names one chunk of one version of a file: bytes
// [Index*Bytes, min((Index+1)*Bytes, Version.Size)). Bytes travels with
// the request so that nodes configured alike agree on every chunk's
// bounds, and a node configured otherwise cannot be handed a wrong one.
type ChunkReq struct {
	Path    string
	Version Version
	Index   int64
	Bytes   int64 // chunk size
}

// MaxChunkBytes bounds a chunk, well below any frame cap a node accepts
// being asked for (the wire checks the frame cap itself).
const MaxChunkBytes = 1 << 30

// Off and Len are the chunk's place in the file.
func (c ChunkReq) Off() int64 { return c.Index * c.Bytes }
func (c ChunkReq) Len() int64 {
	return max(min(c.Bytes, c.Version.Size-c.Off()), 0)
}

// Key is the request's identity for coalescing and caches: path and
// chunk bounds and the whole version, dev included (a version seen
// through another root is another key, never a mix).
func (c ChunkReq) Key() string { return c.Encode() }

// Encode is the request's wire form, carried where other operations
// carry a path: "<index>:<bytes>:<dev>:<ino>:<size>:<mtime_ns>:<ctime_ns>:<path>",
// decimal, readable in logs.
func (c ChunkReq) Encode() string {
	var b strings.Builder
	b.Grow(len(c.Path) + 100)
	for _, n := range [...]int64{c.Index, c.Bytes} {
		b.WriteString(strconv.FormatInt(n, 10))
		b.WriteByte(':')
	}
	for _, n := range [...]uint64{c.Version.Dev, c.Version.Ino} {
		b.WriteString(strconv.FormatUint(n, 10))
		b.WriteByte(':')
	}
	for _, n := range [...]int64{c.Version.Size, c.Version.MtimeNs, c.Version.CtimeNs} {
		b.WriteString(strconv.FormatInt(n, 10))
		b.WriteByte(':')
	}
	b.WriteString(c.Path)
	return b.String()
}

// DecodeChunkReq parses Encode's form strictly: canonical decimals only
// (so one chunk has one key), a checked path, a chunk size in
// (0, MaxChunkBytes], an index within the file. A request a peer made up
// answers EINVAL (ENAMETOOLONG for a path too long), never a read.
func DecodeChunkReq(s string) (ChunkReq, syscall.Errno) {
	var nums [7]string
	rest := s
	for i := range nums {
		var ok bool
		nums[i], rest, ok = strings.Cut(rest, ":")
		if !ok {
			return ChunkReq{}, syscall.EINVAL
		}
	}
	var c ChunkReq
	var err error
	ints := [...]*int64{&c.Index, &c.Bytes, nil, nil, &c.Version.Size, &c.Version.MtimeNs, &c.Version.CtimeNs}
	for i, p := range ints {
		if p == nil {
			var u uint64
			if u, err = strconv.ParseUint(nums[i], 10, 64); err != nil || strconv.FormatUint(u, 10) != nums[i] {
				return ChunkReq{}, syscall.EINVAL
			}
			if i == 2 {
				c.Version.Dev = u
			} else {
				c.Version.Ino = u
			}
			continue
		}
		if *p, err = strconv.ParseInt(nums[i], 10, 64); err != nil || strconv.FormatInt(*p, 10) != nums[i] {
			return ChunkReq{}, syscall.EINVAL
		}
	}
	if errno := CheckPath(rest); errno != 0 {
		return ChunkReq{}, errno
	}
	c.Path = rest
	switch {
	case c.Bytes <= 0 || c.Bytes > MaxChunkBytes:
		return ChunkReq{}, syscall.EINVAL
	case c.Version.Size < 0 || c.Index < 0 || c.Index >= Chunks(c.Version.Size, c.Bytes):
		return ChunkReq{}, syscall.EINVAL
	}
	return c, 0
}

// CheckRequest validates the "path" of a request for o: a view path, or
// for Chunk a ChunkReq's encoding.
func CheckRequest(o Op, path string) syscall.Errno {
	if o == Chunk {
		_, errno := DecodeChunkReq(path)
		return errno
	}
	return CheckPath(path)
}
