package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/backend"
	ctl "github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/rank"
	"github.com/hpc-copper/copper/tree"
)

// plan is everything one rank resolved before starting its node.
type plan struct {
	rank, size int
	jobID      string
	jobDir     string // "" when log_dir is empty: no job records
	entries    []tree.Entry
	token      []byte // the peer token derived from key_file, unless tokenFile is set
	tokenFile  string // prepared/facility: <book>.token, the site's secret, if there is one
	prov       provenance
	hold       *portHold   // discover with port 0: the reserved port
	pmi        *pmiSession // the PMI connection identity opened, if it did
	cores      []int
	mount      string // expanded, for messages and cleanup
}

// startRank is one rank of `copper-launch start`.
func startRank(ctx context.Context, c Command, env Env, log *slog.Logger) int {
	id, early, err := identityOrPMI(ctx, c, env.Getenv, log)
	if err != nil {
		return fail(env.Stderr, -1, fmt.Errorf("%w (or pass --rank R --size N, or --local N for ranks on this host)", err))
	}
	defer early.finish(log) // resolve finishes it on its way; this covers the errors before
	log = log.With("rank", id.Rank)
	log.Info("copper-launch: identity", "size", id.Size, "source", id.Source)
	// Found before the all-gather: a rank that fails after it leaves the
	// others serving a tree with a hole.
	nodeBin, err := findNode(env.Self)
	if err != nil {
		return fail(env.Stderr, id.Rank, err)
	}
	// The target and the mount are checked, and the mount claimed, before
	// the all-gather and before any file is written: a rank that cannot
	// start must not have touched anything, least of all another job's
	// node serving the same mount.
	s := c.Settings
	if err := s.Expand(id.Rank); err != nil {
		return fail(env.Stderr, id.Rank, err)
	}
	// From here a failure also leaves a start-failure record, so that a
	// `copper-launch wait` for this mount (the Slurm scripts run one beside
	// a --foreground start) returns at once with the reason.
	jobID := jobIDOf(c, env.Getenv)
	failed := func(err error) int {
		if !c.DryRun {
			recordFailure(s.Mount, jobID, id.Rank, env.Hostname, err, log)
		}
		return fail(env.Stderr, id.Rank, err)
	}
	if err := backend.CheckTarget(s.Target); err != nil {
		return failed(err)
	}
	var lock *ctl.Lock
	if !c.DryRun {
		// Not recorded: the mount is another start's, and so is its record.
		if lock, err = claimMount(s.Mount); err != nil {
			return fail(env.Stderr, id.Rank, err)
		}
		defer lock.Close() // the node holds its own copy once started
		// A record an earlier start left is not this start's.
		if err := ctl.ClearStartFailure(s.Mount); err != nil {
			return fail(env.Stderr, id.Rank, err)
		}
	}
	p, err := resolve(ctx, c, env, id, early, log)
	defer p.hold.Release()
	if p.jobID != "" {
		jobID = p.jobID
	}
	if err != nil {
		return failed(err)
	}
	if c.DryRun {
		shown := privateFiles{Book: "<book>", Token: p.tokenFile}
		if len(p.token) > 0 {
			shown.Token = "<token>"
		}
		args := nodeArgs(c, p, shown)
		if p.rank == 0 {
			fmt.Fprintf(env.Stdout, "# address map, job %s (%s)\n", p.jobID, p.prov.source)
			for r, e := range p.entries {
				fmt.Fprintf(env.Stdout, "# %d %s %s\n", r, e.Host, e.Endpoint)
			}
		}
		fmt.Fprintf(env.Stdout, "rank %d: %s %s\n", p.rank, nodeBin, strings.Join(args, " "))
		return exitOK
	}
	if err := writeJobFiles(p); err != nil {
		return failed(err)
	}
	files, err := writePrivate(p.jobID, p.rank, p.entries, p.token)
	if err != nil {
		return failed(err)
	}
	tokenArg := files.Token // a discover token; "" otherwise
	if p.tokenFile != "" {
		tokenArg = p.tokenFile // beside a prepared book: not ours to remove
	}
	args := nodeArgs(c, p, privateFiles{Book: files.Book, Token: tokenArg})
	closeInheritedFiles()
	if err := pinThread(p.cores); err != nil {
		files.Remove()
		return failed(err)
	}
	if len(p.cores) > 0 {
		log.Info("copper-launch: pinned", "service_cores", formatCPUs(p.cores))
	}
	if c.Foreground {
		// The book and token stay in the private runtime directory: the
		// node reads them after this process is gone.
		p.hold.Release()
		argv := append([]string{nodeBin}, args...)
		// The lock's descriptor survives the exec: this pid goes on
		// holding the mount as copper-node.
		fd := int(lock.File().Fd())
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			files.Remove()
			return failed(fmt.Errorf("mount %s: keeping its lock across exec: %w", p.mount, err))
		}
		// From the exec on, copper-node records its own failure.
		err := syscall.Exec(nodeBin, argv, ctl.WithLockFD(os.Environ(), fd))
		files.Remove()
		return failed(fmt.Errorf("exec %s: %w", nodeBin, err))
	}
	code := execNode(ctx, nodeBin, args, p, lock, env, log)
	files.Remove() // read by the node before it reported ready (or failed)
	if code != exitOK {
		// copper-node records the failures it can name (with its log); one
		// that left no record (a crash before it knew its mount, a bad
		// command line, an interrupted start) is recorded here.
		if _, ok, _ := ctl.ReadStartFailure(p.mount); !ok {
			why := fmt.Errorf("the node did not start (%s, status %d): its reason is in the output of the step that ran copper-launch", nodeBin, code)
			if ctx.Err() != nil {
				why = fmt.Errorf("interrupted before the node was ready: %v", context.Cause(ctx))
			}
			recordFailure(p.mount, jobID, id.Rank, env.Hostname, why, log)
		}
	}
	return code
}

// recordFailure leaves mount's start-failure record for `wait`. Failing
// to write it is only logged: the start has failed already, and says why.
func recordFailure(mount, jobID string, r int, host string, cause error, log *slog.Logger) {
	err := ctl.WriteStartFailure(ctl.StartFailure{Mount: mount, JobID: jobID, Rank: r, Host: host,
		By: "copper-launch", PID: os.Getpid(), Error: strings.TrimSpace(cause.Error())})
	if err != nil {
		log.Warn("copper-launch: could not leave the start-failure record for wait", "mount", mount, "err", err)
	}
}

// resolve does everything up to starting the node: settings, node list,
// job id, address map, job directory and cores.
//
// early, when set, is the PMI connection identity opened; it is finished
// here, before copper-node starts.
func resolve(ctx context.Context, c Command, env Env, id rank.Identity, early *pmiSession, log *slog.Logger) (plan, error) {
	defer early.finish(log)
	p := plan{rank: id.Rank, size: id.Size, pmi: early}
	s := c.Settings
	if err := s.Expand(id.Rank); err != nil {
		return p, err
	}
	p.mount = s.Mount

	var nodes []string
	var nodeSource string
	var nodesErr error
	if c.Local > 0 {
		nodes, nodeSource = repeat(env.Hostname, c.Local), "--local"
	} else {
		nodes, nodeSource, nodesErr = rank.NodesFromEnv(env.Getenv, c.Nodefile)
	}
	if nodesErr == nil {
		log.Info("copper-launch: node list", "nodes", len(nodes), "source", nodeSource)
	} else {
		log.Debug("copper-launch: no node list", "err", nodesErr)
	}
	p.prov.nodes, p.prov.nodeSource = unique(nodes), nodeSource

	jobID := s.JobID
	if jobID == "" {
		jobID = rank.JobID(env.Getenv)
	}
	if jobID != "" && (strings.ContainsAny(jobID, "/\x00") || jobID == "." || jobID == "..") {
		return p, fmt.Errorf("job id %q from the environment is not a directory name: pass --job-id", jobID)
	}

	cores, skipped, err := planCores(s.ServiceCores)
	if err != nil {
		return p, err
	}
	if len(skipped) > 0 {
		log.Warn("copper-launch: service_cores not available on this node, skipped", "skipped", formatCPUs(skipped), "using", formatCPUs(cores))
	}
	p.cores = cores

	src := s.AddressBookSource
	p.prov.source = src
	switch src {
	case "discover":
		key, err := jobKey(s.KeyFile, log)
		if err != nil {
			return p, err
		}
		if err := p.discover(ctx, c, env, s.Interface, s.Port, s.BootstrapPort, s.BootstrapTimeout(), nodes, nodesErr, jobID, key, log); err != nil {
			return p, err
		}
		p.token = PeerToken(key, p.jobID)
	case "facility", "prepared":
		if c.Local > 0 && src == "facility" {
			return p, errors.New("--local runs every rank on this host, which a facility book lists once: use address_book_source discover or prepared")
		}
		if jobID == "" {
			return p, fmt.Errorf("address_book_source %s has no all-gather to agree on a job id: pass --job-id, set COPPER_JOB_ID, or run under PBS or Slurm", src)
		}
		p.jobID = jobID
		if src == "facility" {
			if nodesErr != nil {
				return p, nodesErr
			}
			p.entries, err = facilityMap(s.AddressBook, nodes, id.Size)
			p.prov.detail = append(p.prov.detail, fmt.Sprintf("facility book %s filtered to %d hosts of %s", s.AddressBook, len(nodes), nodeSource))
		} else {
			p.entries, err = preparedMap(s.AddressBook, id.Size)
			p.prov.detail = append(p.prov.detail, "prepared book "+s.AddressBook+" read as is")
		}
		if err != nil {
			return p, err
		}
		if err := checkOwnEntry(p.entries, id.Rank, env.Hostname, hostIPs); err != nil {
			return p, err
		}
		tokenFile, ok, err := bookToken(s.AddressBook)
		if err != nil {
			return p, err
		}
		switch {
		case ok:
			p.tokenFile = tokenFile
		case c.DryRun: // writes nothing, so it does not create the key either
			p.token = []byte("<derived from key_file>")
		default:
			key, err := jobKey(s.KeyFile, log)
			if err != nil {
				return p, err
			}
			p.token = PeerToken(key, p.jobID)
			log.Info("copper-launch: no token file beside the address book; peers authenticate with the token derived from key_file",
				"looked_for", s.AddressBook+".token", "key_file", s.KeyFile)
		}
	}
	p.prov.jobID = p.jobID
	if s.LogDir != "" {
		p.jobDir = filepath.Join(s.LogDir, p.jobID)
	} else {
		log.Warn("copper-launch: log_dir is empty; no job directory or records are written")
	}
	return p, nil
}

// discover builds the map through the all-gather.
func (p *plan) discover(ctx context.Context, c Command, env Env, iface string, port, bootstrapPort int,
	timeout time.Duration, nodes []string, nodesErr error, jobID string, key []byte, log *slog.Logger) error {
	ip, how, err := listenIP(ctx, iface, env.Hostname, c.Local > 0)
	if err != nil {
		return err
	}
	rv, err := findRendezvous(ctx, c, env, p.pmi, p.rank, p.size, ip, nodes, p.prov.nodeSource, nodesErr, bootstrapPort, timeout, log)
	if err != nil {
		return err
	}
	if rv.ln != nil {
		defer rv.ln.Close() // gather's Serve closes it too; this covers the errors before
	}
	if p.rank == 0 {
		if err := checkRankZeroHost(rv.addr, env.Hostname, rv.explicit); err != nil {
			return err
		}
	}
	if ip.IsLoopback() && c.Local == 0 && (len(unique(nodes)) > 1 || spansHosts(env.Getenv, p.size)) {
		log.Warn("copper-launch: this node's address is loopback; nodes on other hosts cannot reach it (set interface)", "from", how)
	}
	if port == 0 {
		if port, p.hold, err = reservePort(ip); err != nil {
			return err
		}
	}
	endpoint := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	log.Info("copper-launch: endpoint", "endpoint", endpoint, "from", how, "bootstrap", rv.addr, "bootstrap_from", rv.how)
	res, seen, err := gather(ctx, helloFor(p.rank, p.size, env.Hostname, endpoint, jobID, log), rv.addr, rv.ln, timeout, key, nodes, log)
	if err != nil {
		return err
	}
	if jobID != "" && res.JobID != jobID {
		log.Warn("copper-launch: rank 0 chose another job id", "mine", jobID, "job_id", res.JobID)
	}
	p.jobID, p.entries, p.prov.seen = res.JobID, res.Book, seen
	p.prov.detail = append(p.prov.detail, "all-gather at "+rv.addr+" (from "+rv.how+")")
	return nil
}

// jobKey loads key_file, creating it if missing.
func jobKey(path string, log *slog.Logger) ([]byte, error) {
	key, created, err := LoadOrCreateKey(path)
	if created {
		log.Info("copper-launch: created the job key", "key_file", path)
	}
	return key, err
}

// writeJobFiles creates the job directory and, at rank 0, the records.
func writeJobFiles(p plan) error {
	if p.jobDir == "" {
		return nil
	}
	if err := makeJobDir(p.jobDir); err != nil {
		return err
	}
	if p.rank != 0 {
		return nil
	}
	return writeRecords(p.jobDir, p.entries, p.prov)
}

// findNode locates copper-node beside copper-launch, else in PATH.
func findNode(self string) (string, error) {
	if self != "" {
		beside := filepath.Join(filepath.Dir(self), "copper-node")
		if fi, err := os.Stat(beside); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return beside, nil
		}
	}
	p, err := exec.LookPath("copper-node")
	if err != nil {
		return "", fmt.Errorf("copper-node is neither beside %s nor in PATH: %w", self, err)
	}
	return p, nil
}

// nodeArgs is copper-node's command line for this rank.
func nodeArgs(c Command, p plan, files privateFiles) []string {
	args := []string{"serve", "--book", files.Book, "--rank", strconv.Itoa(p.rank), "--job-id=" + p.jobID}
	if files.Token != "" {
		args = append(args, "--token-file", files.Token)
	}
	if p.jobDir != "" {
		args = append(args, "--job-dir", p.jobDir)
	}
	if c.Foreground {
		args = append(args, "--foreground")
	}
	return append(args, c.NodeSettingsFlags()...)
}

// execNode starts copper-node, which daemonizes and exits once its node is
// mounted and tree-ready (or failed), and returns its exit status.
func execNode(ctx context.Context, bin string, args []string, p plan, lock *ctl.Lock, env Env, log *slog.Logger) int {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
	// copper-node adopts the mount's lock as its fd 3 and hands it to its
	// daemon, which holds it until it exits.
	cmd.ExtraFiles = []*os.File{lock.File()}
	cmd.Env = ctl.WithLockFD(os.Environ(), 3)
	// Its own process group: a terminal's Ctrl-C reaches the launcher,
	// which winds the start down, instead of killing copper-node's waiting
	// half and leaving its daemon to finish starting unsupervised.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.hold.Release()
	if err := cmd.Start(); err != nil {
		return fail(env.Stderr, p.rank, fmt.Errorf("start %s: %w", bin, err))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-ctx.Done():
		log.Warn("copper-launch: interrupted; stopping the node being started", "cause", context.Cause(ctx))
		abandon(p.mount, cmd.Process.Pid, exited, log)
		return fail(env.Stderr, p.rank, fmt.Errorf("interrupted before the node was ready: %v", context.Cause(ctx)))
	}
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() > 0 {
			return exit.ExitCode()
		}
		return fail(env.Stderr, p.rank, fmt.Errorf("%s: %w", bin, err))
	}
	return exitOK
}

// abandonBound bounds winding down an interrupted start.
const abandonBound = 30 * time.Second

// abandon winds down a start that was interrupted. The daemon learns its
// pid only through its control socket (up before the mount), so it polls
// that and sends the daemon SIGTERM, which ends its wait for the tree and
// makes it unmount and exit; copper-node's waiting half then exits too.
// A node that became ready meanwhile is stopped through its socket.
func abandon(mount string, parent int, exited <-chan error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), abandonBound)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	signalled := false
	for {
		select {
		case err := <-exited:
			if err == nil { // it reported ready: stop it
				// This launch holds the mount's lock: whatever serves it is ours.
				if _, err := stopNode(ctx, mount, true); err != nil {
					log.Warn("copper-launch: stopping the node after the interruption", "mount", mount, "err", err)
				}
			}
			return
		case <-tick.C:
			if signalled {
				continue
			}
			// Only our daemon, a child of our copper-node (the lock we hold
			// already keeps other jobs' nodes off this mount).
			if pid, err := ctl.CallPID(ctx, mount, ctl.Request{Cmd: "stats"}, nil); err == nil && osutil.ParentOf(pid) == parent {
				signalled = syscall.Kill(pid, syscall.SIGTERM) == nil
			}
		case <-ctx.Done():
			log.Warn("copper-launch: the node being started did not wind down; it may still come up", "mount", mount, "bound", abandonBound)
			return
		}
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func unique(list []string) []string {
	seen := make(map[string]bool, len(list))
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
