package replay

import (
	"runtime"
	"testing"
	"time"
)

func TestParseSchedstat(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Sched
		wantErr bool
	}{
		{in: "123 456 7\n", want: Sched{Run: 123, Wait: 456}},
		{in: "0 0 0", want: Sched{}},
		{in: "123 456", wantErr: true},
		{in: "123 456 7 8", wantErr: true},
		{in: "-1 456 7", wantErr: true},
		{in: "1 x 7", wantErr: true},
		{in: "1 2 -3", wantErr: true},
		{in: "", wantErr: true},
	} {
		got, err := ParseSchedstat([]byte(tc.in))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseSchedstat(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzParseSchedstat(f *testing.F) {
	f.Add([]byte("123 456 7\n"))
	f.Add([]byte("1 2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSchedstat(b)
		if err == nil && (s.Run < 0 || s.Wait < 0) {
			t.Fatalf("ParseSchedstat(%q) = %+v: negative", b, s)
		}
	})
}

// The replay's own thread is measured: a run that spins reports CPU.
func TestThreadSchedCounts(t *testing.T) {
	// The counters are the thread's: the goroutine must stay on it, as a
	// replay's does (otherwise before and after may be two threads).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, ok := threadSched()
	if !ok {
		t.Fatal("no /proc/thread-self/schedstat on this kernel")
	}
	for start := time.Now(); time.Since(start) < 20*time.Millisecond; {
	}
	after, _ := threadSched()
	if d := after.Sub(before); d.Run <= 0 {
		t.Fatalf("spun 20 ms on a thread, schedstat run grew by %v", d.Run)
	}
}
