// Command statloop times lstat(2) of a path against the same path under
// another root, alternating rounds so that both see the same machine noise:
//
//	statloop -rounds 7 -n 200000 /usr/lib/python3/dist-packages/numpy/__init__.py /tmp/cu1
//
// prints the median ns per stat natively and under the root, and their ratio.
// Baselines split the mount's cost: each is another root holding a native
// copy of the path (-baseline depth=/tmp/cu1-copy: a plain directory at
// the mount's depth, the longer path walk alone; bind=/tmp/cu1-bind: a bind
// mount of it, plus a mount crossing), timed in the same rounds; each adds
// NAME_ns_per_stat, NAME_ratio (over native) and mount_vs_NAME.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// baseline is a root holding a native copy of the path, named for output.
type baseline struct{ name, root string }

// parseBaselines reads "name=DIR,name=DIR".
func parseBaselines(s string) ([]baseline, error) {
	var out []baseline
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			continue
		}
		name, root, ok := strings.Cut(item, "=")
		if !ok || name == "" || root == "" || strings.ContainsAny(name, " =") {
			return nil, fmt.Errorf("-baseline %q: want NAME=DIR", item)
		}
		out = append(out, baseline{name, root})
	}
	return out, nil
}

func main() {
	rounds := flag.Int("rounds", 7, "alternating rounds; the median is reported")
	n := flag.Int("n", 200_000, "stats per round")
	missing := flag.Bool("missing", false, "the path does not exist: time ENOENT answers")
	baselineList := flag.String("baseline", "", "NAME=DIR,...: roots holding native copies of PATH, timed in the same rounds")
	flag.Parse()
	baselines, err := parseBaselines(*baselineList)
	if err != nil || flag.NArg() != 2 || *rounds < 1 || *n < 1 {
		if err != nil {
			fmt.Fprintln(os.Stderr, "statloop:", err)
		}
		fmt.Fprintln(os.Stderr, "usage: statloop [-rounds R] [-n N] [-missing] [-baseline NAME=DIR,...] PATH ROOT")
		os.Exit(2)
	}
	// paths: native, under the mount, then the baselines.
	native := flag.Arg(0)
	paths := []string{native, filepath.Join(flag.Arg(1), native)}
	for _, b := range baselines {
		paths = append(paths, filepath.Join(b.root, native))
	}
	for _, p := range paths {
		if err := check(p, *missing); err != nil {
			fmt.Fprintln(os.Stderr, "statloop:", err)
			os.Exit(1)
		}
	}
	times := make([][]float64, len(paths))
	for range *rounds {
		for i, p := range paths {
			times[i] = append(times[i], timeStats(p, *n))
		}
	}
	ma, mb := median(times[0]), median(times[1])
	fmt.Printf("native_ns_per_stat=%.0f mount_ns_per_stat=%.0f ratio=%.2f", ma, mb, mb/ma)
	for i, b := range baselines {
		mc := median(times[2+i])
		fmt.Printf(" %s_ns_per_stat=%.0f %s_ratio=%.2f mount_vs_%s=%.2f", b.name, mc, b.name, mc/ma, b.name, mb/mc)
	}
	fmt.Printf(" rounds=%d n=%d\n", *rounds, *n)
}

func check(p string, missing bool) error {
	var st syscall.Stat_t
	err := syscall.Lstat(p, &st)
	switch {
	case missing && !errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("%s: want ENOENT, got %v", p, err)
	case !missing && err != nil:
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

func timeStats(p string, n int) float64 {
	var st syscall.Stat_t
	start := time.Now()
	for range n {
		_ = syscall.Lstat(p, &st)
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
