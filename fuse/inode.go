package fuse

import (
	"encoding/binary"
	"time"

	"github.com/cespare/xxhash/v2"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/op"
)

// fillAttr converts the Source's attributes for the kernel.
func fillAttr(out *gofuse.Attr, a op.Attr, ino uint64) {
	out.Ino = ino
	out.Size = uint64(a.Size)
	out.Blocks = uint64(a.Blocks)
	out.Atime, out.Atimensec = splitNs(a.AtimeNs)
	out.Mtime, out.Mtimensec = splitNs(a.MtimeNs)
	out.Ctime, out.Ctimensec = splitNs(a.CtimeNs)
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.Uid, a.Gid
	out.Rdev = uint32(a.Rdev)
	out.Blksize = uint32(a.Blksize)
}

// splitNs splits nanoseconds since the epoch into seconds and a
// non-negative remainder; times before 1970 keep their sign in the
// seconds, which the kernel reads as signed.
func splitNs(ns int64) (uint64, uint32) {
	t := time.Unix(0, ns)
	return uint64(t.Unix()), uint32(t.Nanosecond())
}

// inodeFor numbers a file (st_ino) from its host identity, so it has the same
// number on every node (all nodes see the root's stat) and numbers from
// different devices do not collide in practice. Without an identity the
// view path is hashed instead.
func inodeFor(a op.Attr, viewPath string) uint64 {
	if a.Dev == 0 && a.Ino == 0 {
		return pathInode(viewPath)
	}
	return inodeNumber(a.Dev, a.Ino)
}

func inodeNumber(dev, ino uint64) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], dev)
	binary.LittleEndian.PutUint64(b[8:], ino)
	return usableIno(xxhash.Sum64(b[:]))
}

func pathInode(viewPath string) uint64 { return usableIno(xxhash.Sum64String(viewPath)) }

// usableIno keeps hashes off the numbers that are taken: 0 (no inode),
// the root's, and go-fuse's reserved ^0.
func usableIno(h uint64) uint64 {
	switch h {
	case 0, rootIno, ^uint64(0):
		return rootIno + 1
	}
	return h
}
