package pfsbench

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/hpc-copper/copper/logging"
)

// TestDaemonStartFromLog reads the startup timing lines as copper-node's
// logger writes them (node.MarkRegistered, node.setTreeReady).
func TestDaemonStartFromLog(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.log")
	base, closeLog, err := logging.New(logging.Options{Level: 4, Type: "file", File: file})
	if err != nil {
		t.Fatal(err)
	}
	log := base.With("rank", 3) // a daemon's logger carries attributes before the line's own
	start := time.Now().Add(-time.Second)
	log.Info("mounted", "mount", "/x")
	log.Info(fmt.Sprintf("provider registration completed after %d us", 250000))
	log.Info("tree ready", "after_us", 260000)
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	var d DaemonStart
	d.fromLog(file, start)
	if d.RegisteredS < 0.9 || d.RegisteredS > 30 {
		t.Fatalf("registered %.3f s after the start, want about 1 s: %+v", d.RegisteredS, d)
	}
	if got := d.RegisteredS - d.StartS; math.Abs(got-0.25) > 1e-9 {
		t.Errorf("start %.3f s before registration, want 0.25 s", got)
	}
	if d.TreeReadyS < d.RegisteredS {
		t.Errorf("tree ready at %.3f s, before registration at %.3f s", d.TreeReadyS, d.RegisteredS)
	}
	var none DaemonStart
	none.fromLog(filepath.Join(t.TempDir(), "missing.log"), start)
	if none != (DaemonStart{}) {
		t.Errorf("a missing log gave %+v", none)
	}
}

// TestReadinessFromStats tells the readiness policy from a node's stats.
func TestReadinessFromStats(t *testing.T) {
	for _, tc := range []struct {
		name, stats, want string
		probes            int64
	}{
		{"backoff (no hold counters)", `{"node":{"rank":1,"tree_ready":true}}`, ReadyBackoff, -1},
		{"wait at parent", `{"node":{"rank":1,"ready_probes":2,"ready_held":0}}`, ReadyHold, 2},
		{"not JSON", `copper-node: no`, "", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &copperTree{starts: make([]DaemonStart, 2)}
			tr.readiness(1, []byte(tc.stats))
			if tr.policy != tc.want {
				t.Errorf("policy %q, want %q", tr.policy, tc.want)
			}
			got := tr.starts[1].ReadyProbes
			if (got == nil) != (tc.probes < 0) || (got != nil && *got != tc.probes) {
				t.Errorf("probes %v, want %d", got, tc.probes)
			}
		})
	}
}
