// Command statloop times lstat(2) of a path against the same path under
// another root, alternating rounds so that both see the same machine noise:
//
//	statloop -rounds 7 -n 200000 /usr/lib/python3/dist-packages/numpy/__init__.py /tmp/cu1
//
// prints the median ns per stat natively and under the root, and their ratio.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

func main() {
	rounds := flag.Int("rounds", 7, "alternating rounds; the median is reported")
	n := flag.Int("n", 200_000, "stats per round")
	missing := flag.Bool("missing", false, "the path does not exist: time ENOENT answers")
	flag.Parse()
	if flag.NArg() != 2 || *rounds < 1 || *n < 1 {
		fmt.Fprintln(os.Stderr, "usage: statloop [-rounds R] [-n N] [-missing] PATH ROOT")
		os.Exit(2)
	}
	native := flag.Arg(0)
	viaRoot := filepath.Join(flag.Arg(1), native)
	for _, p := range []string{native, viaRoot} {
		if err := check(p, *missing); err != nil {
			fmt.Fprintln(os.Stderr, "statloop:", err)
			os.Exit(1)
		}
	}
	var a, b []float64
	for range *rounds {
		a = append(a, timeStats(native, *n))
		b = append(b, timeStats(viaRoot, *n))
	}
	ma, mb := median(a), median(b)
	fmt.Printf("native_ns_per_stat=%.0f mount_ns_per_stat=%.0f ratio=%.2f rounds=%d n=%d\n", ma, mb, mb/ma, *rounds, *n)
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
