package launch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	ctl "github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/osutil"
)

// jobClaim is a --local launch's hold on its job directory while its
// ranks start: a flock on a file in the runtime directory named after
// the directory. Once the ranks are ready their nodes, whose command
// lines name the directory, are what shows the job is live.
type jobClaim struct {
	f    *os.File
	path string
}

// JobBusyError says another live job of this host uses the job directory.
type JobBusyError struct {
	JobID, Dir, Source string // Source: where the job id came from
	PID                int
	Starting           bool   // PID is a launcher still starting the job, not a node
	Mount              string // the node's mount, when its command line names it
}

func (e *JobBusyError) Error() string {
	who := fmt.Sprintf("copper-node pid %d", e.PID)
	if e.Mount != "" {
		who += " (mount " + e.Mount + ")"
	}
	if e.Starting {
		who = fmt.Sprintf("copper-launch pid %d, which is starting it", e.PID)
	}
	return fmt.Sprintf("job %s (from %s): its directory %s is in use by another live job on this host, %s; "+
		"two jobs must not share a job directory: pass --job-id with another name (it beats COPPER_JOB_ID, SLURM_JOB_ID and PBS_JOBID), "+
		"or set none and --local picks a fresh one, or stop that job first (copper-launch stop with its --mount and --local)",
		e.JobID, e.Source, e.Dir, who)
}

// claimJobDirs claims every job directory of a --local launch, all or
// none: refused while another launch starts a job there or a live node
// writes to it. The claims are released by release.
func claimJobDirs(dirs []string, jobID, source string) (release func(), err error) {
	var claims []*jobClaim
	release = func() {
		for _, c := range claims {
			c.release()
		}
	}
	for _, d := range dirs {
		c, err := claimJobDir(d, jobID, source)
		if err != nil {
			release()
			return func() {}, err
		}
		claims = append(claims, c)
	}
	return release, nil
}

// claimJobDir takes dir's start lock, then looks for a live node of
// another job writing there. The lock orders two launches that start at
// once: the second either finds the lock held or, once the first is
// done, its nodes.
func claimJobDir(dir, jobID, source string) (*jobClaim, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("job directory %s: %w", dir, err)
	}
	rt, err := ctl.MakeRuntimeDir()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	path := filepath.Join(rt, "job-"+hex.EncodeToString(sum[:8])+".lock")
	busy := &JobBusyError{JobID: jobID, Dir: dir, Source: source}
	f, err := ctl.LockFile(path)
	if err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			busy.PID, busy.Starting = readLockPID(path), true
			return nil, busy
		}
		return nil, fmt.Errorf("job %s: lock %s: %w", jobID, path, err)
	}
	c := &jobClaim{f: f, path: path}
	rec := fmt.Sprintf("%-15d\n", os.Getpid()) // fixed width: never read half written
	if _, err := f.WriteAt([]byte(rec), 0); err != nil {
		c.release()
		return nil, fmt.Errorf("job %s: lock %s: %w", jobID, path, err)
	}
	if pid, mount, ok := liveNodeWriting(dir, os.Geteuid()); ok {
		c.release()
		busy.PID, busy.Mount = pid, mount
		return nil, busy
	}
	ctl.SweepLocks(path) // those of launchers killed while they held theirs
	return c, nil
}

// release lets the claim go and removes its file, which nobody else
// holds: the ranks' processes do not inherit it.
func (c *jobClaim) release() { _ = ctl.ReleaseFile(c.f, c.path) }

func readLockPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// liveNodeWriting finds a running copper-node of uid serving with
// --job-dir dir (the same directory, however spelled), from the command
// lines in /proc: a daemon keeps its starter's arguments, and a
// foreground node is the launcher it replaced. Only uid's processes
// count: anyone can name a process copper-node and give it any command
// line, and another user's process must not keep this user's job from
// starting.
func liveNodeWriting(dir string, uid int) (pid int, mount string, ok bool) {
	want, wantErr := os.Stat(dir)
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, "", false
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self || !osutil.ProcessOwnedBy(pid, uid) {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) < 2 || args[1] != "serve" || filepath.Base(args[0]) != "copper-node" {
			continue
		}
		jd := argValue(args, "--job-dir")
		if jd == "" {
			continue
		}
		same := filepath.Clean(jd) == filepath.Clean(dir)
		if !same && wantErr == nil {
			if fi, err := os.Stat(jd); err == nil && os.SameFile(fi, want) {
				same = true
			}
		}
		if same {
			// The node's flags keep {rank}; its rank is a flag too.
			return pid, strings.ReplaceAll(argValue(args, "--mount"), "{rank}", argValue(args, "--rank")), true
		}
	}
	return 0, "", false
}

// argValue is the value of flag in args, as "--flag v" or "--flag=v".
func argValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}
