package profile

import (
	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/op"
)

// Part selects counters to Reset; Copper 1.0's clear commands each name one.
type Part uint16

const (
	PartCounts         Part = 1 << iota // FUSE calls and errors, forwarded, backend ops, bytes served (ioctl 700)
	PartTimes                           // latencies (ioctl 1000)
	PartHits                            // cache hits (ioctl 800)
	PartMisses                          // cache misses and coalesced waits (ioctl 900)
	PartNegative                        // negative results and ENOENT TTL counters (ioctl 1800)
	PartDataEvents                      // data paths (ioctl 1400)
	PartTreeEvents                      // tree paths (ioctl 1500)
	PartMetadataEvents                  // metadata, link and metadata_ttl paths (ioctl 1600)
	PartIoctlEvents                     // ioctl counts (ioctl 2100)
	PartPaths                           // the full path list

	PartAll Part = 1<<iota - 1 // everything (ioctl 1900)
)

// nodeCounters are the node-level counters the profile reports relative
// to the last reset.
type nodeCounters struct {
	hits, misses, coalesced, forwarded, backend [len(op.All) + 1]int64
	ttl                                         TTLCounts
}

// TTLCounts are the cache's exact-path ENOENT counters.
type TTLCounts struct {
	Stores, Serves, Expires, Clears int64
}

func countersOf(st node.Stats) nodeCounters {
	var c nodeCounters
	for _, o := range op.All {
		s := st.Op(o)
		c.hits[o], c.misses[o], c.coalesced[o] = s.Hits, s.Misses, s.Coalesced
		c.forwarded[o], c.backend[o] = s.Forwarded, s.BackendOps
	}
	c.ttl = TTLCounts{
		Stores:  int64(st.Cache.NegativeStores),
		Serves:  int64(st.Cache.NegativeServes),
		Expires: int64(st.Cache.NegativeExpires),
		Clears:  int64(st.Cache.NegativeClears),
	}
	return c
}

// Reset clears the selected counters. Node and cache counters, which
// never go down, are reported from here on relative to their values now.
func (c *Collector) Reset(p Part) {
	now := c.nodeNow()
	c.baseMu.Lock()
	for _, o := range op.All {
		if p&PartCounts != 0 {
			c.base.forwarded[o], c.base.backend[o] = now.forwarded[o], now.backend[o]
		}
		if p&PartHits != 0 {
			c.base.hits[o] = now.hits[o]
		}
		if p&PartMisses != 0 {
			c.base.misses[o], c.base.coalesced[o] = now.misses[o], now.coalesced[o]
		}
	}
	if p&PartNegative != 0 {
		c.base.ttl = now.ttl
	}
	c.baseMu.Unlock()

	each := func(f func(*opStat)) {
		for i := range c.ops {
			f(&c.ops[i])
		}
		c.extra.Range(func(_, v any) bool { f(v.(*opStat)); return true })
	}
	if p&PartCounts != 0 {
		c.bytesServed.Store(0)
		each(func(s *opStat) {
			s.calls.Store(0)
			s.errors.Store(0)
			for i := range s.errnos {
				s.errnos[i].Store(0)
			}
		})
	}
	if p&PartTimes != 0 {
		each(func(s *opStat) { s.latency.reset() })
	}
	if p&PartNegative != 0 {
		each(func(s *opStat) { s.negative.Store(0) })
	}
	for cat, part := range map[int]Part{0: PartMetadataEvents, 1: PartDataEvents, 2: PartTreeEvents,
		3: PartMetadataEvents, ttlCategory: PartMetadataEvents} {
		if p&part != 0 && c.sketches[cat] != nil {
			c.sketches[cat].reset()
		}
	}
	if p&PartPaths != 0 && c.paths != nil {
		c.paths.reset()
		c.warned.Store(false)
	}
	if p&PartIoctlEvents != 0 {
		c.ioctlMu.Lock()
		clear(c.ioctls)
		c.ioctlExternal = 0
		c.ioctlTerminal.Store(0)
		c.ioctlMu.Unlock()
	}
}

// delta returns now relative to the last resets.
func (c *Collector) delta(now nodeCounters) nodeCounters {
	c.baseMu.Lock()
	b := c.base
	c.baseMu.Unlock()
	var d nodeCounters
	for _, o := range op.All {
		d.hits[o] = now.hits[o] - b.hits[o]
		d.misses[o] = now.misses[o] - b.misses[o]
		d.coalesced[o] = now.coalesced[o] - b.coalesced[o]
		d.forwarded[o] = now.forwarded[o] - b.forwarded[o]
		d.backend[o] = now.backend[o] - b.backend[o]
	}
	d.ttl = TTLCounts{
		Stores:  now.ttl.Stores - b.ttl.Stores,
		Serves:  now.ttl.Serves - b.ttl.Serves,
		Expires: now.ttl.Expires - b.ttl.Expires,
		Clears:  now.ttl.Clears - b.ttl.Clears,
	}
	return d
}
