package launch

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/config"
)

// Command is a parsed copper-launch command line.
type Command struct {
	Name string // start, wait, stop, stats or keygen
	Site string // --site as given ("" = local)

	// Settings are the site's settings with flags applied and Finish run,
	// not yet expanded: $VAR and {rank} are still in the paths, so they
	// can be passed on to copper-node, which expands them itself.
	Settings config.Settings
	// SiteSettings are the site's settings before flags: copper-node is
	// given --site plus only the keys whose value differs from these.
	SiteSettings config.Settings

	Rank, Size int // -1: from the launcher environment
	Local      int // --local N: N ranks on this host; 0 = off
	Nodefile   string
	Bootstrap  string // rank 0's all-gather address, host:port
	Foreground bool
	DryRun     bool
	JSON       bool          // stats --json
	Output     string        // stats --output DIR: one file per rank
	Prefetched bool          // wait --prefetched
	Timeout    time.Duration // wait and stop

	// Args is the command line as given (without the program name): a
	// --local parent passes it on to the ranks it starts.
	Args []string
	// Notes explain Copper 1.0 options that were accepted but do nothing.
	Notes []string
}

// commands lists the command words; start is the default.
var commands = []string{"start", "wait", "stop", "stats", "keygen"}

// Parse reads a copper-launch command line (without the program name).
// It returns pflag.ErrHelp, after writing the usage to help, for -h.
func Parse(args []string, help func(string)) (Command, error) {
	c := Command{Name: "start", Rank: -1, Size: -1, Args: args}
	if len(args) > 0 && isCommand(args[0]) {
		c.Name, args = args[0], args[1:]
	}
	c.Site = siteArg(args)
	site, err := config.Load(c.Site)
	if err != nil {
		return c, err
	}
	c.SiteSettings, c.Settings = site, site

	fs := c.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) && help != nil {
			help(Usage + "\nFlags:\n" + fs.FlagUsages())
		}
		return c, err
	}
	rest := fs.Args()
	if len(rest) > 0 && c.Name == "start" && isCommand(rest[0]) && !hasCommandWord(args) {
		c.Name, rest = rest[0], rest[1:] // "copper-launch --site x stop"
	}
	if len(rest) > 0 {
		return c, fmt.Errorf("unexpected argument %q (commands: %s)", rest[0], strings.Join(commands, ", "))
	}
	if err := c.check(fs); err != nil {
		return c, err
	}
	c.Notes = config.LegacyNotes(fs)
	if err := c.Settings.Finish(); err != nil {
		return c, err
	}
	return c, nil
}

// flagSet defines every copper-launch flag, bound to c, with c's settings
// as the defaults of the settings flags.
func (c *Command) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("copper-launch "+c.Name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(discard{})
	fs.StringVar(&c.Site, "site", c.Site, "site name (local, aurora, frontier) or TOML file; its values are the defaults of every flag below")
	fs.IntVar(&c.Rank, "rank", -1, "this node's rank (default: from the MPI or Slurm environment)")
	fs.IntVar(&c.Size, "size", -1, "number of ranks (default: from the MPI or Slurm environment)")
	fs.IntVar(&c.Local, "local", 0, "run N ranks on this host without MPI (with --rank: be rank R of such a job)")
	fs.StringVar(&c.Nodefile, "nodefile", "", "the job's node file, one host per line (default: PBS_NODEFILE or the Slurm node list)")
	fs.StringVar(&c.Bootstrap, "bootstrap", "", "discover mode: rank 0's all-gather address HOST:PORT (default: first node at bootstrap_port, else published through the launcher's PMI)")
	fs.BoolVar(&c.Foreground, "foreground", false, "start: replace this process with copper-node in the foreground (for srun ... &)")
	fs.BoolVar(&c.DryRun, "dry-run", false, "start: resolve identity, address map and cores, print the copper-node command, start nothing")
	fs.BoolVar(&c.JSON, "json", false, "stats: print JSON (one object per rank)")
	fs.StringVar(&c.Output, "output", "", "stats: write each rank's stats to its own file in DIR (copper-stats.rank<R>.json or .txt) instead of stdout")
	fs.BoolVar(&c.Prefetched, "prefetched", false, "wait: also wait until the node has finished its prefetch manifest")
	fs.DurationVar(&c.Timeout, "timeout", 2*time.Minute, "wait, stop, stats: give up after this long")
	c.Settings.RegisterFlags(fs)
	c.Settings.RegisterLegacyShortFlags(fs)
	return fs
}

// Flags returns copper-launch's flags with the built-in defaults, for its
// man page.
func Flags() (*pflag.FlagSet, error) {
	c := Command{Name: "start", Rank: -1, Size: -1}
	site, err := config.Load("")
	if err != nil {
		return nil, err
	}
	c.Settings = site
	return c.flagSet(), nil
}

// check rejects flag combinations that cannot mean anything.
func (c *Command) check(fs *pflag.FlagSet) error {
	only := map[string][]string{
		"foreground": {"start"}, "dry-run": {"start"}, "bootstrap": {"start"},
		"size": {"start"}, "nodefile": {"start"}, "json": {"stats"}, "output": {"stats"}, "prefetched": {"wait"},
		"timeout": {"wait", "stop", "stats"}, "rank": {"start", "wait", "stop", "stats"},
		"local": {"start", "wait", "stop", "stats"},
	}
	for flag, cmds := range only {
		if fs.Changed(flag) && !slices.Contains(cmds, c.Name) {
			return fmt.Errorf("--%s applies to %s, not %s", flag, strings.Join(cmds, ", "), c.Name)
		}
	}
	switch {
	case fs.Changed("local") && c.Local < 1:
		return fmt.Errorf("--local %d: must be at least 1 (the number of ranks to run on this host)", c.Local)
	case c.Local > 0 && fs.Changed("size") && c.Size != c.Local:
		return fmt.Errorf("--size %d contradicts --local %d", c.Size, c.Local)
	case c.Local > 0 && c.Rank >= c.Local:
		return fmt.Errorf("--rank %d is not below --local %d", c.Rank, c.Local)
	case fs.Changed("rank") && c.Rank < 0:
		return fmt.Errorf("--rank %d: want a rank ≥ 0", c.Rank)
	case c.Name == "start" && c.Local == 0 && fs.Changed("rank") != fs.Changed("size"):
		return errors.New("--rank and --size go together (or use --local N)")
	case c.Size == 0 || c.Size < -1:
		return fmt.Errorf("--size %d: want a number of ranks ≥ 1", c.Size)
	case c.Size > 0 && c.Rank >= c.Size:
		return fmt.Errorf("--rank %d is not below --size %d", c.Rank, c.Size)
	}
	if c.Local > 0 {
		c.Size = c.Local
	}
	if c.Bootstrap != "" {
		if _, _, err := splitHostPort(c.Bootstrap); err != nil {
			return fmt.Errorf("--bootstrap %q: %w", c.Bootstrap, err)
		}
	}
	return nil
}

// splitHostPort parses HOST:PORT with a port in 1..65535.
func splitHostPort(addr string) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: want 1..65535", portText)
	}
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	return host, port, nil
}

func isCommand(s string) bool { return slices.Contains(commands, s) }

// hasCommandWord reports whether a command word was given before the
// flags; then a second one is an error, not a command.
func hasCommandWord(args []string) bool { return len(args) > 0 && isCommand(args[0]) }

// siteArg finds --site before flags are registered: the site's file gives
// every other flag its default.
func siteArg(args []string) string {
	site := ""
	for i, arg := range args {
		if arg == "--" {
			break
		}
		if v, ok := strings.CutPrefix(arg, "--site="); ok {
			site = v
		} else if arg == "--site" && i+1 < len(args) {
			site = args[i+1]
		}
	}
	return site
}

// NodeSettingsFlags returns the copper-node flags that carry the settings
// of c: --site, then every key whose value differs from the site's.
// Values stay unexpanded; copper-node expands them for its rank. An empty
// service_cores cannot be written as a flag and is left out: it is a
// launcher key that copper-node does not use.
func (c *Command) NodeSettingsFlags() []string {
	site := c.Site
	if site == "" {
		site = "local"
	}
	out := []string{"--site=" + site}
	base := c.SiteSettings
	final := c.Settings
	baseFS := pflag.NewFlagSet("base", pflag.ContinueOnError)
	base.RegisterFlags(baseFS)
	finalFS := pflag.NewFlagSet("final", pflag.ContinueOnError)
	final.RegisterFlags(finalFS)
	finalFS.VisitAll(func(f *pflag.Flag) {
		if f.Name == "job-id" {
			return // the launcher passes the job's resolved id itself
		}
		v := f.Value.String()
		if b := baseFS.Lookup(f.Name); b != nil && b.Value.String() == v {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			items := sv.GetSlice()
			if len(items) == 0 {
				return
			}
			v = strings.Join(items, ",")
		}
		out = append(out, "--"+f.Name+"="+v)
	})
	return out
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Usage is copper-launch's help text.
const Usage = `copper-launch: start copper, one launcher per node of a job.

  mpiexec -n $NNODES -ppn 1 copper-launch [start] --site aurora [flags]
  srun -N $SLURM_NNODES --ntasks-per-node=1 copper-launch --site frontier --foreground &
      Start this node's copper-node. Rank and size come from the MPI or Slurm
      environment (or --rank R --size N). Without --foreground it returns 0
      once this node is mounted and tree-ready; a node is tree-ready only after
      its parent is, so when the MPI launch returns the whole tree can serve.
  copper-launch --local N [flags]
      Run N nodes on this host without MPI (mount must contain {rank}).
  copper-launch wait  [--site S] [--mount DIR] [--rank R | --local N] [--job-id ID] [--timeout D] [--prefetched]
  copper-launch stop  [--site S] [--mount DIR] [--rank R | --local N] [--timeout D]
  copper-launch stats [--site S] [--mount DIR] [--rank R | --local N] [--json] [--output DIR]
      Block until the node is tree-ready / stop it and unmount / show its
      cache. The mount is resolved as for start; {rank} needs --rank, the MPI
      environment, or --local N (all N ranks). wait returns at once, non-zero,
      with the reason and the logs that exist, when the start failed (a record
      of job ID, default the batch system's, or of no job). Under an MPI
      launcher, ranks' stdout can interleave mid-line (Open MPI forwards it
      in chunks): stats --output DIR writes one whole file per rank.
  copper-launch keygen [--site S] [--key-file F]
      Create the job key (key_file, default ~/.copper/key) if it does not
      exist, or check the one that does. start creates it too when missing.
  copper-launch --version   (or: version) version, commit and Go version

Addresses (address_book_source): discover gathers them at start (rank 0
serves the all-gather at --bootstrap, default first node:bootstrap_port);
facility picks the allocation's hosts from the site's book (-F); prepared
reads a job-local book as is. Copper 1.0's short options (-l -t -d -T -M -E
-P -N -A -I -s -b -F -a -n -v) are accepted.

Authentication: the all-gather and every peer connection are authenticated
with key_file (mode 0600, yours, at least 32 bytes, the same file on every
node of the job: keep it in a shared home, or let the site distribute it).
A prepared or facility book's <book>.token, if present, is the peer token
instead.

Job output: <log_dir>/<job_id>/{logs,tables,profiling}; rank 0 writes
logs/copper_address_book.txt, logs/copper_address_book_full_output.txt and
logs/node_file.txt.
`
