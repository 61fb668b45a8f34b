package fuse

import (
	"os"
	"path/filepath"
	"syscall"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// hiddenRootBits are the mode bits of the view's root that an allow_other
// mount clears, so that the view exposes no file to a user who could not
// reach it on the host: the directories above the target (/home/you,
// 0700, say) keep others out there, but the view starts at the target and
// the kernel checks nothing above it. "Other" bits go unless every such
// directory lets others search it; "group" bits unless each lets others,
// or the target's group, search it. Taken once, at mount. Without
// allow_other the kernel refuses other users anyway.
func hiddenRootBits(fsys *filesystem, allowOther bool) uint32 {
	if !allowOther {
		return 0
	}
	hide := hiddenBits(fsys.target)
	if hide != 0 {
		fsys.logger.Info("allow_other: the view's root hides mode bits that the directories above the target deny on this host",
			"target", fsys.target, "hidden", os.FileMode(hide).String())
	}
	return hide
}

// hiddenBits computes hiddenRootBits for target.
func hiddenBits(target string) uint32 {
	var tst syscall.Stat_t
	if syscall.Stat(target, &tst) != nil {
		return 0o077 // cannot tell: the safe side
	}
	dirs := ancestors(target)
	if real, err := filepath.EvalSymlinks(target); err == nil {
		dirs = append(dirs, ancestors(real)...) // those a symlink on the way leads through
	}
	var hide uint32
	for _, d := range dirs {
		var st syscall.Stat_t
		if syscall.Stat(d, &st) != nil {
			return 0o077
		}
		if st.Mode&0o001 == 0 {
			hide |= 0o007
			if st.Mode&0o010 == 0 || st.Gid != tst.Gid {
				hide |= 0o070
			}
		}
	}
	return hide
}

// ancestors lists the directories above the absolute path p, / first.
func ancestors(p string) []string {
	var out []string
	for d := filepath.Dir(filepath.Clean(p)); ; d = filepath.Dir(d) {
		out = append([]string{d}, out...)
		if d == "/" || d == "." {
			return out
		}
	}
}

// GetAttr hides from the root's mode what hiddenRootBits says: the
// kernel (default_permissions) then refuses other users at the root as
// it would at the target's directories on the host.
func (r *rawView) GetAttr(cancel <-chan struct{}, in *gofuse.GetAttrIn, out *gofuse.AttrOut) gofuse.Status {
	st := r.RawFileSystem.GetAttr(cancel, in, out)
	if st.Ok() && in.NodeId == gofuse.FUSE_ROOT_ID && r.hideRoot != 0 {
		out.Attr.Mode &^= r.hideRoot
	}
	return st
}
