package launch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hpc-copper/copper/pmi"
	"github.com/hpc-copper/copper/rank"
)

// pmiBootstrapKey is the key rank 0 publishes its all-gather address
// under. The launcher's key-value space is the job's own (one per mpiexec
// or srun step), so the key needs no job id in it. The address is public;
// the job's secret stays in key_file.
const pmiBootstrapKey = "copper-bootstrap"

// rendezvous is how this rank reaches rank 0's all-gather.
type rendezvous struct {
	addr string
	// ln is rank 0's all-gather listener when it was bound here, before
	// its address was published (PMI); nil means gather binds addr.
	ln net.Listener
	// explicit: addr was given (--bootstrap) or published by rank 0
	// itself, so rank 0 need not check it names this host.
	explicit bool
	how      string // for the log and the provenance record
}

// findRendezvous decides where rank 0's all-gather is. In order:
// --bootstrap; the node list (node file, PBS_NODEFILE, Slurm's lists):
// its first node at bootstrap_port; the launcher's PMI key-value space
// (MPICH Hydra's mpiexec, srun --mpi=pmi2): rank 0 listens on an
// ephemeral port of its own address ip and publishes it. A node list that
// is named but unreadable is an error, not a reason to try PMI.
//
// early is the PMI connection opened to learn the rank, if one was; nil
// otherwise.
func findRendezvous(ctx context.Context, c Command, env Env, early *pmiSession, rk, size int, ip net.IP, nodes []string, nodeSource string,
	nodesErr error, bootstrapPort int, timeout time.Duration, log *slog.Logger) (rendezvous, error) {
	switch {
	case c.Bootstrap != "":
		return rendezvous{addr: c.Bootstrap, explicit: true, how: "--bootstrap"}, nil
	case len(nodes) > 0:
		if bootstrapPort == 0 {
			return rendezvous{}, fmt.Errorf("bootstrap_port is 0 and the node list (%s) gives only hosts: set bootstrap_port or pass --bootstrap HOST:PORT", nodeSource)
		}
		return rendezvous{addr: net.JoinHostPort(nodes[0], strconv.Itoa(bootstrapPort)), how: "first node of " + nodeSource}, nil
	case nodeSource != "":
		return rendezvous{}, nodesErr
	}
	ep, ok, err := pmi.EndpointFromEnv(env.Getenv)
	if err != nil {
		return rendezvous{}, fmt.Errorf("discover mode: the launcher's PMI variables: %w", err)
	}
	if !ok {
		return rendezvous{}, noRendezvous(env.Getenv, nodesErr)
	}
	return pmiRendezvous(ctx, ep, early, rk, size, ip, timeout, log)
}

// pmiRendezvous publishes (rank 0) or fetches (the others) rank 0's
// all-gather address through the launcher's PMI server (on early's
// connection when there is one), then finalizes. A connection it opened
// it also closes; early's is closed by its owner, before copper-node
// starts either way.
func pmiRendezvous(ctx context.Context, ep pmi.Endpoint, early *pmiSession, rk, size int, ip net.IP, timeout time.Duration, log *slog.Logger) (rv rendezvous, err error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout,
			fmt.Errorf("bootstrap_timeout_s (%s) passed before every rank reached the PMI barrier", timeout))
		defer cancel()
	}
	var client *pmi.Client
	if early != nil {
		client = early.client
	} else {
		if client, err = pmi.Dial(ctx, ep, pmi.Wire1); err != nil {
			return rendezvous{}, fmt.Errorf("rank 0's address through PMI: %w", err)
		}
		defer client.Close()
	}
	if err := checkPMIRank(client, ep, rk, size); err != nil {
		return rendezvous{}, err
	}
	rv = rendezvous{explicit: true, how: fmt.Sprintf("PMI (%s, %s, key %s)", ep.Source(), client.Wire(), pmiBootstrapKey)}
	if rk == 0 {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			return rendezvous{}, fmt.Errorf("rank 0: all-gather listener on %s: %w", ip, err)
		}
		defer func() {
			if err != nil {
				ln.Close()
			}
		}()
		rv.ln, rv.addr = ln, ln.Addr().String()
		if err := client.Put(ctx, pmiBootstrapKey, rv.addr); err != nil {
			return rendezvous{}, fmt.Errorf("rank 0: publishing its all-gather address: %w", err)
		}
	}
	if err := client.Fence(ctx); err != nil {
		return rendezvous{}, fmt.Errorf("waiting for rank 0 to publish its all-gather address: %w", err)
	}
	if rk != 0 {
		if rv.addr, err = client.Get(ctx, pmiBootstrapKey); err != nil {
			return rendezvous{}, fmt.Errorf("rank 0's all-gather address: %w", err)
		}
		if _, _, err := splitHostPort(rv.addr); err != nil {
			return rendezvous{}, fmt.Errorf("PMI key %s holds %q, not rank 0's HOST:PORT: %w", pmiBootstrapKey, rv.addr, err)
		}
	}
	// An orderly finalize: without it Hydra reports the rank's exit as
	// abnormal once copper-launch (or, with --foreground, copper-node) ends.
	if err := client.Finalize(ctx); err != nil {
		return rendezvous{}, fmt.Errorf("PMI finalize: %w", err)
	}
	log.Debug("copper-launch: all-gather address through PMI", "addr", rv.addr, "kvs", client.KVSName())
	return rv, nil
}

// checkPMIRank refuses a PMI server that disagrees with this rank's
// identity (say --rank given under mpiexec): rank 0 would be two processes.
func checkPMIRank(c *pmi.Client, ep pmi.Endpoint, rk, size int) error {
	pr, src := c.Rank(), "the PMI server"
	if pr < 0 {
		pr, src = ep.Rank, "PMI_RANK"
	}
	if pr >= 0 && pr != rk {
		return fmt.Errorf("this process is rank %d, but %s says rank %d: drop --rank/--size under a PMI launcher", rk, src, pr)
	}
	if s := c.Size(); s > 0 && s != size {
		return fmt.Errorf("the job has %d ranks, but the PMI server says %d", size, s)
	}
	return nil
}

// noRendezvous explains that rank 0's address cannot be found, naming
// the launcher this looks like and what it needs.
func noRendezvous(getenv func(string) string, nodesErr error) error {
	var hint string
	switch {
	case getenv("PMIX_RANK") != "" || getenv("OMPI_COMM_WORLD_RANK") != "":
		hint = "This looks like Open MPI (PMIx), which offers no PMI-1/PMI-2 server: pass --nodefile FILE or --bootstrap HOST:PORT. "
	case getenv("PALS_RANKID") != "":
		hint = "This looks like Cray PALS, which offers no PMI-1/PMI-2 server: pass --nodefile FILE (PBS_NODEFILE) or --bootstrap HOST:PORT. "
	case getenv("SLURM_PROCID") != "":
		hint = "This looks like an srun step without a PMI server: run srun --mpi=pmi2, or pass --bootstrap HOST:PORT. "
	}
	var why []string
	if nodesErr != nil {
		why = append(why, nodesErr.Error())
	}
	why = append(why, "no PMI server (PMI_FD and PMI_PORT unset)")
	return errors.New("discover mode needs rank 0's address and has no way to find it (" + strings.Join(why, "; ") + "). " + hint +
		"MPICH's mpiexec (Hydra) and srun --mpi=pmi2 supply PMI; a node file, PBS_NODEFILE or a Slurm node list gives the " +
		"first node at bootstrap_port; --bootstrap HOST:PORT names it outright")
}

// pmiSession is a PMI connection opened before the rendezvous, to learn
// this process's rank, and kept for it: a PMI_PORT server takes one
// initack per PMI_ID.
type pmiSession struct {
	client *pmi.Client
	done   bool
}

// finishBound bounds the finalize of a session nobody used further.
const finishBound = 10 * time.Second

// finish finalizes (if the rendezvous did not) and closes the session.
// Safe on nil and more than once.
func (s *pmiSession) finish(log *slog.Logger) {
	if s == nil || s.done {
		return
	}
	s.done = true
	ctx, cancel := context.WithTimeout(context.Background(), finishBound)
	defer cancel()
	if err := s.client.Finalize(ctx); err != nil {
		log.Warn("copper-launch: PMI finalize", "err", err)
	}
	s.client.Close()
}

// identityOrPMI is identity, except that a process with no rank variable
// but a PMI_PORT and PMI_ID (MPICH's mpiexec -pmi-port tells the rank only
// through PMI) asks the PMI server. The session it opens is returned for
// the rendezvous; the caller finishes it.
func identityOrPMI(ctx context.Context, c Command, getenv func(string) string, log *slog.Logger) (rank.Identity, *pmiSession, error) {
	id, err := identity(c, getenv)
	if err == nil || c.Rank >= 0 || getenv("PMI_RANK") != "" {
		return id, nil, err
	}
	ep, ok, perr := pmi.EndpointFromEnv(getenv)
	if perr != nil || !ok || ep.FD >= 0 || ep.ID < 0 {
		return id, nil, err
	}
	if t := c.Settings.BootstrapTimeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	client, perr := pmi.Dial(ctx, ep, pmi.Wire1)
	if perr != nil {
		return id, nil, fmt.Errorf("rank: no rank variable is set, and asking the PMI server at PMI_PORT (PMI_ID=%d) failed: %w", ep.ID, perr)
	}
	log.Debug("copper-launch: rank from the PMI server", "pmi_port", ep.Addr, "pmi_id", ep.ID)
	return rank.Identity{Rank: client.Rank(), Size: client.Size(), Source: "PMI_PORT/PMI_ID"}, &pmiSession{client: client}, nil
}

// spansHosts reports whether the launcher says the job has ranks on other
// hosts, for when there is no node list (PMI): Hydra's MPI_LOCALNRANKS
// below the size, or Slurm's SLURM_STEP_NUM_NODES above 1. A loopback
// endpoint or all-gather address cannot serve such a job.
func spansHosts(getenv func(string) string, size int) bool {
	if n, err := strconv.Atoi(getenv("MPI_LOCALNRANKS")); err == nil && n > 0 && n < size {
		return true
	}
	n, err := strconv.Atoi(getenv("SLURM_STEP_NUM_NODES"))
	return err == nil && n > 1
}
