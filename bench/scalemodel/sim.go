package scalemodel

// engine is a discrete-event loop in virtual seconds. Events at one time
// run in the order they were scheduled (seq), so a run is deterministic.
type engine struct {
	now float64
	seq uint64
	h   []event
}

type event struct {
	t   float64
	seq uint64
	f   func()
}

func (e *engine) less(i, j int) bool {
	if e.h[i].t != e.h[j].t {
		return e.h[i].t < e.h[j].t
	}
	return e.h[i].seq < e.h[j].seq
}

// at runs f at time t (not before now).
func (e *engine) at(t float64, f func()) {
	e.seq++
	e.h = append(e.h, event{t: max(t, e.now), seq: e.seq, f: f})
	for i := len(e.h) - 1; i > 0; {
		p := (i - 1) / 2
		if !e.less(i, p) {
			break
		}
		e.h[i], e.h[p] = e.h[p], e.h[i]
		i = p
	}
}

func (e *engine) pop() event {
	top := e.h[0]
	last := len(e.h) - 1
	e.h[0] = e.h[last]
	e.h[last] = event{}
	e.h = e.h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(e.h) && e.less(l, m) {
			m = l
		}
		if r < len(e.h) && e.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		e.h[i], e.h[m] = e.h[m], e.h[i]
		i = m
	}
	return top
}

// run processes events until none is left.
func (e *engine) run() {
	for len(e.h) > 0 {
		ev := e.pop()
		e.now = ev.t
		ev.f()
	}
}

// pool is c identical servers (CPU cores, metadata slots) taken first
// come, first served: a job submitted at now starts when the earliest
// server is free. A nil pool has unlimited servers.
type pool struct {
	free []float64 // min-heap of the servers' free times
	busy float64   // seconds booked in all
}

func newPool(c int) *pool { return &pool{free: make([]float64, c)} }

// reserve books d seconds and returns when they end.
func (p *pool) reserve(now, d float64) float64 {
	if p == nil {
		return now + d
	}
	start := max(now, p.free[0])
	p.free[0] = start + d
	p.busy += d
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(p.free) && p.free[l] < p.free[m] {
			m = l
		}
		if r < len(p.free) && p.free[r] < p.free[m] {
			m = r
		}
		if m == i {
			break
		}
		p.free[i], p.free[m] = p.free[m], p.free[i]
		i = m
	}
	return start + d
}

// pipe is a shared bandwidth served first come, first served.
type pipe struct {
	bw   float64 // bytes per second; 0 = unlimited
	free float64
}

func (p *pipe) reserve(now float64, bytes int64) float64 {
	if p == nil || p.bw <= 0 {
		return now
	}
	start := max(now, p.free)
	p.free = start + float64(bytes)/p.bw
	return p.free
}

// sem bounds concurrent operations; waiters go first come, first served.
type sem struct {
	n, used int
	wait    []func()
}

func (s *sem) acquire(f func()) {
	if s.used < s.n {
		s.used++
		f()
		return
	}
	s.wait = append(s.wait, f)
}

func (s *sem) release() {
	if len(s.wait) > 0 {
		f := s.wait[0]
		s.wait = s.wait[1:]
		f()
		return
	}
	s.used--
}

// item is one singleflight entry of a cache: fetched once, waited on by
// everyone who asks meanwhile, then held.
type item struct {
	done    bool
	waiters []func()
}

// flight answers whether key is held; if not, cb runs once it is,
// and the first asker's fetch is started.
func flight(m map[string]*item, key string, fetch func(finish func()), cb func()) bool {
	it := m[key]
	if it != nil {
		if it.done {
			return true
		}
		it.waiters = append(it.waiters, cb)
		return false
	}
	it = &item{waiters: []func(){cb}}
	m[key] = it
	fetch(func() {
		it.done = true
		ws := it.waiters
		it.waiters = nil
		for _, w := range ws {
			w()
		}
	})
	return false
}

// reserveN books m jobs of d on p at now and returns when the last ends.
func reserveN(p *pool, now, d float64, m int) float64 {
	end := now
	for range max(m, 1) {
		end = max(end, p.reserve(now, d))
	}
	return end
}
