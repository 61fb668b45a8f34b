package cache

import (
	"slices"
	"time"
	"unsafe"

	"github.com/hpc-copper/copper/op"
)

// What an entry costs. The budget is only as good as these estimates: a
// node's RSS follows the heap the entries really hold, so each is charged
// what Go's allocator hands out for it (size classes, whole pages for large
// objects), not the length of its fields, plus the LRU's bookkeeping.
// BenchmarkHeapPerAccountedByte compares the two.

const (
	// lruElemBytes is simplelru's list element (next, prev, list, key,
	// value, expiry and bucket: 73 bytes) in its 80-byte size class.
	lruElemBytes = 80
	// mapSlotBytes is the LRU map's share per entry: a 16-byte string key,
	// an 8-byte pointer and a control byte per slot (25 bytes) in swiss
	// tables between 7/16 and 7/8 full, plus their directory.
	mapSlotBytes = 48
	// dataPrefixBytes is what shares file data's allocation before it: a
	// decoded response payload starts with the errno, the 84-byte stat and
	// the length (net.DecodeResponse returns the data in place); the
	// backend reads into a buffer one byte longer than the file.
	dataPrefixBytes = 4 + 84 + 4
)

// sizeClasses are the Go allocator's small-object sizes
// (internal/runtime/gc.SizeClassToSize, unchanged since Go 1.21; a change
// only makes the estimate a little off). Read-only.
var sizeClasses = [...]int64{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208,
	224, 240, 256, 288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152,
	1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528,
	6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480,
	21760, 24576, 27264, 28672, 32768}

// allocSize is the bytes the allocator uses for an n-byte object: the
// size class above 32 KiB and whole 8 KiB pages above.
func allocSize(n int64) int64 {
	if n <= 0 {
		return 0
	}
	if n > sizeClasses[len(sizeClasses)-1] {
		const page = 8 << 10
		return (n + page - 1) &^ (page - 1)
	}
	i, _ := slices.BinarySearch(sizeClasses[:], n)
	return sizeClasses[i]
}

// entryBytes is the fixed cost of one entry holding a V: its item, the
// LRU element and map slot, and the path it is keyed by.
func entryBytes[V any](path string) int64 {
	return allocSize(int64(unsafe.Sizeof(item[V]{}))) + lruElemBytes + mapSlotBytes + allocSize(int64(len(path)))
}

func metadataBytes(path string) int64 { return entryBytes[op.Attr](path) }

func negativeBytes(path string) int64 { return entryBytes[time.Time](path) }

func linkBytes(path, target string) int64 {
	return entryBytes[string](path) + allocSize(int64(len(target)))
}

// dataBytes charges data's capacity, not its length: the whole allocation
// stays alive as long as any slice of it does.
func dataBytes(path string, data []byte) int64 {
	return entryBytes[fileData](path) + allocSize(int64(cap(data))+dataPrefixBytes)
}

func treeBytes(path string, entries []op.DirEntry) int64 {
	n := entryBytes[[]op.DirEntry](path) + allocSize(int64(cap(entries))*int64(unsafe.Sizeof(op.DirEntry{})))
	for _, e := range entries {
		n += allocSize(int64(len(e.Name)))
	}
	return n
}
