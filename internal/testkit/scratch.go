package testkit

import (
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/internal/osutil"
)

// killWait bounds how long the cleanup waits for killed processes to go.
const killWait = 5 * time.Second

// Scratch is a test's directory for mounts and for the processes that
// serve them, which name the directory on their command line.
//
// Unlike t.TempDir, its cleanup never descends into a live mount: it
// kills the processes still naming the directory, detaches what is
// still mounted below it, aborts the FUSE connections that still hold
// requests, and removes the directory only once nothing is mounted in
// it. A test that stops its servers gracefully registers that with
// t.Cleanup after NewScratch, so that it runs first.
type Scratch struct {
	Dir string
	t   testing.TB

	mu    sync.Mutex
	conns map[uint32]bool // FUSE connections ever seen below Dir
}

// NewScratch creates a directory named after pattern (as os.MkdirTemp)
// and registers its cleanup.
func NewScratch(t testing.TB, pattern string) *Scratch {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	require.NoError(t, err)
	s := &Scratch{Dir: dir, t: t, conns: map[uint32]bool{}}
	t.Cleanup(s.cleanup)
	return s
}

// Mounts lists the mounts at or below Dir, in mountinfo order. Call it
// from the test's goroutine: it fails the test if mountinfo is unreadable.
func (s *Scratch) Mounts() []osutil.Mount {
	s.t.Helper()
	ms, err := osutil.MountsUnder(s.Dir)
	require.NoError(s.t, err)
	return ms
}

// NoteConnections records the FUSE connections of the mounts below Dir
// while they are still listed, so that the cleanup can abort them after
// they were detached. Call it after every start of a server; it is safe
// from any goroutine.
func (s *Scratch) NoteConnections() {
	ms, err := osutil.MountsUnder(s.Dir)
	if err != nil {
		s.t.Errorf("note FUSE connections under %s: %v", s.Dir, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		if m.IsFUSE() {
			s.conns[m.Minor] = true
		}
	}
}

// Processes lists the running processes whose command line names Dir.
func (s *Scratch) Processes() []int { return osutil.ProcessesMentioning(s.Dir) }

func (s *Scratch) cleanup() {
	t := s.t
	s.NoteConnections()

	pids := s.Processes()
	for _, pid := range pids {
		t.Logf("teardown: SIGKILL pid %d, still alive after stop", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(killWait)
	for _, pid := range pids {
		for osutil.ProcessMentions(pid, s.Dir) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}

	detachErr := DetachMountsUnder(s.Dir)
	s.abortStuckConnections()
	if detachErr != nil {
		t.Errorf("teardown: %v; not removing %s", detachErr, s.Dir)
		return
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		t.Errorf("teardown: %v", err)
	}
}

// abortStuckConnections releases whoever still waits on a connection
// whose server is gone: detaching did not.
func (s *Scratch) abortStuckConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	AbortStuckConnections(s.t, s.conns)
}

// AbortStuckConnections aborts those of conns (FUSE connection numbers
// of mounts already detached) on which requests still wait, logging what
// it did.
func AbortStuckConnections(t testing.TB, conns map[uint32]bool) {
	if len(conns) == 0 {
		return
	}
	if err := EnsureFusectl(); err != nil {
		t.Logf("teardown: %v", err)
	}
	// A connection's number is its superblock's device minor, which the
	// kernel hands to a new mount once the old superblock is gone. Ours
	// are detached by now, so a number that is mounted anywhere belongs
	// to another test running in parallel (go test runs packages at
	// once): aborting it would break that test's live mount.
	live := map[uint32]bool{}
	all, err := osutil.Mounts()
	if err != nil {
		t.Logf("teardown: not aborting FUSE connections: %v", err)
		return
	}
	for _, m := range all {
		if m.IsFUSE() {
			live[m.Minor] = true
		}
	}
	for id := range conns {
		if live[id] {
			continue
		}
		switch waiting, err := AbortIfStuck(id); {
		case err != nil:
			t.Logf("teardown: %v", err)
		case waiting > 0:
			t.Logf("teardown: aborted FUSE connection %d (%d requests waiting)", id, waiting)
		}
	}
}
