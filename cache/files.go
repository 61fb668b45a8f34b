package cache

import "github.com/hpc-copper/copper/op"

// Small files that ride with their directory's dirplus
// (dir_files_max_bytes): stored in the data table as a Read of each would
// store them, so the first read needs no request, and handed on in the
// dirplus this cache assembles for a child. They are counted, so a run
// can tell what shipping them cost against what it saved.

// storeShipped stores one dirplus entry's file content. c.mu is held.
func (c *Cache) storeShipped(ch child) {
	if put(c, c.data, ch.path, fileData{attr: ch.attr, data: ch.data, shipped: true, unread: true}, ch.dataSize) {
		c.count.dirFiles++
		c.count.dirFileBytes += uint64(len(ch.data))
	}
}

// putStat stores attr, a Getattr's or a dirplus entry's stat of path,
// and forgets path's file content if attr shows another version than
// the one the bytes were read under (a Read of the old version stored
// before a stat of the new one): the cache never answers a Getattr with
// one version and a Read with another, which every node below would fail
// with EIO for as long as the bytes stayed. c.mu is held.
func (c *Cache) putStat(path string, attr op.Attr, size int64) {
	if it, ok := c.data.lru.Peek(path); ok && !op.VersionOf(it.val.attr).SameBytes(op.VersionOf(attr)) {
		c.data.remove(path)
	}
	put(c, c.metadata, path, attr, size)
}

// markRead counts the first Read answered with a shipped file. c.mu is held.
func (c *Cache) markRead(d *fileData) {
	if d.unread {
		d.unread = false
		c.count.dirFilesRead++
	}
}

// shippedData is the content of path for the dirplus assembled for a
// child: held, of attr's version, and received with a dirplus itself, so
// that a tree whose root ships no files forwards none either (a file a
// Read fetched is the child's own Read to make). It does not count as a
// use: forwarding is not reading. c.mu is held.
func (c *Cache) shippedData(path string, attr op.Attr) ([]byte, bool) {
	it, ok := c.data.lru.Peek(path)
	if !ok || !it.val.shipped || it.val.attr != attr || int64(len(it.val.data)) != attr.Size {
		return nil, false
	}
	return it.val.data, true
}

// DirFileStats counts the files that came with dirplus answers.
type DirFileStats struct {
	Stored uint64 `json:"stored"` // files stored from dirplus answers
	Bytes  uint64 `json:"bytes"`  // their content bytes
	Read   uint64 `json:"read"`   // of them, answered to a Read at least once
	Unread uint64 `json:"unread"` // Stored - Read: shipped and (so far) never read
}

// Held returns path's cached whole file and the stat it was read under,
// without a request and without counting a hit or a read: the view asks
// for the files of a listing it answers, to hand their bytes to the
// kernel before any read (the fuse package's pushes). It marks the entry
// used.
func (c *Cache) Held(path string) (op.Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	d, ok := c.data.get(path, c.tick)
	if !ok {
		return op.Result{}, false
	}
	return op.Result{Attr: d.attr, Data: d.data}, true
}
