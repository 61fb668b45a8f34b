package launch

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hpc-copper/copper/book"
	"github.com/hpc-copper/copper/bootstrap"
	ctl "github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/secret"
	"github.com/hpc-copper/copper/rank"
	"github.com/hpc-copper/copper/tree"
)

// facilityMap picks the allocation's entries, in node-list order, from
// the facility book at path, and checks the job has one rank per node.
func facilityMap(path string, nodes []string, size int) ([]tree.Entry, error) {
	if path == "" {
		return nil, errors.New("address_book_source is facility but address_book is empty: set it in the site file or pass -F/--address-book")
	}
	full, err := book.Read(path)
	if err != nil {
		return nil, err
	}
	entries, err := rank.FilterBook(full, nodes)
	if err != nil {
		return nil, fmt.Errorf("facility address book %s: %w", path, err)
	}
	if len(entries) != size {
		return nil, fmt.Errorf("the allocation has %d nodes but the job has %d ranks: run one rank per node on every node (mpiexec -ppn 1, srun --ntasks-per-node=1), or pass --nodefile",
			len(entries), size)
	}
	return entries, nil
}

// preparedMap reads a job-local book as is: line r is rank r.
func preparedMap(path string, size int) ([]tree.Entry, error) {
	if path == "" {
		return nil, errors.New("address_book_source is prepared but address_book is empty: pass -F/--address-book")
	}
	entries, err := book.Read(path)
	if err != nil {
		return nil, err
	}
	if len(entries) != size {
		return nil, fmt.Errorf("prepared address book %s has %d entries but the job has %d ranks", path, len(entries), size)
	}
	return entries, nil
}

// checkOwnEntry fails when entry r of a facility or prepared map is not
// this host: the ranks are not on the nodes the map says, and the node
// would listen on another machine's address.
func checkOwnEntry(entries []tree.Entry, r int, hostname string, localIPs func() []net.IP) error {
	e := entries[r]
	if ip := net.ParseIP(e.Host); ip != nil {
		for _, mine := range localIPs() {
			if mine.Equal(ip) {
				return nil
			}
		}
	} else if rank.ShortHost(e.Host) == rank.ShortHost(hostname) {
		return nil
	}
	return fmt.Errorf("rank %d runs on host %s but the address map gives rank %d to %s (%s): ranks must run in node-list order, one per node",
		r, hostname, r, e.Host, e.Endpoint)
}

// hostIPs lists this host's addresses, for checkOwnEntry.
func hostIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			ips = append(ips, ipn.IP)
		}
	}
	return ips
}

// bookToken finds the job secret beside a prepared book: <book>.token,
// a regular file of this user's, mode 0600, at least 16 bytes. ok is
// false when there is none.
func bookToken(bookPath string) (path string, ok bool, err error) {
	if bookPath == "" {
		return "", false, nil
	}
	path = bookPath + ".token"
	b, err := secret.Read(path, "token file", 4096, "want 0600 (chmod 600 "+path+")")
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if len(bytes.TrimSpace(b)) < 16 {
		return "", false, fmt.Errorf("token file %s: token shorter than 16 bytes", path)
	}
	return path, true, nil
}

// Names of the records rank 0 writes in <jobdir>/logs.
const (
	BookFile       = "copper_address_book.txt"
	ProvenanceFile = "copper_address_book_full_output.txt"
	NodeFile       = "node_file.txt"
)

// makeJobDir creates <jobdir> with logs/, tables/ and profiling/. A job
// directory through a name that another user created first in a shared
// directory (log_dir under /tmp) is refused: they could read the logs, or
// swap in links that make the nodes write elsewhere. The job directory,
// when this makes it, is 0700: its logs and profiles name every path the
// job read, which other users must not learn from a readable log_dir.
func makeJobDir(jobDir string) error {
	if err := osutil.MkdirAllTrusted(filepath.Dir(jobDir), 0o755, osutil.TrustGroup); err != nil {
		return fmt.Errorf("job directory %s: %w", jobDir, err)
	}
	switch err := os.Mkdir(jobDir, 0o700); {
	case err == nil:
		if err := os.Chmod(jobDir, 0o700); err != nil { // whatever the umask
			return fmt.Errorf("job directory %s: %w", jobDir, err)
		}
	case !errors.Is(err, os.ErrExist):
		return fmt.Errorf("job directory %s: %w", jobDir, err)
	}
	for _, sub := range []string{"logs", "tables", "profiling"} {
		if err := osutil.MkdirAllTrusted(filepath.Join(jobDir, sub), 0o755, osutil.TrustGroup); err != nil {
			return fmt.Errorf("job directory %s: %w", jobDir, err)
		}
	}
	return nil
}

// provenance describes how the map was made, for rank 0's record.
type provenance struct {
	jobID      string
	source     string // discover, facility or prepared
	detail     []string
	seen       []bootstrap.Hello // discover: every hello in rank order
	nodes      []string
	nodeSource string
}

// writeRecords writes rank 0's job records: the map in use, how it was
// made, and the node list (the book's hosts when no node list is known).
func writeRecords(jobDir string, entries []tree.Entry, p provenance) error {
	logs := filepath.Join(jobDir, "logs")
	if err := book.Write(filepath.Join(logs, BookFile), entries); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# copper address book provenance: job %s, %d ranks, source %s, written %s\n",
		p.jobID, len(entries), p.source, time.Now().UTC().Format(time.RFC3339))
	for _, d := range p.detail {
		fmt.Fprintf(&b, "# %s\n", d)
	}
	if len(p.seen) > 0 {
		b.WriteString("# rank host endpoint job_id_proposal interfaces\n")
		for _, h := range p.seen {
			fmt.Fprintf(&b, "%d %s %s %s %s\n", h.Rank, h.Host, h.Endpoint, orDash(h.JobID), orDash(strings.Join(h.Interfaces, ",")))
		}
	} else {
		b.WriteString("# rank host endpoint\n")
		for r, e := range entries {
			fmt.Fprintf(&b, "%d %s %s\n", r, e.Host, e.Endpoint)
		}
	}
	if err := osutil.WriteFile(filepath.Join(logs, ProvenanceFile), []byte(b.String()), 0o644); err != nil {
		return err
	}
	nodes := p.nodes
	if len(nodes) == 0 {
		seen := map[string]bool{}
		for _, e := range entries {
			if !seen[e.Host] {
				seen[e.Host] = true
				nodes = append(nodes, e.Host)
			}
		}
	}
	return osutil.WriteFile(filepath.Join(logs, NodeFile), []byte(strings.Join(nodes, "\n")+"\n"), 0o644)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// privateFiles are this rank's copies of the map and the token, in the
// node-local runtime directory (mode 0700): the job directory may not be
// shared between nodes, and the token must not be readable by others.
type privateFiles struct {
	Book, Token string // Token is "" when the job runs without one
}

// privatePaths names the files of rank r of job in dir, written by the
// launcher with pid. The pid makes them this launch's alone: two launches
// with the same job id and rank (two --local jobs given the same id, as
// the same user on one host) must neither overwrite nor remove each
// other's copies, and no two live processes share a pid.
func privatePaths(dir, jobID string, r, pid int) privateFiles {
	base := filepath.Join(dir, fmt.Sprintf("%s-rank%d-%d", jobID, r, pid))
	return privateFiles{Book: base + ".book", Token: base + ".token"}
}

// writePrivate writes this rank's book copy and, if token is not empty,
// its token, in ctl.RuntimeDir(), named for this process.
func writePrivate(jobID string, r int, entries []tree.Entry, token []byte) (privateFiles, error) {
	// Checked again here, not only at the mount's lock: the token must
	// never go into a directory another user prepared.
	dir, err := ctl.MakeRuntimeDir()
	if err != nil {
		return privateFiles{}, err
	}
	sweepPrivate(dir) // those of launchers killed before they removed theirs
	p := privatePaths(dir, jobID, r, os.Getpid())
	if err := book.Write(p.Book, entries); err != nil {
		return privateFiles{}, err
	}
	if len(token) == 0 {
		p.Token = ""
		return p, nil
	}
	if err := osutil.WriteFile(p.Token, token, 0o600); err != nil {
		return privateFiles{}, err
	}
	return p, nil
}

// Remove deletes the files once copper-node has read them. Only their
// writer, or a stop of the node named on whose command line they are,
// removes them: the names are that launch's own (privatePaths).
func (p privateFiles) Remove() {
	for _, f := range []string{p.Book, p.Token} {
		if f != "" {
			_ = os.Remove(f)
		}
	}
}

// writeNodeFiles writes the job directory (and at rank 0 its records) and
// the node's private book and token, and returns those files with
// copper-node's command line.
func writeNodeFiles(c Command, p plan) (privateFiles, []string, error) {
	if err := writeJobFiles(p); err != nil {
		return privateFiles{}, nil, err
	}
	files, err := writePrivate(p.jobID, p.rank, p.entries, p.token)
	if err != nil {
		return privateFiles{}, nil, err
	}
	tokenArg := files.Token // a discover token; "" otherwise
	if p.tokenFile != "" {
		tokenArg = p.tokenFile // beside a prepared book: not ours to remove
	}
	return files, nodeArgs(c, p, privateFiles{Book: files.Book, Token: tokenArg}), nil
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
