package rank

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/hpc-copper/copper/tree"
)

// ReadNodefile reads a PBS_NODEFILE-style file: one host per line, repeats
// collapsed to the first occurrence (PBS repeats a host once per slot),
// order kept, blank lines and '#' comments skipped. A line holding more
// than one word, or a file without hosts, is an error naming path:line.
func ReadNodefile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rank: node file: %w", err)
	}
	defer f.Close()
	var hosts []string
	seen := make(map[string]bool)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		h := strings.TrimSpace(sc.Text())
		if h == "" || h[0] == '#' {
			continue
		}
		if strings.ContainsFunc(h, isSpace) {
			return nil, fmt.Errorf("rank: node file %s:%d: %q is not one host name", path, line, h)
		}
		if !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("rank: node file %s: %w", path, err)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("rank: node file %s: no hosts", path)
	}
	return hosts, nil
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\v' || r == '\f' }

// NodesFromEnv returns the job's hosts in allocation order, unique, and the
// name of where they came from. The first of these wins:
//
//   - nodefile, when not empty (an explicit -nf flag);
//   - PBS_NODEFILE (PBS Pro, Aurora);
//   - SLURM_STEP_NODELIST: inside an srun step it lists the step's own
//     nodes, which are where the ranks run when the step uses only part of
//     the allocation;
//   - SLURM_JOB_NODELIST, then its older spelling SLURM_NODELIST.
func NodesFromEnv(getenv func(string) string, nodefile string) ([]string, string, error) {
	if nodefile != "" {
		hosts, err := ReadNodefile(nodefile)
		return hosts, "node file " + nodefile, err
	}
	if p := strings.TrimSpace(getenv("PBS_NODEFILE")); p != "" {
		hosts, err := ReadNodefile(p)
		return hosts, "PBS_NODEFILE=" + p, err
	}
	listVars := []string{"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"}
	for _, name := range listVars {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			continue
		}
		hosts, err := ParseHostlist(v)
		if err != nil {
			return nil, name, fmt.Errorf("%s: %w", name, err)
		}
		return unique(hosts), name, nil
	}
	return nil, "", fmt.Errorf("rank: no node list: pass a node file, or set PBS_NODEFILE, %s",
		strings.Join(listVars, ", "))
}

func unique(hosts []string) []string {
	seen := make(map[string]bool, len(hosts))
	out := hosts[:0:0]
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// ShortHost drops the domain: "x4000c0s0b0n0.hostmgmt2000.cm.aurora.alcf.anl.gov"
// → "x4000c0s0b0n0". IP addresses are returned unchanged.
func ShortHost(h string) string {
	if net.ParseIP(h) != nil {
		return h
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		return h[:i]
	}
	return h
}

// JobID returns the scheduler's job id: PBS_JOBID up to its first '.'
// ("1234.aurora-pbs-0001..." → "1234"), else SLURM_JOB_ID, else
// COPPER_JOB_ID, else "" (the caller chooses one).
func JobID(getenv func(string) string) string {
	if v := strings.TrimSpace(getenv("PBS_JOBID")); v != "" {
		id, _, _ := strings.Cut(v, ".")
		return id
	}
	for _, name := range []string{"SLURM_JOB_ID", "COPPER_JOB_ID"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
	}
	return ""
}

// FilterBook picks, from a facility-wide address book, the entries of the
// allocation's hosts, in allocation order (so book index = rank). Hosts are
// matched by short name, so a book of FQDNs serves a node list of short
// names and the reverse. Errors: an allocation host listed twice, a host
// matching two book entries, and hosts missing from the book (all of them,
// sorted, with the count).
func FilterBook(book []tree.Entry, hosts []string) ([]tree.Entry, error) {
	// index[short] is the book position of the host; dup[short] a second one.
	index := make(map[string]int, len(book))
	dup := make(map[string]int)
	for i, e := range book {
		s := ShortHost(e.Host)
		if _, ok := index[s]; ok {
			if _, seen := dup[s]; !seen {
				dup[s] = i
			}
			continue
		}
		index[s] = i
	}
	out := make([]tree.Entry, 0, len(hosts))
	picked := make(map[string]string, len(hosts))
	var missing []string
	for _, h := range hosts {
		s := ShortHost(h)
		if prev, ok := picked[s]; ok {
			return nil, fmt.Errorf("rank: allocation lists host %s twice (as %q and %q)", s, prev, h)
		}
		picked[s] = h
		i, ok := index[s]
		if !ok {
			missing = append(missing, h)
			continue
		}
		if j, ok := dup[s]; ok {
			return nil, fmt.Errorf("rank: host %s matches address book entries %d (%s %s) and %d (%s %s)",
				s, i+1, book[i].Host, book[i].Endpoint, j+1, book[j].Host, book[j].Endpoint)
		}
		out = append(out, book[i])
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("rank: %d of %d allocation hosts are not in the address book: %s",
			len(missing), len(hosts), strings.Join(missing, ", "))
	}
	return out, nil
}
