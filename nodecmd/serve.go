package nodecmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/hpc-copper/copper/book"
	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/secret"
	"github.com/hpc-copper/copper/logging"
	cnet "github.com/hpc-copper/copper/net"
	"github.com/hpc-copper/copper/rank"
	"github.com/hpc-copper/copper/service"
	"github.com/hpc-copper/copper/tree"
)

// daemonEnv marks the re-executed daemon; its fd 3 is the pipe on which it
// reports "ready" or "error: ..." to the process that started it.
const daemonEnv = "COPPER_NODE_DAEMON"

type serveArgs struct {
	settings    config.Settings
	site        string
	bookPath    string
	rank        int
	tokenFile   string
	foreground  bool
	jobDir      string
	stopTimeout time.Duration
	cpuProfile  string
}

func parseServe(args []string) (serveArgs, error) {
	a := serveArgs{site: siteArg(args)}
	s, err := config.Load(a.site)
	if err != nil {
		return a, err
	}
	fs := serveFlags(&a, &s)
	if err := fs.Parse(args); err != nil {
		return a, err
	}
	if fs.NArg() > 0 {
		return a, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := s.Finish(); err != nil {
		return a, err
	}
	if err := s.Validate(); err != nil {
		return a, err
	}
	if a.bookPath == "" || a.rank < 0 {
		return a, errors.New("--book and --rank are required (copper-launch passes them)")
	}
	// Checked before daemonizing, so the error reaches the caller's stderr.
	if a.tokenFile == "" {
		return a, errors.New("--token-file is required: peers authenticate with the job token (copper-launch writes one)")
	}
	a.settings = s
	return a, nil
}

// serveFlags defines serve's flags, bound to a and s, with s's values as
// the defaults of the settings flags.
func serveFlags(a *serveArgs, s *config.Settings) *pflag.FlagSet {
	fs := pflag.NewFlagSet("copper-node serve", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVar(&a.site, "site", a.site, "site name (local, aurora, frontier) or TOML file")
	fs.StringVar(&a.bookPath, "book", "", "the job's address map: one 'hostname host:port' line per rank, rank order (required; copper-launch writes it)")
	fs.IntVar(&a.rank, "rank", -1, "this node's rank: its line in the address book (required)")
	fs.StringVar(&a.tokenFile, "token-file", "", "file holding the job token peers authenticate with (mode 0600, at least 16 bytes; required; copper-launch writes it)")
	fs.BoolVar(&a.foreground, "foreground", false, "stay attached instead of daemonizing")
	fs.StringVar(&a.jobDir, "job-dir", "", "job output directory (default <log_dir>/<job_id>)")
	fs.DurationVar(&a.stopTimeout, "stop-timeout", 30*time.Second, "how long a stop waits for in-flight requests")
	fs.StringVar(&a.cpuProfile, "cpu-profile", "", "write a Go CPU profile (go tool pprof) of the serving node to FILE until it stops; {rank} and {pid} are replaced; empty: $"+cpuProfileEnv+", else off")
	s.RegisterFlags(fs)
	return fs
}

// siteArg finds --site before flags are registered: the site's file gives
// the flags their defaults.
func siteArg(args []string) string {
	for i, arg := range args {
		if v, ok := strings.CutPrefix(arg, "--site="); ok {
			return v
		}
		if arg == "--site" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func serve(args []string) int {
	a, err := parseServe(args)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-node: %v\n", err)
		return 2
	}
	var report io.WriteCloser
	if os.Getenv(daemonEnv) == "1" {
		report = os.NewFile(3, "ready-pipe")
	}
	// The mount's claim comes first: a mount that another node serves is
	// refused before this one daemonizes, listens or logs anything.
	lock, err := claimMount(a)
	if err != nil {
		if report != nil {
			fmt.Fprintln(report, "error: "+err.Error())
			report.Close()
		}
		fmt.Fprintf(os.Stderr, "copper-node rank %d: %v\n", a.rank, err)
		return 1
	}
	defer lock.Close() // after the node has stopped and unmounted
	if report == nil { // not the daemon, whose starter has done it
		// A start-failure record an earlier start left is not this start's.
		if err := clearFailure(a); err != nil {
			fmt.Fprintf(os.Stderr, "copper-node rank %d: %v\n", a.rank, err)
			return 1
		}
	}
	if !a.foreground && report == nil {
		return daemonize(a, lock)
	}
	if err := serveNode(a, report, lock); err != nil {
		fmt.Fprintf(os.Stderr, "copper-node rank %d: %v\n", a.rank, err)
		if !errors.Is(err, errStopped) {
			logs := []string{a.logFile()}
			if report != nil {
				logs = append(logs, a.daemonStderrPath())
			}
			recordFailure(a, os.Getpid(), err, logs)
		}
		return 1
	}
	return 0
}

// errStopped marks a failure after the node was ready: not a failed start.
var errStopped = errors.New("node stopped with an error")

// recordFailure leaves the mount's start-failure record, so that a wait
// for it returns at once naming the reason and the logs (those of logs
// that exist).
func recordFailure(a serveArgs, pid int, cause error, logs []string) {
	s, err := a.expanded()
	if err != nil {
		return
	}
	host, _ := os.Hostname()
	err = control.WriteStartFailure(control.StartFailure{Mount: s.Mount, JobID: a.jobID(s), Rank: a.rank,
		Host: rank.ShortHost(host), By: "copper-node", PID: pid, Error: cause.Error(), Logs: logs})
	if err != nil {
		fmt.Fprintf(os.Stderr, "copper-node rank %d: could not leave the start-failure record for wait: %v\n", a.rank, err)
	}
}

func clearFailure(a serveArgs) error {
	s, err := a.expanded()
	if err != nil {
		return err
	}
	return control.ClearStartFailure(s.Mount)
}

// expanded returns the settings for this rank, for paths the main needs
// before the service starts (logs, mount).
func (a serveArgs) expanded() (config.Settings, error) {
	s := a.settings
	if err := s.Expand(a.rank); err != nil {
		return s, err
	}
	return s, nil
}

func (a serveArgs) jobDirectory(s config.Settings) string {
	if a.jobDir != "" {
		return a.jobDir
	}
	id := a.jobID(s)
	if id == "" {
		id = "local"
	}
	return filepath.Join(s.LogDir, id)
}

// jobID is the node's job: --job-id, else the batch system's.
func (a serveArgs) jobID(s config.Settings) string {
	if s.JobID != "" {
		return s.JobID
	}
	return rank.JobID(os.Getenv)
}

// logFile is this process's log file (log_type file, or a daemon's).
func (a serveArgs) logFile() string {
	s, err := a.expanded()
	if err != nil {
		return ""
	}
	return a.logFileOf(s, os.Getpid())
}

func (a serveArgs) logFileOf(s config.Settings, pid int) string {
	host, _ := os.Hostname()
	return filepath.Join(a.jobDirectory(s), "logs", fmt.Sprintf("%s-%d-output.log", rank.ShortHost(host), pid))
}

// claimMount takes the mount's lock, or adopts the one handed down by
// copper-launch or by the waiting half of this program.
func claimMount(a serveArgs) (*control.Lock, error) {
	s, err := a.expanded()
	if err != nil {
		return nil, err
	}
	l, inherited, err := control.LockFromEnv(s.Mount)
	if err != nil || inherited {
		return l, err
	}
	return control.LockMount(s.Mount)
}

// serveNode runs the node in this process until it is stopped, writing
// "ready" or "error: ..." to report (a daemon's parent waits on it).
func serveNode(a serveArgs, report io.WriteCloser, lock *control.Lock) (err error) {
	started := time.Now()
	say := func(msg string) {
		if report != nil {
			fmt.Fprintln(report, msg)
		}
	}
	defer func() {
		if err != nil {
			say("error: " + err.Error())
		}
		if report != nil {
			report.Close()
		}
	}()

	s, err := a.expanded()
	if err != nil {
		return err
	}
	// This process serves the mount: those who find it taken are told so.
	if err := lock.Claim(); err != nil {
		return err
	}
	log, logFile, closeLog, err := openLog(a, s, report != nil)
	if err != nil {
		return err
	}
	defer closeLog()
	if err := limitMemory(s, log); err != nil {
		return err
	}
	entries, token, err := a.identity()
	if err != nil {
		return err
	}

	stopProfile, err := startCPUProfile(a.cpuProfile, a.rank, log)
	if err != nil {
		return err
	}
	defer stopProfile() // after the service has stopped

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	svc, err := service.Start(ctx, a.settings, service.Identity{Rank: a.rank, Book: entries, Token: token},
		service.Options{Mount: true, Control: true, Logger: log, Started: started, JobDir: a.jobDirectory(s)})
	if err != nil {
		logging.Fatal(log, "startup failed", "err", err)
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), a.stopTimeout)
		defer scancel()
		if serr := svc.Stop(sctx); serr != nil {
			log.Error("stop", "err", serr)
			err = errors.Join(err, fmt.Errorf("%w: %w", errStopped, serr))
		}
	}()

	say(fmt.Sprintf("ready rank=%d mount=%s tree_ready_ms=%d pid=%d log=%s",
		a.rank, s.Mount, time.Since(started).Milliseconds(), os.Getpid(), logFile))
	if report != nil {
		report.Close()
		report = nil
	}
	select {
	case <-ctx.Done():
		log.Info("signal received, stopping")
	case <-svc.StopRequested():
		log.Info("stop requested, stopping")
	}
	return nil
}

// openLog opens this node's log, <job dir>/logs/<host>-<pid>-output.log
// when written to a file; a daemon always writes there (its stdout is gone).
func openLog(a serveArgs, s config.Settings, daemon bool) (log *slog.Logger, path string, closeLog func() error, err error) {
	path = a.logFileOf(s, os.Getpid())
	logType := s.LogType
	if daemon && logType != "file" {
		logType = "file"
	}
	log, closeLog, err = logging.New(logging.Options{Level: s.LogLevel, Type: logType, File: path})
	return log, path, closeLog, err
}

// identity reads the address book and the job token and checks that the
// rank is in the book.
func (a serveArgs) identity() ([]tree.Entry, []byte, error) {
	entries, err := book.Read(a.bookPath)
	if err != nil {
		return nil, nil, err
	}
	if a.rank >= len(entries) {
		return nil, nil, fmt.Errorf("rank %d outside address book %s (%d ranks)", a.rank, a.bookPath, len(entries))
	}
	token, err := readToken(a.tokenFile)
	if err != nil {
		return nil, nil, err
	}
	return entries, token, nil
}

// limitMemory sets the Go memory limit from the cache budget unless
// GOMEMLIMIT is set. The budget bounds the cache's bytes, not the process:
// without a limit the GC lets the heap grow to twice the live heap
// (GOGC=100), so a node whose full cache keeps turning over settled at
// 2.5-3x its budget (docs/BENCHMARKS.md, Memory). With the limit the GC
// collects before that; below it GOGC still paces a small heap. The limit
// is soft: a live heap above it costs GC time, never a failure.
func limitMemory(s config.Settings, log *slog.Logger) error {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("go memory limit from GOMEMLIMIT", "GOMEMLIMIT", v)
		return nil
	}
	budget, err := s.CacheBudget()
	if err != nil {
		return err
	}
	limit := memoryLimit(budget)
	debug.SetMemoryLimit(limit)
	log.Info("go memory limit", "bytes", limit, "cache_budget_bytes", budget)
	return nil
}

// memoryLimit is the budget plus room for what is not cached: an eighth
// for allocation rounding and entries in flight, and a fixed part for
// go-fuse's and netpoll's buffers, requests in flight and the runtime
// (about 20-25 MiB measured on a leaf; docs/BENCHMARKS.md, Memory).
func memoryLimit(budget int64) int64 {
	const fixed = 28 << 20
	if budget > (math.MaxInt64-fixed)/9*8 {
		return math.MaxInt64
	}
	return budget + budget/8 + fixed
}

// readToken reads the job token: a regular file of this user's that no
// one else may read, holding at least cnet.MinTokenLen bytes once
// surrounding white space is trimmed.
func readToken(path string) ([]byte, error) {
	b, err := secret.Read(path, "token file", maxTokenFile, "want 0600 (chmod 600 "+path+")")
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < cnet.MinTokenLen {
		return nil, fmt.Errorf("token file %s: token of %d bytes, want at least %d", path, len(b), cnet.MinTokenLen)
	}
	return b, nil
}

// maxTokenFile bounds what is read from a token file: a token is tens of
// bytes, and a path pointed at something large must not be slurped.
const maxTokenFile = 4096
