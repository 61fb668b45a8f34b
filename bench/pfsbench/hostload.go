package pfsbench

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-copper/copper/bench/replay"
)

// HostLoad is the whole host's CPU over a window of the run (a phase, or
// a cold row's setup) and this run's own share of it: the machine is
// shared, and what the other jobs took while a row ran is an input of
// the scale model (bench/scalemodel), measured, not guessed.
type HostLoad struct {
	WallS float64 `json:"wall_s"` // the window
	// BusyS is every CPU's non-idle time in the window (/proc/stat:
	// user, nice, system, irq, softirq and steal; USER_HZ ticks, 10 ms).
	BusyS float64 `json:"busy_s"`
	// OwnS is this run's processes' CPU in the window: clients, daemons,
	// the emulator and (setup) the tar and copper-node children.
	OwnS float64 `json:"own_s"`
	// ClientsRunS and ClientsWaitS are the replay processes' own CPU and
	// their time runnable but waiting for a CPU, summed over processes
	// (each replay's thread's /proc/thread-self/schedstat, ns): the
	// contention each row met, exact even where the window is far
	// shorter than /proc/stat's ticks resolve. Zero for python imports.
	ClientsRunS  float64 `json:"clients_run_s,omitempty"`
	ClientsWaitS float64 `json:"clients_wait_s,omitempty"`
}

// withSched adds the replays' scheduler counters to the window.
func (h *HostLoad) withSched(s replay.Sched) *HostLoad {
	if h != nil {
		h.ClientsRunS, h.ClientsWaitS = secs(s.Run), secs(s.Wait)
	}
	return h
}

// hostClock is a window's start.
type hostClock struct {
	at   time.Time
	busy float64
}

func startHostClock() hostClock { return hostClock{at: time.Now(), busy: hostBusy()} }

// stop ends the window; own is this run's CPU in it.
func (h hostClock) stop(own time.Duration) *HostLoad {
	if h.at.IsZero() {
		return nil
	}
	return &HostLoad{WallS: secs(time.Since(h.at)), BusyS: max(0, hostBusy()-h.busy), OwnS: secs(own)}
}

// hostBusy is the host's non-idle CPU seconds since boot; 0 if
// /proc/stat is unreadable.
func hostBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	return parseHostBusy(b)
}

// parseHostBusy reads the "cpu" line of /proc/stat: user, nice, system,
// irq, softirq and steal ticks (idle and iowait are idle); 0 if it does
// not parse.
func parseHostBusy(b []byte) float64 {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0
		}
		if i != 3 && i != 4 {
			ticks += n
		}
	}
	return float64(ticks) / 100 // USER_HZ is 100 on Linux
}
