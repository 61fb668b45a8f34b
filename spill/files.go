package spill

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The chunks of one large file share one file on disk (a *group*: the
// node passes the file's version), each at its own offset, so a node
// makes one file per large file rather than one per chunk: creating a
// file was the largest part of storing a chunk (in the N=8 large-file
// benchmark the open(O_CREAT) of chunk files cost three times their
// O_DIRECT writes: ext4 without a journal scans the inodes deleted in the
// last half minute for every new one). A chunk is written in place and
// becomes visible (entries) only once whole; evicting it punches its
// range out of the file (the bytes leave the disk, as the budget counts),
// and the file goes with its last chunk. Only page-aligned chunks of a
// page-multiple length share a file (O_DIRECT pads a write to a page,
// which would spill over the next chunk); the others (the last chunk of a
// file, a test's tiny chunks) get a file of their own, as do all chunks
// once a file system has refused to punch a hole.

// chunkFile is a file of chunks on disk.
type chunkFile struct {
	group string
	name  string // unique within the run: a file made anew never takes an old one's name
	// users counts the entries held in it plus the Puts writing into it;
	// the file is removed when it drops to zero, never while a write is
	// under way.
	users int
	own   bool // one chunk's file, at offset 0
	dead  bool // given up (holes could not be punched): no entry may be added
}

// PutAt stores data as chunk key at offset off of group's file on disk
// (in memory mode it is Put). The store may keep data (in memory mode,
// or as a hot chunk on disk): it must not be modified afterwards. A chunk
// larger than the budget is not stored. A write that fails (disk full,
// read-only) turns the disk off with one warning.
func (s *Store) PutAt(key, group string, off int64, data []byte) {
	s.mu.Lock()
	if _, held := s.entries[key]; held || s.closed || s.writing[key] {
		s.mu.Unlock()
		return
	}
	if !s.disk {
		s.memoryLocked(key, data)
		s.mu.Unlock()
		return
	}
	f, err := s.fileForLocked(key, group, off, len(data))
	if err != nil {
		s.degrade(err)
		s.memoryLocked(key, data)
		s.mu.Unlock()
		return
	}
	if f.own {
		off = 0
	}
	f.users++
	s.writing[key] = true
	dir := s.dir
	s.mu.Unlock()

	err = s.writeChunk(dir, f, off, data)

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.writing, key)
	e := &entry{key: key, size: int64(len(data)), file: f, off: off}
	if s.closed || f.dead {
		// Close ran during the write (a readahead that outlived its
		// node): take the file back out of the directory it removes.
		// Or the file was given up meanwhile: a later read fetches again.
		s.dropLocked(e)
		return
	}
	if err != nil || !s.disk { // failed, or degraded meanwhile: the directory is gone
		s.dropLocked(e)
		if err != nil && s.disk {
			s.degrade(err)
		}
		s.memoryLocked(key, data)
		return
	}
	s.spilled.Add(1)
	if s.putLocked(e, s.cfg.BudgetBytes) {
		s.heatLocked(e, data)
	}
}

// memoryLocked keeps chunk key in memory, under the memory budget: the
// memory mode's store, and the fallback of a disk that failed.
func (s *Store) memoryLocked(key string, data []byte) {
	s.putLocked(&entry{key: key, size: int64(len(data)), data: data}, s.cfg.MemoryBytes)
}

// fileForLocked is the file chunk key goes to: group's shared file, or
// one of its own. A new one is made here, once (O_EXCL): writes open it
// without O_CREAT, so a file removed behind the store's back fails the
// write (the disk is given up) rather than come back empty under chunks
// the store still counts as held in it.
func (s *Store) fileForLocked(key, group string, off int64, n int) (*chunkFile, error) {
	own := s.noShare || group == key || off%directAlign != 0 || n%directAlign != 0
	if !own {
		if f := s.files[group]; f != nil {
			return f, nil
		}
	}
	s.fileSeq++
	sum := sha256.Sum256([]byte(group))
	f := &chunkFile{group: group, own: own, name: filepath.Join(s.dir, fmt.Sprintf("%s-%d", hex.EncodeToString(sum[:8]), s.fileSeq))}
	fd, err := unix.Open(f.name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: f.name, Err: err}
	}
	_ = unix.Close(fd)
	if !own {
		s.files[group] = f
	}
	return f, nil
}

// dropLocked takes entry e (or a write that will not become one) out of
// its file: the file is removed with its last user, otherwise e's range
// is punched out. A file system that cannot punch holes loses the whole
// file (its other chunks are forgotten, so nothing reads the range that
// is still there) and chunks get files of their own from then on.
func (s *Store) dropLocked(e *entry) {
	f := e.file
	f.users--
	if f.users > 0 && !f.dead && s.disk {
		err := punch(f.name, e.off, e.size)
		if err == nil {
			return
		}
		if !s.noShare {
			s.noShare = true
			s.log.Info("chunk spill directory cannot punch holes: one file per chunk from now on", "err", err)
		}
		s.killFileLocked(f)
	}
	if f.users > 0 {
		return // writes into a dead file under way: the last one removes it
	}
	if s.files[f.group] == f {
		delete(s.files, f.group)
	}
	_ = os.Remove(f.name)
}

// killFileLocked forgets every entry held in f and marks it dead: the
// Puts still writing into it drop their chunk, and the last removes it.
func (s *Store) killFileLocked(f *chunkFile) {
	f.dead = true
	if s.files[f.group] == f {
		delete(s.files, f.group)
	}
	for el := s.lru.Front(); el != nil; {
		next := el.Next()
		if v := el.Value.(*entry); v.file == f {
			s.lru.Remove(el)
			delete(s.entries, v.key)
			s.bytes -= v.size
			s.evicted.Add(1)
			if v.hotE != nil {
				s.coolLocked(v)
			}
			f.users--
		}
		el = next
	}
}

// punch frees [off, off+size) of the file name, rounded up to a page.
func punch(name string, off, size int64) error {
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	size = (size + directAlign - 1) / directAlign * directAlign
	for {
		err = unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, size)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: name, Err: err}
	}
	return nil
}

// fileOf is the name of the file holding chunk key ("" if none).
func (s *Store) fileOf(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok && e.Value.(*entry).file != nil {
		return e.Value.(*entry).file.name
	}
	return ""
}
