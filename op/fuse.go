package op

// FUSE operation names, as the view reports them (fuse.Options.OnOp) and
// the profile writes them in profiling_operations.csv. This is their one
// table: fuse, profile and report all read it.
const (
	FuseGetattr     = "getattr"
	FuseLookup      = "lookup"
	FuseReaddir     = "readdir"
	FuseReadlink    = "readlink"
	FuseOpen        = "open"
	FuseRead        = "read"
	FuseStatfs      = "statfs"
	FuseGetxattr    = "getxattr"
	FuseIoctl       = "ioctl"
	FuseOpendir     = "opendir"
	FuseRelease     = "release"
	FuseReleasedir  = "releasedir"
	FuseListxattr   = "listxattr"
	FuseFsync       = "fsync"
	FuseFlush       = "flush"
	FuseWrite       = "write"
	FuseCreate      = "create"
	FuseMkdir       = "mkdir"
	FuseMknod       = "mknod"
	FuseUnlink      = "unlink"
	FuseRmdir       = "rmdir"
	FuseRename      = "rename"
	FuseSymlink     = "symlink"
	FuseLink        = "link"
	FuseSetattr     = "setattr"
	FuseSetxattr    = "setxattr"
	FuseRemovexattr = "removexattr"
	FuseTmpfile     = "tmpfile"
	FuseFallocate   = "fallocate"
	FuseCopyRange   = "copy_file_range"
)

// FuseOps lists the FUSE operation names in profiling_operations.csv row
// order (read-only). The first FuseAlwaysRows are written by every node;
// the others once called.
var FuseOps = [...]string{
	FuseGetattr, FuseLookup, FuseReaddir, FuseReadlink, FuseOpen, FuseRead, FuseStatfs, FuseGetxattr, FuseIoctl,
	FuseOpendir, FuseRelease, FuseReleasedir, FuseListxattr, FuseFsync, FuseFlush,
	FuseWrite, FuseCreate, FuseMkdir, FuseMknod, FuseUnlink, FuseRmdir, FuseRename, FuseSymlink, FuseLink,
	FuseSetattr, FuseSetxattr, FuseRemovexattr, FuseTmpfile, FuseFallocate, FuseCopyRange,
}

// FuseAlwaysRows is how many of FuseOps every operations file lists.
const FuseAlwaysRows = 9

// FuseOpOf is the distributed operation whose node-level counters (hits,
// misses, backend) share a profile row with FUSE operation or row name;
// 0 for rows without one. dirplus and dirplus_next are rows of their
// own: no FUSE operation maps to them.
func FuseOpOf(name string) Op {
	switch name {
	case FuseGetattr:
		return Getattr
	case FuseReaddir:
		return Readdir
	case FuseReadlink:
		return Readlink
	case FuseRead:
		return Read
	}
	for _, o := range NodeOnlyOps {
		if name == o.String() {
			return o
		}
	}
	return 0
}

// NodeOnlyOps are the distributed operations no FUSE operation maps to,
// with rows of their own in the profile: a node fetches a directory as a
// dirplus for the lookups, getattrs and readdirs in it, and children ask
// for them; chunks of large files serve FUSE reads through the chunk store
// (package spill). Read-only.
var NodeOnlyOps = [...]Op{DirPlus, DirPlusNext, Chunk}

// ProfileRowOrder is the order of profiling_operations.csv rows: FuseOps,
// then NodeOnlyOps; any other name sorts after, alphabetically. It returns
// a fresh slice.
func ProfileRowOrder() []string {
	out := make([]string, 0, len(FuseOps)+len(NodeOnlyOps))
	out = append(out, FuseOps[:]...)
	for _, o := range NodeOnlyOps {
		out = append(out, o.String())
	}
	return out
}
