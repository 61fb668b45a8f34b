// Command slowpfs mounts client views of an emulated slow parallel
// filesystem over a local directory (see package bench/slowpfs):
//
//	slowpfs --backing DIR --mount-base DIR --clients K [--control SOCK] [model flags]
//
// mounts DIR/0 ... DIR/K-1, each a separate client with its own kernel
// cache, all sharing one server model and one set of counters. It prints
// "slowpfs: ready clients=K" once every client is mounted and serves until
// SIGTERM or SIGINT, then unmounts them all (lazily when busy). Counters:
// `slowpfs stats --control SOCK` (or reset), or SIGUSR1 writes them to
// --stats-file (stderr when unset); they are written there at exit too.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/bench/slowpfs"
	"github.com/hpc-copper/copper/internal/osutil"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == slowpfs.CmdStats || args[0] == slowpfs.CmdReset) {
		return query(args[0], args[1:], stdout, stderr)
	}
	err := serve(args, stdout, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "slowpfs: %v\n", err)
		return 1
	}
	return 0
}

func query(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("slowpfs "+cmd, pflag.ContinueOnError)
	sock := fs.String("control", "", "control socket of the running slowpfs (required)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *sock == "" {
		fmt.Fprintln(stderr, "slowpfs: --control is required")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	snap, err := slowpfs.Query(ctx, *sock, cmd)
	if err != nil {
		fmt.Fprintf(stderr, "slowpfs: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(snap); err != nil {
		fmt.Fprintf(stderr, "slowpfs: %v\n", err)
		return 1
	}
	return 0
}

type serveFlags struct {
	backing, mountBase, control, statsFile string
	clients                                int
	params                                 slowpfs.Params
	bandwidth                              string
	cache                                  time.Duration
	debug                                  bool
}

func parseServe(args []string) (serveFlags, error) {
	f := serveFlags{params: slowpfs.DefaultParams()}
	fs := pflag.NewFlagSet("slowpfs", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVar(&f.backing, "backing", "", "directory served at every client's root (required)")
	fs.StringVar(&f.mountBase, "mount-base", "", "clients mount at <mount-base>/0 ... /<clients-1> (required)")
	fs.IntVar(&f.clients, "clients", 1, "number of client mounts, each with its own kernel cache")
	fs.StringVar(&f.control, "control", "", "unix socket answering 'stats' and 'reset' (optional)")
	fs.StringVar(&f.statsFile, "stats-file", "", "where SIGUSR1 and exit write the counters as JSON (default stderr)")
	fs.DurationVar(&f.params.MetadataService, "metadata-service", f.params.MetadataService, "service time of one metadata operation")
	fs.IntVar(&f.params.Slots, "slots", f.params.Slots, "metadata operations served at once")
	fs.StringVar(&f.bandwidth, "bandwidth", "1GiB", "data bandwidth shared by all clients, bytes per second (suffixes KiB, MiB, GiB)")
	fs.IntVar(&f.params.DirEntriesPerOp, "dir-entries-per-op", f.params.DirEntriesPerOp, "directory entries one readdir operation returns")
	fs.DurationVar(&f.cache, "client-cache", time.Hour, "how long each client's kernel keeps entries, attributes and pages; 0 = no client cache")
	fs.BoolVar(&f.debug, "debug", false, "trace FUSE requests on stderr")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.backing == "" || f.mountBase == "" {
		return f, errors.New("--backing and --mount-base are required")
	}
	if f.clients < 1 || f.clients > 1024 {
		return f, fmt.Errorf("--clients %d outside [1, 1024]", f.clients)
	}
	bw, err := parseBytes(f.bandwidth)
	if err != nil {
		return f, fmt.Errorf("--bandwidth: %w", err)
	}
	f.params.Bandwidth = bw
	return f, f.params.Validate()
}

// parseBytes reads "1GiB", "512MiB", "64KiB" or a plain byte count.
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a positive byte count", s)
	}
	return int64(v * float64(mult)), nil
}

func serve(args []string, stdout, stderr io.Writer) (err error) {
	f, err := parseServe(args)
	if err != nil {
		return err
	}
	emu, err := slowpfs.New(slowpfs.Config{Backing: f.backing, Params: f.params})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, emu.Close()) }()

	for i := range f.clients {
		dir := filepath.Join(f.mountBase, strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		if _, err := emu.Mount(dir, slowpfs.ClientOptions{CacheTimeout: f.cache, Debug: f.debug}); err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
	}
	if f.control != "" {
		ctl, err := slowpfs.ListenControl(f.control, emu)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, ctl.Close()) }()
	}
	p := f.params
	fmt.Fprintf(stdout, "slowpfs: ready clients=%d backing=%s metadata_service=%v slots=%d bandwidth=%d pid=%d\n",
		f.clients, emu.Backing(), p.MetadataService, p.Slots, p.Bandwidth, os.Getpid())

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	for sig := range sigs {
		if sig == syscall.SIGUSR1 {
			if err := writeStats(f.statsFile, emu.Snapshot(), stderr); err != nil {
				fmt.Fprintf(stderr, "slowpfs: %v\n", err)
			}
			continue
		}
		break
	}
	return writeStats(f.statsFile, emu.Snapshot(), stderr)
}

func writeStats(path string, snap slowpfs.Snapshot, stderr io.Writer) error {
	b, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "" {
		_, err = stderr.Write(b)
		return err
	}
	if err := osutil.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("stats file: %w", err)
	}
	return nil
}
