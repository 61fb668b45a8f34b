package fuse

import (
	"context"
	"sync/atomic"
	"syscall"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// rawView is go-fuse's bridge with the directory requests of no-open
// mounts (Options.HandleOpens off) adjusted.
//
// The kernel's first OPENDIR is answered ENOSYS here, so the kernel stops
// sending OPENDIR and RELEASEDIR for the whole connection and keeps
// listings in its own cache (no-open directories get FOPEN_CACHE_DIR and
// FOPEN_KEEP_CACHE from the kernel itself). It then sends READDIR with no
// handle, which the bridge would answer with an empty listing (it finds
// no FileReaddirenter for handle 0); ReadDir opens a handle through the
// bridge for that one request instead.
type rawView struct {
	gofuse.RawFileSystem
	fs       *filesystem
	server   atomic.Pointer[gofuse.Server] // set at Init, for the pushes
	hideRoot uint32                        // mode bits the root hides (rootmask.go)
}

// Init keeps the server for the stores of afterBridge.
func (r *rawView) Init(server *gofuse.Server) {
	r.server.Store(server)
	r.RawFileSystem.Init(server)
}

// Lookup gives a large regular file of a no-open mount no entry
// lifetime, so every path walk to it looks it up again: that lookup is
// where a no-open mount sees a changed large file and pins the version
// the walk opens (see pinLarge); the root never reads such files, so no
// node's stat would tell. The bridge turns a zero lifetime from the node
// into the mount's, so it is cleared here, after the bridge.
func (r *rawView) Lookup(cancel <-chan struct{}, header *gofuse.InHeader, name string, out *gofuse.EntryOut) gofuse.Status {
	st := r.RawFileSystem.Lookup(cancel, header, name, out)
	if st.Ok() && out.NodeId != 0 && !r.fs.handleOpens &&
		out.Attr.Mode&syscall.S_IFMT == syscall.S_IFREG && int64(out.Attr.Size) > r.fs.maxCacheable {
		out.EntryValid, out.EntryValidNsec = 0, 0
	}
	return st
}

func (r *rawView) OpenDir(cancel <-chan struct{}, in *gofuse.OpenIn, out *gofuse.OpenOut) gofuse.Status {
	if r.fs.handleOpens {
		return r.RawFileSystem.OpenDir(cancel, in, out)
	}
	// The no-opendir handshake: success to the kernel, and so profiled.
	r.fs.observe(context.Background(), opOpendir, "", time.Now(), 0)
	return gofuse.Status(syscall.ENOSYS)
}

func (r *rawView) ReadDir(cancel <-chan struct{}, in *gofuse.ReadIn, out *gofuse.DirEntryList) gofuse.Status {
	return r.withDirHandle(cancel, in, func(in *gofuse.ReadIn) gofuse.Status {
		return r.RawFileSystem.ReadDir(cancel, in, out)
	})
}

// ReadDirPlus answers with an entry (and an inode) for every name, and
// then pushes the held small files among them into the kernel's cache
// (see afterBridge).
func (r *rawView) ReadDirPlus(cancel <-chan struct{}, in *gofuse.ReadIn, out *gofuse.DirEntryList) gofuse.Status {
	r.fs.pushes.begin(cancel)
	st := r.withDirHandle(cancel, in, func(in *gofuse.ReadIn) gofuse.Status {
		return r.RawFileSystem.ReadDirPlus(cancel, in, out)
	})
	r.afterBridge(cancel, st)
	return st
}

// withDirHandle runs read with in's handle, or, for a READDIR without
// one, with a handle opened for it and released after. The handle lists
// the directory afresh (from the Source's cache) and seeks to in.Offset,
// so the kernel can read a long listing over several requests.
func (r *rawView) withDirHandle(cancel <-chan struct{}, in *gofuse.ReadIn, read func(*gofuse.ReadIn) gofuse.Status) gofuse.Status {
	if in.Fh != 0 {
		return read(in)
	}
	var opened gofuse.OpenOut
	if st := r.RawFileSystem.OpenDir(cancel, &gofuse.OpenIn{InHeader: in.InHeader}, &opened); !st.Ok() {
		return st
	}
	defer r.RawFileSystem.ReleaseDir(&gofuse.ReleaseIn{InHeader: in.InHeader, Fh: opened.Fh})
	withHandle := *in
	withHandle.Fh = opened.Fh
	return read(&withHandle)
}
