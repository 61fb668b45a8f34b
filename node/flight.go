package node

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hpc-copper/copper/op"
)

// Flight workers: a fetch runs on a goroutine of its own (its askers may
// give up while others still wait for it), but not on a new one each
// time: singleflight.DoChan started a goroutine per flight, which began
// with a small stack and grew it on the way to the parent connection
// (newproc and copystack were 3% of the 64-node cold read's CPU). Workers
// wait for the next flight; one idle for flightIdle exits, so a node
// that went quiet holds none.
const (
	maxIdleFlightWorkers = 16
	flightIdle           = time.Second
)

// flights runs one fetch per key at a time for every asker of that key,
// like singleflight.Group.DoChan. The zero value is not ready: use
// newFlights.
type flights struct {
	mu   sync.Mutex
	m    map[string]*flight
	jobs chan func()  // unbuffered: a send succeeds only when a worker waits
	idle atomic.Int32 // workers waiting on jobs
}

// flight is one fetch in the air; res is set before done is closed.
type flight struct {
	done chan struct{}
	res  op.Result
}

func newFlights() *flights {
	return &flights{m: make(map[string]*flight), jobs: make(chan func())}
}

// do returns the flight for key, starting fetch for it on a worker when
// none is in the air; led says this call started it. Wait on f.done and
// read f.res after it is closed.
func (g *flights) do(key string, fetch func() op.Result) (f *flight, led bool) {
	return g.doOn(key, false, fetch)
}

// doOn is do, running fetch on the calling goroutine when here is set and
// a flight is started: for an asker that cannot give up (a FUSE request,
// whose context never ends), a worker's only effect is two goroutine
// hand-offs per miss, each a wake-up of another thread on a busy node.
// The fetch is the same either way, and other askers wait on f.done.
func (g *flights) doOn(key string, here bool, fetch func() op.Result) (f *flight, led bool) {
	g.mu.Lock()
	if f, ok := g.m[key]; ok {
		g.mu.Unlock()
		return f, false
	}
	f = &flight{done: make(chan struct{})}
	g.m[key] = f
	g.mu.Unlock()
	job := func() {
		f.res = fetch()
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		close(f.done)
	}
	if here {
		job()
	} else {
		g.run(job)
	}
	return f, true
}

// pending returns the flight for key if one is in the air, else nil.
func (g *flights) pending(key string) *flight {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[key]
}

func (g *flights) run(job func()) {
	select {
	case g.jobs <- job:
	default:
		go g.work(job)
	}
}

// work runs job, then the jobs handed to it while it waits, until it has
// waited flightIdle or enough others wait.
func (g *flights) work(job func()) {
	var idle *time.Timer // one per worker, reset per wait
	for {
		job()
		if g.idle.Add(1) > maxIdleFlightWorkers {
			g.idle.Add(-1)
			break
		}
		if idle == nil {
			idle = time.NewTimer(flightIdle)
		} else {
			idle.Reset(flightIdle)
		}
		select {
		case job = <-g.jobs:
			g.idle.Add(-1)
			continue
		case <-idle.C:
			g.idle.Add(-1)
		}
		break
	}
	if idle != nil {
		idle.Stop()
	}
}
