package slowpfs

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTime is a clock that moves only when told, and a Sleeper that
// records the deadlines it was asked to wait for and jumps the clock to
// them (an operation's wait is then exactly what the model charged).
type fakeTime struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Time
}

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) SleepUntil(_ context.Context, t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slept = append(f.slept, t)
	return nil
}

func (f *fakeTime) set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
}

func newFakeEmulator(t *testing.T, p Params) (*Emulator, *fakeTime) {
	t.Helper()
	ft := &fakeTime{now: t0}
	e, err := New(Config{Backing: t.TempDir(), Params: p, Now: ft.Now, Sleeper: ft})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return e, ft
}

func TestEmulatorChargesMetadataAndCounts(t *testing.T) {
	p := Params{MetadataService: 300 * us, Slots: 2, Bandwidth: 1 << 30, DirEntriesPerOp: 128}
	e, ft := newFakeEmulator(t, p)
	ran := 0
	for range 3 {
		require.NoError(t, e.Metadata(OpLookup, "/x", 1, func() error { ran++; return nil }))
	}
	err := e.Metadata(OpLookup, "/missing", 1, func() error { return syscall.ENOENT })
	assert.ErrorIs(t, err, syscall.ENOENT, "the real call's errno passes through")
	assert.Equal(t, 3, ran)
	// Two slots: arrivals at t0 finish at 300, 300, 600, 600 µs.
	assert.Equal(t, []time.Time{at(300 * us), at(300 * us), at(600 * us), at(600 * us)}, ft.slept)

	s := e.Snapshot()
	assert.Equal(t, OpCount{Ops: 4, Errors: 1}, s.Counters.Ops[OpLookup])
	assert.Equal(t, int64(3), s.Counters.Paths["/x"].Ops[OpLookup])
	assert.Equal(t, int64(4), s.Model.MetadataOps)
	assert.Equal(t, 600*us, s.Model.MetadataWait)
	assert.Equal(t, p, s.Params)
}

func TestEmulatorChargesDataForBytesRead(t *testing.T) {
	e, ft := newFakeEmulator(t, Params{MetadataService: us, Slots: 1, Bandwidth: 1 << 20, DirEntriesPerOp: 1})
	n, err := e.Data("/f", 0, func() (int, error) { return 1024, nil })
	require.NoError(t, err)
	assert.Equal(t, 1024, n)
	// A short read at EOF is charged for what it returned.
	ft.set(at(time.Second))
	_, err = e.Data("/f", 1024, func() (int, error) { return 512, nil })
	require.NoError(t, err)
	_, err = e.Data("/f", 0, func() (int, error) { return 0, syscall.EIO })
	assert.ErrorIs(t, err, syscall.EIO)
	assert.Equal(t, []time.Time{at(976563), at(time.Second + 488282)}, ft.slept, "failed reads are not charged")

	s := e.Reset()
	assert.Equal(t, OpCount{Ops: 3, Errors: 1, Bytes: 1536}, s.Counters.Ops[OpRead])
	assert.Equal(t, int64(1536), s.Counters.Paths["/f"].Distinct)
	assert.Equal(t, int64(2), s.Model.DataOps)
	assert.Empty(t, e.Snapshot().Counters.Ops, "Reset zeroed the counters")
}

func TestNewRejectsBadConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, writeFile(file, "x"))
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing backing", Config{Backing: "/nonexistent/slowpfs", Params: DefaultParams()}, "no such file"},
		{"backing is a file", Config{Backing: file, Params: DefaultParams()}, "not a directory"},
		{"bad params", Config{Backing: t.TempDir(), Params: Params{}}, "metadata slots 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestTimerWakesAtOrAfterDeadline(t *testing.T) {
	tm, err := NewTimer()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tm.Close()) })
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make([]error, 20)
	early := make([]bool, 20)
	for i := range errs {
		wg.Go(func() {
			// Deadlines in both orders, so later arrivals must interrupt
			// a longer wait.
			deadline := time.Now().Add(time.Duration(20-i) * 100 * us)
			errs[i] = tm.SleepUntil(ctx, deadline)
			early[i] = time.Now().Before(deadline)
		})
	}
	wg.Wait()
	for i := range errs {
		require.NoError(t, errs[i])
		assert.False(t, early[i], "sleeper %d woke before its deadline", i)
	}
	assert.Equal(t, int64(20), tm.Stats().Wakeups)
	require.NoError(t, tm.SleepUntil(ctx, time.Now().Add(-time.Second)), "a past deadline returns at once")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, tm.SleepUntil(cctx, time.Now().Add(time.Hour)), context.Canceled)
}

func TestTimerCloseWakesSleepers(t *testing.T) {
	tm, err := NewTimer()
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- tm.SleepUntil(context.Background(), time.Now().Add(time.Hour)) }()
	require.Eventually(t, func() bool {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		return tm.queue.Len() == 1
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, tm.Close())
	require.NoError(t, <-done)
	require.NoError(t, tm.Close(), "second Close is a no-op")
	assert.Error(t, tm.SleepUntil(context.Background(), time.Now().Add(time.Hour)))
}

func TestControlSocket(t *testing.T) {
	e, _ := newFakeEmulator(t, DefaultParams())
	sock := filepath.Join(t.TempDir(), "ctl")
	srv, err := ListenControl(sock, e)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	e.Free(OpStatfs, "/", false)
	s, err := Query(ctx, sock, CmdStats)
	require.NoError(t, err)
	assert.Equal(t, int64(1), s.Counters.Ops[OpStatfs].Ops)
	s, err = Query(ctx, sock, CmdReset)
	require.NoError(t, err)
	assert.Equal(t, int64(1), s.Counters.Ops[OpStatfs].Ops)
	s, err = Query(ctx, sock, CmdStats)
	require.NoError(t, err)
	assert.Empty(t, s.Counters.Ops)

	_, err = Query(ctx, sock, "explode")
	assert.ErrorContains(t, err, `unknown command "explode"`)
	_, err = Query(ctx, filepath.Join(t.TempDir(), "none"), CmdStats)
	assert.True(t, errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED), "%v", err)
}

func TestOperationsAnswerTheRealResultWhenCloseCutsTheirWait(t *testing.T) {
	// A day of service time: only Close can end the wait. The request's
	// own context plays no part (a kernel interrupt must not turn a
	// success into an error).
	e, err := New(Config{Backing: t.TempDir(), Params: Params{MetadataService: time.Second, Slots: 1, Bandwidth: 1 << 20, DirEntriesPerOp: 1}})
	require.NoError(t, err)
	e.model.Metadata(time.Now(), 86400) // the only slot is busy for a day
	done := make(chan error, 1)
	go func() { done <- e.Metadata(OpLookup, "/x", 1, func() error { return syscall.ENOENT }) }()
	require.Eventually(t, func() bool {
		e.timer.mu.Lock()
		defer e.timer.mu.Unlock()
		return e.timer.queue.Len() == 1
	}, 10*time.Second, time.Millisecond, "the operation is waiting")
	require.NoError(t, e.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, syscall.ENOENT)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release the waiting operation")
	}
}
