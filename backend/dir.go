package backend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/op"
)

// listDir reads every entry of an open directory. Its error is the
// getdents errno or a bad entry's (see fail).
func listDir(fd int) ([]op.DirEntry, error) {
	var entries []op.DirEntry
	buf := make([]byte, 32<<10)
	for {
		var n int
		err := osutil.RetryEINTR(func() (err error) { n, err = unix.Getdents(fd, buf); return err })
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return entries, nil
		}
		entries, err = ParseDirents(buf[:n], entries)
		if err != nil {
			return nil, fmt.Errorf("bad directory entry: %w", err)
		}
	}
}

// ParseDirents decodes linux_dirent64 records, skipping "." and "..".
// DT_UNKNOWN entries get Mode 0.
func ParseDirents(buf []byte, out []op.DirEntry) ([]op.DirEntry, error) {
	for len(buf) > 0 {
		const hdr = 19 // ino u64, off i64, reclen u16, type u8
		if len(buf) < hdr {
			return out, errors.New("dirent: truncated header")
		}
		reclen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if reclen < hdr+1 || reclen > len(buf) {
			return out, errors.New("dirent: bad record length")
		}
		ino := binary.NativeEndian.Uint64(buf[0:8])
		typ := buf[18]
		name := buf[hdr:reclen]
		if i := indexNUL(name); i >= 0 {
			name = name[:i]
		}
		buf = buf[reclen:]
		if len(name) == 0 {
			return out, errors.New("dirent: empty name")
		}
		if s := string(name); s != "." && s != ".." {
			out = append(out, op.DirEntry{Name: s, Mode: dtToMode(typ), Ino: ino})
		}
	}
	return out, nil
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

func dtToMode(t uint8) uint32 {
	switch t {
	case unix.DT_REG:
		return syscall.S_IFREG
	case unix.DT_DIR:
		return syscall.S_IFDIR
	case unix.DT_LNK:
		return syscall.S_IFLNK
	case unix.DT_CHR:
		return syscall.S_IFCHR
	case unix.DT_BLK:
		return syscall.S_IFBLK
	case unix.DT_FIFO:
		return syscall.S_IFIFO
	case unix.DT_SOCK:
		return syscall.S_IFSOCK
	}
	return 0
}

// openList opens view's directory beneath root and lists it whole; the
// caller closes fd unless failed is set (then fd is closed already and
// failed is the answer, charged to o).
func (b *Backend) openList(root int, view string, o op.Op) (fd int, entries []op.DirEntry, failed *op.Result) {
	fd, err := b.res.open(root, relative(view), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		r := op.Fail(osutil.Errno(err))
		return -1, nil, &r
	}
	if entries, err = listDir(fd); err != nil {
		unix.Close(fd)
		r := b.fail(o, view, err)
		return -1, nil, &r
	}
	return fd, entries, nil
}

func (b *Backend) readdir(root int, view string) op.Result {
	fd, entries, failed := b.openList(root, view, op.Readdir)
	if failed != nil {
		return *failed
	}
	defer unix.Close(fd)
	// Some filesystems (and Lustre under some settings) report DT_UNKNOWN.
	for i := range entries {
		if entries[i].Mode == 0 {
			var st unix.Stat_t
			if err := osutil.RetryEINTR(func() error {
				return unix.Fstatat(fd, entries[i].Name, &st, unix.AT_SYMLINK_NOFOLLOW)
			}); err == nil {
				entries[i].Mode = st.Mode & syscall.S_IFMT
			}
		}
	}
	// Sorted like a dirplus, whose listing answers later readdirs: a
	// directory lists in one order whichever operation fetched it.
	slices.SortFunc(entries, func(a, b op.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	return op.Result{Entries: entries}
}

// dirPlus lists a directory whole and lstats every entry (reading the text
// of links) from the directory fd: the same fstatat(AT_SYMLINK_NOFOLLOW)
// and readlinkat that Getattr and Readlink of each name do, so the attrs
// are the versions those would answer. Each stat and readlink counts as a
// Getattr or Readlink operation. The caller holds one slot; the stats also
// use whatever other slots are free at the start, never more than
// Parallel in all. A name gone between getdents and its stat is left out
// (the listing then matches the directory after the delete); any other
// stat error fails the whole dirplus, so that the asker falls back to
// per-name operations and their real errnos (a directory readable but not
// searchable lists but stats nothing).
func (b *Backend) dirPlus(root int, view string, known Known) op.Result {
	fd, list, failed := b.openList(root, view, op.DirPlus)
	if failed != nil {
		return *failed
	}
	defer unix.Close(fd)
	if len(b.guard) > 0 {
		list = slices.DeleteFunc(list, func(e op.DirEntry) bool {
			return Guarded(HostPath(b.target, op.Join(view, e.Name)), b.guard)
		})
	}
	slices.SortFunc(list, func(a, b op.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	plus := make([]op.PlusEntry, len(list))
	errs := make([]syscall.Errno, len(list))
	var budget *shipBudget
	if b.dirFiles > 0 {
		budget = newShipBudget()
	}
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(list) {
				return
			}
			plus[i], errs[i] = b.statEntry(fd, list[i])
			if budget != nil && errs[i] == 0 {
				b.shipFile(fd, op.Join(view, list[i].Name), &plus[i], budget, known)
			}
		}
	}
	var wg sync.WaitGroup
	// Extra workers only on slots free now: a busy root does not wait.
	// Reading files is slower than stats: more workers then.
	per := 8
	if budget != nil {
		per = 2
	}
spawn:
	for range min(len(list)/per, cap(b.slots)-1) {
		select {
		case b.slots <- struct{}{}:
			wg.Go(func() {
				defer func() { <-b.slots }()
				work()
			})
		default:
			break spawn
		}
	}
	work()
	wg.Wait()
	out := plus[:0]
	for i, e := range plus {
		switch errs[i] {
		case 0:
			out = append(out, e)
		case syscall.ENOENT:
		default:
			return op.Fail(errs[i])
		}
	}
	return op.Result{Plus: out}
}

// statEntry is one dirplus entry: its lstat, and a link's text. A link
// that getdents typed as one is read before its stat: reading it may move
// its atime, and the stat should be the one a later getattr gets.
func (b *Backend) statEntry(dir int, d op.DirEntry) (op.PlusEntry, syscall.Errno) {
	e := op.PlusEntry{Name: d.Name}
	readLink := func() {
		b.ops[op.Readlink].Add(1)
		// A link that cannot be read is still listed; Readlink asks alone.
		if t, errno := readlinkAt(dir, d.Name); errno == 0 {
			e.Target, e.HasTarget = t, true
		}
	}
	if d.Mode == syscall.S_IFLNK {
		readLink()
	}
	var st unix.Stat_t
	b.ops[op.Getattr].Add(1)
	if err := osutil.RetryEINTR(func() error { return unix.Fstatat(dir, d.Name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return e, osutil.Errno(err)
	}
	e.Attr = attrOf(&st)
	switch {
	case !e.Attr.IsSymlink():
		e.Target, e.HasTarget = "", false // replaced by another file since getdents
	case d.Mode != syscall.S_IFLNK:
		readLink() // DT_UNKNOWN, or replaced by a link since getdents
	}
	return e, 0
}
