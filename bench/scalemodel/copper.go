package scalemodel

// fuse is n FUSE requests from a process on node to its copper-node
// (size bytes answered), which needs key from its cache or the tree.
func (s *sim) fuse(node, n int, size int64, key string, fin func()) {
	k := s.k
	client := float64(n)*k.ClientReq + float64(size)*k.ClientByte
	// The daemon's: each request (its answer's bytes included: the
	// per-request cost is fitted on the N=1 row with them).
	daemon := float64(n) * k.DaemonReq
	if s.host == nil {
		// The process's own core, then the daemon's: booked at once.
		s.at(s.daemon(node, s.now+client, daemon, 1), func() { s.daemonGet(node, key, fin) })
		return
	}
	s.clientCPU(client, func() {
		s.at(s.daemon(node, s.now, daemon, 1), func() {
			s.daemonGet(node, key, fin)
		})
	})
}

// daemonGet is node.Get's cache and singleflight: held, joined, or
// fetched from the parent (root: the filesystem).
func (s *sim) daemonGet(node int, key string, cb func()) {
	ns := s.nodes[node]
	if flight(ns.daemon, key, func(fin func()) {
		got := fin
		if key[0] == 'P' {
			got = func() { s.gotListing(node, key[2:]); fin() }
		}
		if ns.pos.IsRoot() {
			s.backendFetch(node, key, got)
		} else {
			s.forward(node, key, got)
		}
	}, cb) {
		cb()
	}
}

// answerBytes is the size of the answer to key on the wire.
func (s *sim) answerBytes(key string) int64 {
	p := key[2:]
	if key[0] == 'F' {
		if p == largePath {
			return s.sc.LargeBytes
		}
		e, _ := s.cal.Workload.entry(p)
		return e.Size + 128
	}
	_, shipped := s.cal.shipped(p)
	return int64(len(s.cal.Workload.Dirs[p]))*160 + 64 + shipped // name, attributes, framing; the small files
}

// forward asks the parent over one hop.
func (s *sim) forward(node int, key string, fin func()) {
	k := s.k
	child := s.nodes[node]
	par := s.nodes[child.pos.Parent]
	lat := s.cal.Machine.NetLatency
	if s.sc.Host {
		lat = 0 // loopback: the hop's cost is its CPU
	}
	b := s.answerBytes(key)
	m := child.weight // the parent serves each real child
	s.at(s.daemon(node, s.now, k.HopCPU/2, 1)+lat, func() {
		par.served += int64(m)
		s.at(s.daemon(child.pos.Parent, s.now, k.HopCPU/2, m), func() {
			s.daemonGet(child.pos.Parent, key, func() {
				s.at(s.daemon(child.pos.Parent, s.now, float64(b)*k.HopByte/2, m), func() {
					t := s.now + lat
					if par.nic != nil {
						t = par.nic.reserve(s.now, b*int64(m)) + lat
					}
					s.at(t, func() {
						s.at(s.daemon(node, s.now, float64(b)*k.HopByte/2, 1), fin)
					})
				})
			})
		})
	})
}

// backendFetch is a root's filesystem work for key: a dirplus (the
// path walk its client has not made, opendir, readdir pages, a stat of
// every entry on the backend's parallel slots, each link's readlink)
// or a file read (stat if not held, open, read, release).
func (s *sim) backendFetch(node int, key string, fin func()) {
	ns := s.nodes[node]
	p := key[2:]
	walk := func(then func()) {
		var todo []string
		for _, c := range components(p) {
			if !ns.pfsSeen[c] {
				ns.pfsSeen[c] = true
				todo = append(todo, c)
			}
		}
		s.chain(node, "lookup", todo, then)
	}
	if key[0] == 'F' {
		size := s.fileSize(p)
		walk(func() {
			s.rootOp(node, "open", p, 0, func() {
				s.rootRead(node, p, size, func() { s.rootOp(node, "release", p, 0, fin) })
			})
		})
		return
	}
	walk(func() {
		s.rootOp(node, "opendir", p, 0, func() {
			es := s.cal.Workload.Dirs[p]
			s.rootSeq(node, "readdir", p, pages(len(es), s.server.EntriesPerPage), func() {
				var stat, links []string
				for _, e := range es {
					c := joinView(p, e.Name)
					if !ns.pfsSeen[c] {
						ns.pfsSeen[c] = true
						stat = append(stat, c)
					}
					if e.Link {
						links = append(links, c)
					}
				}
				s.parallel(node, "lookup", stat, func() {
					s.shipFiles(node, p, func() {
						s.parallel(node, "readlink", links, func() { s.rootOp(node, "releasedir", p, 0, fin) })
					})
				})
			})
		})
	})
}

func joinView(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// chain runs one op per path, one after the other, at a root.
func (s *sim) chain(node int, kind string, paths []string, then func()) {
	if len(paths) == 0 {
		then()
		return
	}
	s.rootOp(node, kind, paths[0], 0, func() { s.chain(node, kind, paths[1:], then) })
}

// parallel runs one op per path at once (bounded by backend_parallel).
func (s *sim) parallel(node int, kind string, paths []string, then func()) {
	if len(paths) == 0 {
		then()
		return
	}
	left := len(paths)
	for _, p := range paths {
		s.rootOp(node, kind, p, 0, func() {
			left--
			if left == 0 {
				then()
			}
		})
	}
}

func (s *sim) rootSeq(node int, kind, p string, n int, then func()) {
	if n == 0 {
		then()
		return
	}
	s.rootOp(node, kind, p, 0, func() { s.rootSeq(node, kind, p, n-1, then) })
}

// rootOp is one backend operation of a root, on one of its
// backend_parallel slots.
func (s *sim) rootOp(node int, kind, p string, _ int64, then func()) {
	b := s.nodes[node].backend
	b.acquire(func() {
		s.serverOp(node, false, kind, p, 1, func() {
			b.release()
			then()
		})
	})
}

func (s *sim) rootRead(node int, p string, size int64, then func()) {
	b := s.nodes[node].backend
	b.acquire(func() {
		s.dataRead(node, false, p, size, 1, func() {
			b.release()
			then()
		})
	})
}
