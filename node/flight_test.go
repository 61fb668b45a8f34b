package node

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/op"
)

func TestFlightsRunOneFetchPerKeyForAllAskers(t *testing.T) {
	g := newFlights()
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func() op.Result {
		fetches.Add(1)
		<-release
		return op.Result{Attr: op.Attr{Size: 42}}
	}
	const askers = 50
	var leaders atomic.Int32
	results := make(chan op.Result, askers)
	var wg sync.WaitGroup
	for range askers {
		wg.Go(func() {
			f, led := g.do("k", fetch)
			if led {
				leaders.Add(1)
			}
			<-f.done
			results <- f.res
		})
	}
	// Every asker joined before the fetch may end: the key is in the air.
	require.Eventually(t, func() bool { return fetches.Load() == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		assert.Equal(t, int64(42), r.Attr.Size)
	}
	assert.Equal(t, int32(1), fetches.Load(), "one fetch for every asker in the air")
	assert.Equal(t, int32(1), leaders.Load())

	// Once it has landed, the key flies again.
	f, led := g.do("k", fetch)
	<-f.done
	assert.True(t, led)
	assert.Equal(t, int32(2), fetches.Load())
}

// Fetches that wait on each other (a node's fetch blocks until its parent
// answers, which may take other flights) must each get a goroutine: no
// flight waits for a worker.
func TestFlightsOfManyKeysRunAtOnce(t *testing.T) {
	g := newFlights()
	const keys = 3 * maxIdleFlightWorkers
	var started sync.WaitGroup
	started.Add(keys)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	var fs []*flight
	for i := range keys {
		f, led := g.do(fmt.Sprintf("k%d", i), func() op.Result {
			started.Done()
			<-all // every fetch is running at once, or none ends
			return op.Result{}
		})
		require.True(t, led)
		fs = append(fs, f)
	}
	for _, f := range fs {
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatal("a flight waited for a worker")
		}
	}
}

// A flight started here runs on the asker's goroutine: it has landed when
// doOn returns, and askers that came meanwhile share it.
func TestFlightsRunHereOnTheAsker(t *testing.T) {
	g := newFlights()
	var fetches atomic.Int32
	joined := make(chan *flight, 1)
	f, led := g.doOn("k", true, func() op.Result {
		fetches.Add(1)
		go func() { // another asker, while this fetch is in the air
			f2, led2 := g.doOn("k", true, func() op.Result { panic("second fetch of k") })
			assert.False(t, led2)
			joined <- f2
		}()
		f2 := <-joined
		joined <- f2
		return op.Result{Attr: op.Attr{Size: 7}}
	})
	require.True(t, led)
	select {
	case <-f.done:
	default:
		t.Fatal("doOn(here) returned before its fetch landed")
	}
	assert.Same(t, f, <-joined, "the asker that came meanwhile shares the flight")
	assert.Equal(t, int64(7), f.res.Attr.Size)
	assert.Equal(t, int32(1), fetches.Load())
}
