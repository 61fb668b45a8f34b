package cache

import (
	"math"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// table is one LRU of path → value with byte accounting. Its owner's mutex
// guards it.
type table[V any] struct {
	name      string
	lru       *simplelru.LRU[string, *item[V]]
	bytes     int64
	evictions uint64
	total     *int64 // the cache's total across tables
}

type item[V any] struct {
	val  V
	size int64
	used uint64 // the cache's tick at the last store or hit
}

// anyTable is what the cache does to a table regardless of its value type.
type anyTable interface {
	oldestUse() (uint64, bool)
	evictOldest()
	remove(path string) bool
	reset()
	stat() TableStat
}

func newTable[V any](name string, total *int64) *table[V] {
	t := &table[V]{name: name, total: total}
	t.reset()
	return t
}

// reset replaces the LRU rather than purging it: O(1) under the lock, the
// garbage collector takes the old entries. The owner zeroes its total.
func (t *table[V]) reset() {
	// The size only bounds the entry count, which the byte budget already
	// does; NewLRU fails only for a size below 1.
	lru, err := simplelru.NewLRU[string, *item[V]](math.MaxInt, t.dropped)
	if err != nil {
		panic("cache: simplelru.NewLRU: " + err.Error())
	}
	t.lru = lru
	t.bytes = 0
}

// dropped is the LRU's eviction callback: every way out of the table
// (RemoveOldest, Remove) passes here, so the byte counts stay exact.
func (t *table[V]) dropped(_ string, it *item[V]) {
	t.bytes -= it.size
	*t.total -= it.size
}

func (t *table[V]) put(path string, val V, size int64, used uint64) {
	// simplelru.Add replaces a value without calling the callback: remove
	// the old entry first so its bytes leave through dropped.
	t.lru.Remove(path)
	t.lru.Add(path, &item[V]{val: val, size: size, used: used})
	t.bytes += size
	*t.total += size
}

// get returns path's value and marks it used at tick used.
func (t *table[V]) get(path string, used uint64) (V, bool) {
	it, ok := t.lru.Get(path)
	if !ok {
		var zero V
		return zero, false
	}
	it.used = used
	return it.val, true
}

// getItem is get, for a caller that updates the value in place.
func (t *table[V]) getItem(path string, used uint64) (*item[V], bool) {
	it, ok := t.lru.Get(path)
	if ok {
		it.used = used
	}
	return it, ok
}

// peek returns path's value without changing its recency.
func (t *table[V]) peek(path string) (V, bool) {
	it, ok := t.lru.Peek(path)
	if !ok {
		var zero V
		return zero, false
	}
	return it.val, true
}

func (t *table[V]) oldestValue() (V, bool) {
	_, it, ok := t.lru.GetOldest()
	if !ok {
		var zero V
		return zero, false
	}
	return it.val, true
}

func (t *table[V]) oldestUse() (uint64, bool) {
	_, it, ok := t.lru.GetOldest()
	if !ok {
		return 0, false
	}
	return it.used, true
}

func (t *table[V]) evictOldest() {
	if _, _, ok := t.lru.RemoveOldest(); ok {
		t.evictions++
	}
}

func (t *table[V]) remove(path string) bool { return t.lru.Remove(path) }

func (t *table[V]) stat() TableStat {
	return TableStat{Name: t.name, Entries: t.lru.Len(), Bytes: t.bytes, Evictions: t.evictions}
}
