package nodecmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/service"
)

// memory asks the node serving --mount where its memory went and, with
// --heap-profile, writes its heap profile to a file.
func memory(args []string, stdout io.Writer) error {
	fs, mount, timeout := controlFlagSet("memory")
	out := fs.String("heap-profile", "", "write the node's heap profile (pprof format) to this file")
	gc := fs.Bool("gc", false, "have the node collect garbage first, so in-use figures are those of now (a full GC: milliseconds)")
	asJSON := fs.Bool("json", false, "print JSON for scripts (without the profile's bytes)")
	if err := parseControl(fs, args); err != nil {
		return err
	}
	req := control.Request{Cmd: "memory", Args: map[string]string{}}
	if *out != "" {
		req.Args["profile"] = "1"
	}
	if *gc {
		req.Args["gc"] = "1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var res service.MemoryResult
	if err := control.Call(ctx, *mount, req, &res); err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, res.HeapProfile, 0o600); err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		res.HeapProfile = nil
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	printMemory(stdout, res)
	if *out != "" {
		fmt.Fprintf(stdout, "\nheap profile: %s (go tool pprof -sample_index=inuse_space %s)\n", *out, *out)
	}
	return nil
}

// printMemory shows one node's memory by class.
func printMemory(w io.Writer, m service.MemoryResult) {
	fmt.Fprintf(w, "copper node pid %d: resident %s (peak %s), cache %s\n\n", m.PID, human(m.RSSBytes), human(m.PeakRSSBytes), human(m.CacheBytes))
	for _, r := range []struct {
		name string
		n    int64
	}{
		{"heap objects (live and not yet swept)", m.ObjectsBytes},
		{"  of which live at the last GC", m.LiveBytes},
		{"heap unused in in-use spans", m.UnusedBytes},
		{"heap free, still resident", m.FreeBytes},
		{"heap free, returned to the OS", m.ReleasedBytes},
		{"stacks", m.StacksBytes},
		{"runtime (GC metadata, other)", m.RuntimeBytes},
		{"mapped by the Go runtime", m.TotalBytes},
		{"next GC at heap", m.HeapGoalBytes},
	} {
		fmt.Fprintf(w, "%-38s %12d %10s\n", r.name, r.n, human(r.n))
	}
	limit := "none"
	if m.MemoryLimitBytes < 1<<62 {
		limit = human(m.MemoryLimitBytes)
	}
	gogc := fmt.Sprint(m.GOGC)
	if m.GOGC < 0 {
		gogc = "off"
	}
	fmt.Fprintf(w, "\nGOGC %s, memory limit %s, %d goroutines, %d GC cycles\n", gogc, limit, m.Goroutines, m.GCCycles)
}
