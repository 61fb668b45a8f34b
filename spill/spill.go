// Package spill is a node's chunk store: the chunks of large files
// (op.Chunk) this node fetched, kept under a byte budget of their own
// with least-recently-used eviction, separate from the in-memory cache.
//
// Chunks live in files in a private directory on node-local storage,
// made for this run only (0700, owned by us, inside a base directory we
// own and no one else can write), created 0600, one per large file (its
// chunks at their offsets; files.go) and found only through the store's
// entries, added once a chunk is written whole: a hostile local user can
// neither read nor plant a chunk, and a reader never sees half of one.
// When the directory cannot be made or written (read-only, full, owned
// by someone else), the store warns once and keeps chunks in memory
// instead, under MemoryBytes: slower for a big file, never an error for
// the application. Close removes this run's directory and nothing else.
//
// On disk, the most recently stored chunks also stay in memory (hot),
// under the same MemoryBytes: a chunk is read by the node's own reader
// and asked for by its children right after it arrives, and answering
// those from memory spares reading the file back (an open, a pread and
// a fresh buffer per read) while the bytes are still at hand.
package spill

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytedance/gopkg/lang/dirtmake"
)

// Config sets up a Store.
type Config struct {
	// Dir is the base spill directory on node-local storage; the store
	// makes one private directory per run inside it. Empty: memory only.
	Dir string
	// BudgetBytes bounds the bytes of chunk files on disk.
	BudgetBytes int64
	// MemoryBytes bounds the chunks kept in memory: all of them when
	// the disk cannot be used, the hot ones when it can.
	MemoryBytes int64
	Logger      *slog.Logger
}

// Store holds chunks by key. It is safe for concurrent use.
type Store struct {
	cfg  Config
	log  *slog.Logger
	dir  string   // this run's directory; "" when disk is off
	lock *os.File // flocked lock file in dir, released by Close

	mu      sync.Mutex
	disk    bool // chunks go to dir
	lru     list.List
	entries map[string]*list.Element
	bytes   int64     // on disk, or in memory when !disk
	hot     list.List // disk mode: entries whose data is also kept, newest first
	hotB    int64     // their bytes, at most cfg.MemoryBytes
	warned  bool
	closed  bool // Close began: Put stores nothing more

	direct  directWriter
	scratch sync.Pool             // aligned buffers for direct reads (readdirect.go)
	files   map[string]*chunkFile // shared files by group
	writing map[string]bool       // keys being written: one Put at a time per chunk
	fileSeq int
	noShare bool // punching a hole failed here: one file per chunk

	spilled, evicted, hits, misses, failures atomic.Int64
}

type entry struct {
	key  string
	size int64
	data []byte // memory mode, or a hot chunk on disk; never modified
	hotE *list.Element
	file *chunkFile // disk mode: the file holding it, at off
	off  int64
}

// Open makes the store. It does not fail for a spill directory it cannot
// use: it warns and keeps chunks in memory.
func Open(cfg Config) *Store {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, log: cfg.Logger, entries: make(map[string]*list.Element),
		files: make(map[string]*chunkFile), writing: make(map[string]bool)}
	s.scratch.New = newScratch
	if cfg.Dir == "" || cfg.BudgetBytes <= 0 {
		return s
	}
	dir, lock, err := makeRunDir(cfg.Dir)
	if err != nil {
		s.degrade(fmt.Errorf("spill directory %s: %w", cfg.Dir, err))
		return s
	}
	s.dir, s.lock, s.disk = dir, lock, true
	if n := sweep(cfg.Dir, dir); n > 0 {
		s.log.Info("removed the chunk stores of runs that ended without removing them", "dir", cfg.Dir, "count", n)
	}
	return s
}

// degrade turns the disk off, warning once, and drops what was on it.
// Called with s.mu held or before the store is shared.
func (s *Store) degrade(err error) {
	if !s.warned {
		s.warned = true
		s.log.Warn("chunk spill directory unusable: large-file chunks are kept in memory instead",
			"err", err, "memory_bytes", s.cfg.MemoryBytes)
	}
	s.failures.Add(1)
	if s.disk {
		s.disk = false
		s.forgetLocked()
		_ = os.RemoveAll(s.dir)
	}
}

// Dir is this run's spill directory, or "" when chunks are kept in memory.
func (s *Store) Dir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.disk {
		return ""
	}
	return s.dir
}

// Has reports whether key is held.
func (s *Store) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.entries[key]
	return ok
}

// Hot reports whether key is held in memory (in memory mode, or a hot
// chunk on disk): ReadAt answers it without touching a file.
func (s *Store) Hot(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	return ok && e.Value.(*entry).data != nil
}

// ReadAt copies the held chunk key's bytes from off into dest. ok is
// false when the chunk is not held (never fetched, or evicted).
func (s *Store) ReadAt(key string, dest []byte, off int64) (n int, ok bool) {
	s.mu.Lock()
	e, held := s.entries[key]
	if !held {
		s.mu.Unlock()
		s.misses.Add(1)
		return 0, false
	}
	s.lru.MoveToFront(e)
	en := e.Value.(*entry)
	if data := en.data; data != nil { // in memory, or hot
		s.mu.Unlock()
		n = copy(dest, data[min(off, int64(len(data))):])
		s.hits.Add(1)
		return n, true
	}
	name, at := en.file.name, en.off
	s.mu.Unlock()
	// The chunk may be evicted between the unlock and the open (no
	// file: a miss) or during the read (its range punched out of a
	// shared file): a miss unless it is still held afterwards.
	want := min(int64(len(dest)), max(en.size-off, 0))
	n, err := s.readFile(name, dest[:want], at+off)
	s.mu.Lock()
	still := s.entries[key] == e
	s.mu.Unlock()
	if !still || (int64(n) != want && !errors.Is(err, io.EOF)) {
		s.misses.Add(1)
		return 0, false
	}
	s.hits.Add(1)
	return n, true
}

// Open opens the held chunk key's file for reading, for a caller that
// hands the kernel the file rather than its bytes (a splice into
// /dev/fuse). Only a chunk in a file of its own (offset 0) is handed
// over: such a file is written once and removed, never punched, so the
// open file keeps that chunk's bytes even if it is evicted or the disk is
// turned off meanwhile. ok is false when the chunk is not held, shares a
// file (PutAt) or the store keeps chunks in memory; the caller closes f.
func (s *Store) Open(key string) (f *os.File, size int64, ok bool) {
	s.mu.Lock()
	e, held := s.entries[key]
	if !held || !s.disk || !e.Value.(*entry).file.own {
		s.mu.Unlock()
		return nil, 0, false
	}
	s.lru.MoveToFront(e)
	size = e.Value.(*entry).size
	name := e.Value.(*entry).file.name
	s.mu.Unlock()
	// Evicted between the unlock and the open: a miss.
	f, err := os.Open(name)
	if err != nil {
		s.misses.Add(1)
		return nil, 0, false
	}
	s.hits.Add(1)
	return f, size, true
}

// Load returns the whole held chunk key. The bytes may be the store's
// own (a chunk in memory): the caller must not modify them.
func (s *Store) Load(key string) ([]byte, bool) {
	s.mu.Lock()
	e, held := s.entries[key]
	if !held {
		s.mu.Unlock()
		return nil, false
	}
	en := e.Value.(*entry)
	if data := en.data; data != nil {
		s.lru.MoveToFront(e)
		s.mu.Unlock()
		s.hits.Add(1)
		return data, true
	}
	size := en.size
	s.mu.Unlock()
	// Not zeroed: returned only if ReadAt filled every byte.
	buf := dirtmake.Bytes(int(size), int(size))
	n, ok := s.ReadAt(key, buf, 0)
	if !ok || int64(n) != size {
		return nil, false
	}
	return buf, true
}

// Put stores data as chunk key in a file of its own (see PutAt).
func (s *Store) Put(key string, data []byte) { s.PutAt(key, key, 0, data) }

// putLocked adds e and evicts the least recently used entries over
// budget; false: e is larger than the budget and not stored.
func (s *Store) putLocked(e *entry, budget int64) bool {
	if e.size > budget {
		if e.file != nil {
			s.dropLocked(e)
		}
		return false
	}
	s.entries[e.key] = s.lru.PushFront(e)
	s.bytes += e.size
	for s.bytes > budget {
		old := s.lru.Back()
		v := old.Value.(*entry)
		s.lru.Remove(old)
		delete(s.entries, v.key)
		s.bytes -= v.size
		s.evicted.Add(1)
		if v.hotE != nil {
			s.coolLocked(v)
		}
		if v.file != nil {
			s.dropLocked(v)
		}
	}
	_, held := s.entries[e.key] // a file given up while evicting may take e with it
	return held
}

// Close forgets every chunk and removes this run's directory. A Put
// still writing (a fetch that outlived the node's server) removes its
// own file when it finds the store closed; RemoveAll is repeated a few
// times in case one lands in between.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.disk = false
	s.forgetLocked()
	dir := s.dir
	s.mu.Unlock()
	if dir == "" {
		return nil
	}
	// The lock is released only after the directory is gone: a sweep
	// by another run must not race this removal.
	defer func() {
		if s.lock != nil {
			s.lock.Close()
		}
	}()
	var err error
	for range closeAttempts {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove spill directory %s: %w", dir, err)
}

// DropMemory drops the chunks the store keeps in memory (its fallback
// when the spill directory is unusable, or the hot copies of chunks on
// disk) and returns the bytes freed: Copper 1.0's clear-cache command
// (ioctl 100) frees them with the cache. Chunk files on disk stay: they
// count against the spill budget, not memory, and the kernel may still
// be reading them.
func (s *Store) DropMemory() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disk {
		freed := s.hotB
		for s.hot.Len() > 0 {
			s.coolLocked(s.hot.Back().Value.(*entry))
		}
		return freed
	}
	freed := s.bytes
	s.forgetLocked()
	return freed
}

// forgetLocked drops every entry, hot or not.
func (s *Store) forgetLocked() {
	s.lru.Init()
	clear(s.entries)
	s.bytes = 0
	s.hot.Init()
	s.hotB = 0
	clear(s.files)
}

// heatLocked keeps data in memory as disk entry e's bytes, cooling the
// oldest hot entries beyond MemoryBytes.
func (s *Store) heatLocked(e *entry, data []byte) {
	if e.size > s.cfg.MemoryBytes {
		return
	}
	e.data, e.hotE = data, s.hot.PushFront(e)
	s.hotB += e.size
	for s.hotB > s.cfg.MemoryBytes {
		s.coolLocked(s.hot.Back().Value.(*entry))
	}
}

// coolLocked lets hot entry e's bytes go; its file stays.
func (s *Store) coolLocked(e *entry) {
	s.hot.Remove(e.hotE)
	e.data, e.hotE = nil, nil
	s.hotB -= e.size
}

// closeAttempts bounds Close's RemoveAll repeats.
const closeAttempts = 20
