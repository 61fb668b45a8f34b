package fuse

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/hpc-copper/copper/op"
)

// Pushing listed small files into the kernel's page cache.
//
// On a no-open mount, reading a file costs a cold node a LOOKUP and a
// READ. The kernel lists a directory it has not listed before with
// READDIRPLUS, whose reply carries every entry's attributes and makes
// the kernel an inode (and a dentry) for each: a later path walk to any
// of the names sends no LOOKUP. For each small regular file among them
// whose whole bytes the node already holds (they came with the
// directory, dir_files_max_bytes, or from an earlier read), the view
// then hands the bytes to the kernel with FUSE_NOTIFY_STORE: the pages
// are in the kernel's cache before any application reads them, and no
// READ comes either. The bytes are checked against the version the
// entry shows, so the kernel holds exactly the pages a READ of that
// inode would have returned.
//
// A store must follow the reply: the kernel knows a node id once it has
// parsed the reply and made the inode, and a store for an unknown node
// id fails with ENOENT. go-fuse writes the reply after rawView returns,
// so the stores run on a goroutine of their own, which tries an ENOENT
// again a few times (pushWait) while the kernel makes the inodes. A
// read that comes first costs what it did before pushes: its READ; a
// store that meets a READ's pages being filled waits for them (the
// kernel locks each page) and leaves the same bytes.
//
// A LOOKUP's reply is not followed by a store: the application's read
// comes microseconds after it, and the store loses that race nearly
// always (measured: the READ came for every file, and the stores cost
// CPU on top).

// HeldReader is what a Source offers to tell, without any request, the
// whole bytes of a small file it holds and the stat they were read
// under. The node implements it with its cache.
type HeldReader interface {
	Held(path string) (op.Result, bool)
}

// PushRecorder is what a HeldReader may also offer: to learn of each push
// that landed. The kernel serves the file's reads from then on without a
// request, so this is the last the node sees of them (its profile counts
// the push as the path's read; copper-report's checks rely on that).
type PushRecorder interface {
	Pushed(path string, size int)
}

// pushTries bounds the stores of one file that find the inode not made
// yet. The listing thread needs microseconds once the reply is written,
// but on a loaded host it may wait for a CPU: the first tries yield, the
// later ones sleep longer and longer (50 µs, doubling), about 13 ms in all.
const pushTries = 12

// pushTriesMade bounds the tries once a store of the reply found its
// inode: all yields (see pushWait).
const pushTriesMade = 4

func pushWait(try int) {
	if try < 3 {
		runtime.Gosched()
		return
	}
	time.Sleep(time.Duration(50<<(try-3)) * time.Microsecond)
}

// PushStats counts the small files pushed into the kernel's page cache.
type PushStats struct {
	Pushed      uint64 `json:"pushed"`       // files stored in the kernel's cache
	PushedBytes uint64 `json:"pushed_bytes"` // their bytes
	// Late: the kernel had not made the inode after every try (or had
	// forgotten it); Failed: the store failed otherwise. The kernel
	// READs those files as it did without pushes.
	Late   uint64 `json:"late"`
	Failed uint64 `json:"failed"`
}

type pushCounters struct {
	pushed, bytes, late, failed atomic.Uint64
}

// pending is one READDIRPLUS request's pushes, noted by node.lookup for
// its entries and started by rawView once the bridge has answered, when
// the entries carry their node ids.
type pending struct {
	pushes []pendingPush
	// unlived are the entries of large regular files: rawView gives
	// them no entry lifetime, as it does a LOOKUP's.
	unlived []*gofuse.EntryOut
}

// pendingPush is one small file's bytes and the entry that answers with
// its inode: the bridge fills in the node id (that of the inode it
// already knew, if it did) before the reply goes out.
type pendingPush struct {
	entry *gofuse.EntryOut
	path  string
	data  []byte
}

// pushes holds the pending pushes of the READDIRPLUS requests being
// answered, by the request's cancel channel (go-fuse's Context.Cancel,
// which node.lookup sees and rawView is handed: one per request in
// flight).
type pushes struct {
	mu      sync.Mutex
	pending map[<-chan struct{}]*pending
	count   pushCounters
	// off is set when a store was refused outright (see refusesStores):
	// none is tried again.
	off      atomic.Bool
	recorder PushRecorder // the Source's, if it offers one
}

// begin makes the pending pushes of the request with cancel, before the
// bridge answers it: a lookup of a request rawView did not begin finds
// none and notes nothing.
func (p *pushes) begin(cancel <-chan struct{}) {
	p.mu.Lock()
	if p.pending == nil {
		p.pending = make(map[<-chan struct{}]*pending)
	}
	p.pending[cancel] = new(pending)
	p.mu.Unlock()
}

// requestOf returns the pending pushes of ctx's request.
func (p *pushes) requestOf(ctx context.Context) *pending {
	fc, ok := ctx.(*gofuse.Context)
	if !ok || fc.Cancel == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending[fc.Cancel]
}

// take removes and returns the pending pushes of the request with cancel.
func (p *pushes) take(cancel <-chan struct{}) *pending {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.pending[cancel]
	delete(p.pending, cancel)
	return q
}

// heldBytes returns the bytes of child to push for an entry that shows
// attr: held by the Source, of attr's version, whole. Nothing on a mount
// that handles opens (each open fetches its own copy), for an empty file
// or one over MaxCacheable.
func (f *filesystem) heldBytes(child string, attr op.Attr) []byte {
	if f.held == nil || f.pushes.off.Load() || f.handleOpens || !attr.IsRegular() || attr.Size <= 0 || attr.Size > f.maxCacheable {
		return nil
	}
	r, ok := f.held.Held(child)
	if !ok || r.Errno != 0 || int64(len(r.Data)) != attr.Size || !versionOf(r.Attr).sameBytes(versionOf(attr)) {
		return nil
	}
	return r.Data
}

// notePlusEntry notes what node.lookup answered a READDIRPLUS entry
// with: the bytes to push of a small file whose inode the kernel does not
// hold yet (isNew), and the entry of a large file, which must have no
// lifetime.
func (f *filesystem) notePlusEntry(ctx context.Context, isNew bool, child string, attr op.Attr, out *gofuse.EntryOut) {
	var data []byte
	if isNew {
		data = f.heldBytes(child, attr)
	}
	unlived := f.pinsAtLookup(attr)
	if data == nil && !unlived {
		return
	}
	q := f.pushes.requestOf(ctx)
	if q == nil {
		return
	}
	if data != nil {
		q.pushes = append(q.pushes, pendingPush{entry: out, path: child, data: data})
	}
	if unlived {
		q.unlived = append(q.unlived, out)
	}
}

// store is one push with the node id the reply gave its inode.
type store struct {
	nodeID uint64
	path   string
	data   []byte
}

// afterBridge finishes the READDIRPLUS with cancel once the bridge has
// answered it (st): entries of large files lose their lifetime, and the
// stores of the pushes start. It runs before go-fuse writes the reply,
// which the entries are part of.
func (r *rawView) afterBridge(cancel <-chan struct{}, st gofuse.Status) {
	q := r.fs.pushes.take(cancel)
	if q == nil || !st.Ok() {
		return
	}
	for _, out := range q.unlived {
		out.EntryValid, out.EntryValidNsec = 0, 0
	}
	server := r.server.Load()
	if len(q.pushes) == 0 || server == nil {
		return
	}
	stores := make([]store, 0, len(q.pushes))
	for _, p := range q.pushes {
		if p.entry.NodeId != 0 {
			stores = append(stores, store{nodeID: p.entry.NodeId, path: p.path, data: p.data})
		}
	}
	f := r.fs
	f.notifyMu.Lock()
	if f.notifyClosed {
		f.notifyMu.Unlock()
		return // unmounting
	}
	f.notifies.Add(1)
	f.notifyMu.Unlock()
	go func() {
		defer f.notifies.Done()
		// Once one store found its inode, the kernel is making the
		// reply's inodes or has made them: a few yields wait for the
		// rest. One still missing then (forgotten, or the listing
		// thread lost its CPU on a loaded host: 6,800 of 100,000 in
		// one listing here) is late and READ as without pushes.
		tries := pushTries
		for _, s := range stores {
			if f.unmounting() || f.pushes.off.Load() {
				return
			}
			if f.push(server, s, tries) {
				tries = pushTriesMade
			}
		}
	}()
}

// unmounting reports whether Unmount has begun: pushes left then are
// not worth the wait.
func (f *filesystem) unmounting() bool {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	return f.notifyClosed
}

// storer is the one call of go-fuse's server a push makes.
type storer interface {
	InodeNotifyStoreCache(node uint64, offset int64, data []byte) gofuse.Status
}

// refusesStores reports whether a store's errno says no store can ever
// succeed on this connection: Linux answers a notification code it does
// not know with EINVAL (and a store it cannot parse the same way, which
// would fail for every file alike); go-fuse answers ENOSYS when it has
// no writer for notifications. Without this every listed small file
// would cost a failing system call.
func refusesStores(errno syscall.Errno) bool {
	return errno == syscall.EINVAL || errno == syscall.ENOSYS
}

// push stores s's bytes in the kernel's cache of its inode, trying up to
// tries times while the kernel has not made the inode yet, and reports
// whether the store was made.
func (f *filesystem) push(server storer, s store, tries int) bool {
	c := &f.pushes.count
	for try := 0; ; try++ {
		switch errno := syscall.Errno(server.InodeNotifyStoreCache(s.nodeID, 0, s.data)); {
		case errno == 0:
			c.pushed.Add(1)
			c.bytes.Add(uint64(len(s.data)))
			if r := f.pushes.recorder; r != nil {
				r.Pushed(s.path, len(s.data))
			}
			return true
		case errno == syscall.ENOENT && try+1 < tries:
			pushWait(try)
		case errno == syscall.ENOENT:
			c.late.Add(1)
			return false
		default:
			c.failed.Add(1)
			if refusesStores(errno) {
				f.pushes.off.Store(true)
			}
			return false
		}
	}
}

// PushStats returns the mount's push counters.
func (m *Mounted) PushStats() PushStats {
	c := &m.fsys.pushes.count
	return PushStats{Pushed: c.pushed.Load(), PushedBytes: c.bytes.Load(), Late: c.late.Load(), Failed: c.failed.Load()}
}
