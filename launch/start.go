package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-copper/copper/backend"
	"github.com/hpc-copper/copper/config"
	ctl "github.com/hpc-copper/copper/control"
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
		if lock, err = claimForStart(s.Mount); err != nil {
			return fail(env.Stderr, id.Rank, err)
		}
		defer lock.Close() // the node holds its own copy once started
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
		printDryRun(env, c, p, nodeBin)
		return exitOK
	}
	files, args, err := writeNodeFiles(c, p)
	if err != nil {
		return failed(err)
	}
	closeInheritedFiles()
	if err := pinThread(p.cores); err != nil {
		files.Remove()
		return failed(err)
	}
	if len(p.cores) > 0 {
		log.Info("copper-launch: pinned", "service_cores", formatCPUs(p.cores))
	}
	if c.Foreground {
		err := execForeground(nodeBin, args, p, lock)
		files.Remove()
		return failed(err)
	}
	code := execNode(ctx, nodeBin, args, p, lock, env, log)
	files.Remove() // read by the node before it reported ready (or failed)
	if code != exitOK {
		recordUnnamedFailure(ctx, p.mount, jobID, id.Rank, env.Hostname, nodeBin, code, log)
	}
	return code
}

// claimForStart claims mount for this start and clears the start-failure
// record an earlier start left: it is not this start's.
func claimForStart(mount string) (*ctl.Lock, error) {
	lock, err := claimMount(mount)
	if err != nil {
		return nil, err
	}
	if err := ctl.ClearStartFailure(mount); err != nil {
		lock.Close()
		return nil, err
	}
	return lock, nil
}

// printDryRun shows what a start would run: at rank 0 the address map,
// and every rank's copper-node command line.
func printDryRun(env Env, c Command, p plan, nodeBin string) {
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
}

// recordUnnamedFailure records a failed start that left no record:
// copper-node records the failures it can name (with its log); one that
// left none (a crash before it knew its mount, a bad command line, an
// interrupted start) is recorded here.
func recordUnnamedFailure(ctx context.Context, mount, jobID string, r int, host, nodeBin string, code int, log *slog.Logger) {
	if _, ok, _ := ctl.ReadStartFailure(mount); ok {
		return
	}
	why := fmt.Errorf("the node did not start (%s, status %d): its reason is in the output of the step that ran copper-launch", nodeBin, code)
	if ctx.Err() != nil {
		why = fmt.Errorf("interrupted before the node was ready: %v", context.Cause(ctx))
	}
	recordFailure(mount, jobID, r, host, why, log)
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

	nodes, nodeSource, nodesErr := nodeList(c, env, log)
	p.prov.nodes, p.prov.nodeSource = unique(nodes), nodeSource

	jobID, err := presetJobID(s.JobID, env.Getenv)
	if err != nil {
		return p, err
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
		if err := p.readBook(c, s, env, nodes, nodeSource, nodesErr, jobID, log); err != nil {
			return p, err
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

// nodeList is the job's node list: this host repeated for --local, else
// what the resource manager (or --nodefile) names. Its error is kept, not
// returned: only some address book sources need the list.
func nodeList(c Command, env Env, log *slog.Logger) (nodes []string, source string, err error) {
	if c.Local > 0 {
		nodes, source = repeat(env.Hostname, c.Local), "--local"
	} else {
		nodes, source, err = rank.NodesFromEnv(env.Getenv, c.Nodefile)
	}
	if err == nil {
		log.Info("copper-launch: node list", "nodes", len(nodes), "source", source)
	} else {
		log.Debug("copper-launch: no node list", "err", err)
	}
	return nodes, source, err
}

// presetJobID is the job id known before any all-gather: --job-id, else
// the environment's; "" when neither names one. It becomes a directory
// name, so it must be one.
func presetJobID(flag string, getenv func(string) string) (string, error) {
	jobID := flag
	if jobID == "" {
		jobID = rank.JobID(getenv)
	}
	if jobID != "" && (strings.ContainsAny(jobID, "/\x00") || jobID == "." || jobID == "..") {
		return "", fmt.Errorf("job id %q from the environment is not a directory name: pass --job-id", jobID)
	}
	return jobID, nil
}

// readBook builds the map from a facility or prepared address book and
// finds the peer token: the book's own token file, else key_file's. s is
// c.Settings expanded for this rank.
func (p *plan) readBook(c Command, s config.Settings, env Env, nodes []string, nodeSource string, nodesErr error, jobID string, log *slog.Logger) error {
	src := s.AddressBookSource
	if c.Local > 0 && src == "facility" {
		return errors.New("--local runs every rank on this host, which a facility book lists once: use address_book_source discover or prepared")
	}
	if jobID == "" {
		return fmt.Errorf("address_book_source %s has no all-gather to agree on a job id: pass --job-id, set COPPER_JOB_ID, or run under PBS or Slurm", src)
	}
	p.jobID = jobID
	var err error
	if src == "facility" {
		if nodesErr != nil {
			return nodesErr
		}
		p.entries, err = facilityMap(s.AddressBook, nodes, p.size)
		p.prov.detail = append(p.prov.detail, fmt.Sprintf("facility book %s filtered to %d hosts of %s", s.AddressBook, len(nodes), nodeSource))
	} else {
		p.entries, err = preparedMap(s.AddressBook, p.size)
		p.prov.detail = append(p.prov.detail, "prepared book "+s.AddressBook+" read as is")
	}
	if err != nil {
		return err
	}
	if err := checkOwnEntry(p.entries, p.rank, env.Hostname, hostIPs); err != nil {
		return err
	}
	tokenFile, ok, err := bookToken(s.AddressBook)
	if err != nil {
		return err
	}
	switch {
	case ok:
		p.tokenFile = tokenFile
	case c.DryRun: // writes nothing, so it does not create the key either
		p.token = []byte("<derived from key_file>")
	default:
		key, err := jobKey(s.KeyFile, log)
		if err != nil {
			return err
		}
		p.token = PeerToken(key, p.jobID)
		log.Info("copper-launch: no token file beside the address book; peers authenticate with the token derived from key_file",
			"looked_for", s.AddressBook+".token", "key_file", s.KeyFile)
	}
	return nil
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
