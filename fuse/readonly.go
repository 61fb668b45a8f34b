package fuse

import (
	"context"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// refuse answers a mutation. The kernel normally refuses them itself
// (the mount is "ro"); this is the answer if one gets through.
func (n *node) refuse(ctx context.Context, name string) syscall.Errno {
	return n.fs.observe(ctx, name, n.path, time.Now(), syscall.EROFS)
}

func (n *node) Setattr(ctx context.Context, _ fs.FileHandle, _ *gofuse.SetAttrIn, _ *gofuse.AttrOut) syscall.Errno {
	return n.refuse(ctx, opSetattr)
}

func (n *node) Write(ctx context.Context, _ fs.FileHandle, _ []byte, _ int64) (uint32, syscall.Errno) {
	return 0, n.refuse(ctx, opWrite)
}

func (n *node) Create(ctx context.Context, _ string, _, _ uint32, _ *gofuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, n.refuse(ctx, opCreate)
}

func (n *node) Tmpfile(ctx context.Context, _, _ uint32, _ *gofuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, n.refuse(ctx, opTmpfile)
}

func (n *node) Mknod(ctx context.Context, _ string, _, _ uint32, _ *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, n.refuse(ctx, opMknod)
}

func (n *node) Mkdir(ctx context.Context, _ string, _ uint32, _ *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, n.refuse(ctx, opMkdir)
}

func (n *node) Unlink(ctx context.Context, _ string) syscall.Errno { return n.refuse(ctx, opUnlink) }

func (n *node) Rmdir(ctx context.Context, _ string) syscall.Errno { return n.refuse(ctx, opRmdir) }

func (n *node) Rename(ctx context.Context, _ string, _ fs.InodeEmbedder, _ string, _ uint32) syscall.Errno {
	return n.refuse(ctx, opRename)
}

func (n *node) Symlink(ctx context.Context, _, _ string, _ *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, n.refuse(ctx, opSymlink)
}

func (n *node) Link(ctx context.Context, _ fs.InodeEmbedder, _ string, _ *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, n.refuse(ctx, opLink)
}

func (n *node) Setxattr(ctx context.Context, _ string, _ []byte, _ uint32) syscall.Errno {
	return n.refuse(ctx, opSetxattr)
}

func (n *node) Removexattr(ctx context.Context, _ string) syscall.Errno {
	return n.refuse(ctx, opRemovexattr)
}

func (n *node) Allocate(ctx context.Context, _ fs.FileHandle, _, _ uint64, _ uint32) syscall.Errno {
	return n.refuse(ctx, opFallocate)
}

func (n *node) CopyFileRange(ctx context.Context, _ fs.FileHandle, _ uint64, _ *fs.Inode, _ fs.FileHandle, _, _, _ uint64) (uint32, syscall.Errno) {
	return 0, n.refuse(ctx, opCopyRange)
}
