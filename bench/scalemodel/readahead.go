package scalemodel

// How many READ requests a node's kernel sends copper for a file it
// reads cold: the kernel's readahead (mm/readahead.c), not one request
// per 128 KiB. copper mounts with max_read_bytes and, as root, raises the
// mount's readahead window to max_readahead_bytes (both 1 MiB by
// default), so a read that asks for the whole file (Python's .pyc, one
// read(2) of its size) is one READ of up to 1 MiB. A shared object is
// opened with a read of its 832-byte ELF header at offset 0: that read's
// initial window is 4 pages (get_init_ra_size: a request of one page,
// well under the window, is quadrupled), one READ of 16 KiB, and its
// mappings then fault in the rest, each fault reading a window around it
// (do_sync_mmap_readahead, then async windows of the full size). The
// pfsbench runs count ~107 READs per node for the import, against 148 at
// one per 128 KiB and 96 at one per 1 MiB window; the 11 shared objects
// above the push limit make the difference.

import (
	"fmt"

	"github.com/hpc-copper/copper/config"
)

const pageBytes = 4096

// readRequests is the READ requests the kernel sends for a file of size
// bytes read whole, whose first access was a read(2)/pread(2) of first
// bytes at offset 0 (0: a mapping or a read elsewhere, which reads a
// full window around it). A calibration from before the rule (no
// FuseMaxRead) keeps one request per 128 KiB.
func (c *Calibration) readRequests(size, first int64) int {
	if c.FuseMaxRead <= 0 {
		return chunks(size)
	}
	maxRead := c.FuseMaxRead
	window := max(c.FuseReadahead, pageBytes)
	unit := min(window, maxRead) // a window is split into READs of at most max_read
	if size <= 0 {
		return 1
	}
	init := window
	if first > 0 {
		init = initWindow(first, window)
	}
	head := min(init, size)
	n := ceilDiv(head, min(init, maxRead))
	if size > head {
		n += ceilDiv(size-head, unit)
	}
	return int(n)
}

// initWindow is the kernel's first readahead window for a read of req
// bytes at the start of a file (get_init_ra_size): the request rounded up
// to a power of two pages, quadrupled if at most 1/32 of the window,
// doubled if at most 1/4, else the whole window; never beyond it.
func initWindow(req, window int64) int64 {
	pages, maxPages := ceilDiv(req, pageBytes), max(1, window/pageBytes)
	size := int64(1)
	for size < pages {
		size <<= 1
	}
	switch {
	case size <= maxPages/32:
		size *= 4
	case size <= maxPages/4:
		size *= 2
	default:
		size = maxPages
	}
	return min(size, maxPages) * pageBytes
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// fitReadahead sets the READ rule's inputs from copper's defaults, which
// the measured copper ran with (pfsbench passes neither flag; as root it
// raises the window).
func (c *Calibration) fitReadahead() {
	d := config.Default()
	c.FuseMaxRead, c.FuseReadahead = int64(d.MaxReadBytes), int64(d.MaxReadaheadB)
	src := fmt.Sprintf("copper's default max_read_bytes and max_readahead_bytes (config.Default: %d KiB, %d KiB; the measured copper runs as root, so the mount's window is raised to it): a cold file's READs follow the kernel's readahead (first read's initial window, then windows of the full size, each split at max_read)",
		d.MaxReadBytes>>10, d.MaxReadaheadB>>10)
	c.Sources["fuse_max_read_bytes"], c.Sources["fuse_readahead_bytes"] = src, src
}
