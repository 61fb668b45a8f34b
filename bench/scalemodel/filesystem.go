package scalemodel

import "hash/fnv"

// serverSeq runs n ops of kind on p one after the other from a client.
func (s *sim) serverSeq(node int, client bool, kind, p string, n, mult int, then func()) {
	if n == 0 {
		then()
		return
	}
	s.serverOp(node, client, kind, p, mult, func() { s.serverSeq(node, client, kind, p, n-1, mult, then) })
}

// requesterCPU charges the side that makes a filesystem request: a
// process (client) or a copper root's daemon.
func (s *sim) requesterCPU(node int, client bool, d float64, f func()) {
	if client {
		s.clientCPU(d, f)
		return
	}
	s.at(s.daemon(node, s.now, d, 1), f)
}

// serverOp is one filesystem operation: the requester's CPU, the
// emulator's (Host mode), then a metadata slot (release/releasedir are
// free) of the directory's server.
func (s *sim) serverOp(node int, client bool, kind, p string, mult int, then func()) {
	k := s.k
	mult = max(mult, 1)
	s.ops[kind] += int64(mult)
	if cls, ok := metaKinds[kind]; ok && cls != "" {
		s.fetches[cls+" "+p] += int64(mult)
	}
	s.requesterCPU(node, client, k.ClientReq, func() {
		emu := func(f func()) { f() }
		if s.host != nil {
			emu = func(f func()) { s.at(s.host.reserve(s.now, k.EmulatorOp)+s.wake, f) }
		}
		emu(func() {
			if _, meta := metaKinds[kind]; !meta {
				then()
				return
			}
			mdt := s.mds[0]
			if len(s.mds) > 1 {
				h := fnv.New32a()
				h.Write([]byte(parent(p)))
				mdt = s.mds[int(h.Sum32())%len(s.mds)]
			}
			s.at(reserveN(mdt, s.now, s.server.MetadataService, mult), then)
		})
	})
}

// dataRead reads size bytes of p: requester and emulator CPU per chunk
// and byte, then the shared bandwidth.
func (s *sim) dataRead(node int, client bool, p string, size int64, mult int, then func()) {
	k := s.k
	n := chunks(size)
	mult = max(mult, 1)
	s.ops["read"] += int64(n * mult)
	s.bytes += size * int64(mult)
	s.requesterCPU(node, client, float64(n)*k.ClientReq+float64(size)*k.ClientByte, func() {
		emu := func(f func()) { f() }
		if s.host != nil {
			emu = func(f func()) {
				s.at(s.host.reserve(s.now, float64(n)*k.EmulatorOp+float64(size)*k.EmulatorByte)+float64(n)*s.wake, f)
			}
		}
		emu(func() { s.at(s.oss.reserve(s.now, size*int64(mult)), then) })
	})
}
