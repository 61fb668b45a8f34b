package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/osutil"
	"github.com/hpc-copper/copper/internal/testkit"
)

// runEnv runs copper-launch with the job's environment changed by set
// (a value of "" unsets the variable), bounded in time.
func (j *job) runEnv(set map[string]string, args ...string) testkit.Result {
	j.t.Helper()
	var env []string
	for _, kv := range j.env() {
		if _, ok := set[strings.SplitN(kv, "=", 2)[0]]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	cmd := exec.Command(launcher(), args...)
	cmd.Env = env
	r, err := testkit.RunBounded(cmd, launchTimeout)
	require.NoError(j.t, err, "copper-launch %q: %s", args, r)
	j.scratch.NoteConnections()
	return r
}

// requireServing checks that every rank's mount serves the target and
// that the nodes answering are the ones with pids.
func (j *job) requireServing(pids map[int]int) {
	j.t.Helper()
	for rk := range pids {
		assert.Equal(j.t, "hello from the target\n", j.readThrough(filepath.Join(j.mount(rk), "sub", "hello.txt")), "rank %d", rk)
	}
	sts := j.statsJSON("--local", strconv.Itoa(len(pids)))
	require.Len(j.t, sts, len(pids))
	for rk, st := range sts {
		assert.Equal(j.t, pids[rk], st.PID, "rank %d is still served by the node that first took it", rk)
	}
}

// requireNoJobDir checks that a launch wrote no job directory.
func (j *job) requireNoJobDir(jobID string) {
	j.t.Helper()
	_, err := os.Stat(filepath.Join(j.logDir, jobID))
	assert.ErrorIs(j.t, err, os.ErrNotExist, "job %s wrote its directory", jobID)
}

// TestSecondLaunchLeavesFirstServing starts a job, then a second one on
// the same mounts: the second must be refused before it writes anything,
// naming the mount, the serving pid and how to stop it, and the first
// job's nodes must serve on.
func TestSecondLaunchLeavesFirstServing(t *testing.T) {
	j := newJob(t)
	r := j.launch(append(j.common(), "--local", "3", "--job-id", "first")...)
	require.Equal(t, 0, r.Code, "first launch: %s", r)
	pids := readyPIDs(t, r.Stdout)
	require.Len(t, pids, 3, "%s", r)

	r2 := j.launch(append(j.common(), "--local", "3", "--job-id", "second")...)
	require.NotEqual(t, 0, r2.Code, "second launch on the same mounts: %s", r2)
	assert.Contains(t, r2.Stderr, j.mount(0))
	assert.Contains(t, r2.Stderr, fmt.Sprintf("pid %d", pids[0]))
	assert.Contains(t, r2.Stderr, "copper-launch stop")
	assert.NotContains(t, r2.Stdout, "copper-node: ready", "the second launch started no node")
	j.requireNoJobDir("second")
	j.requireServing(pids)

	// One rank of a job started by hand is refused the same way.
	r3 := j.launch(append(j.common(), "--local", "3", "--rank", "2", "--job-id", "third")...)
	require.NotEqual(t, 0, r3.Code, "%s", r3)
	assert.Contains(t, r3.Stderr, j.mount(2))
	assert.Contains(t, r3.Stderr, fmt.Sprintf("pid %d", pids[2]))
	j.requireNoJobDir("third")
	j.requireServing(pids)

	// So is copper-node started by hand, before it daemonizes or logs.
	tokenFile := filepath.Join(j.dir, "byhand.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("a job token of 32 bytes, by hand"), 0o600))
	r4 := j.run(launchTimeout, filepath.Join(binDir, "copper-node"), "serve", "--token-file", tokenFile,
		"--book", filepath.Join(j.logDir, "first", "logs", "copper_address_book.txt"), "--rank", "1",
		"--site", "local", "--target", j.target, "--mount", j.mountTemplate(), "--log-dir", j.logDir, "--job-id", "byhand",
		"--spill-dir", filepath.Join(j.dir, "spill"))
	require.NotEqual(t, 0, r4.Code, "%s", r4)
	assert.Contains(t, r4.Stderr, j.mount(1))
	assert.Contains(t, r4.Stderr, fmt.Sprintf("pid %d", pids[1]))
	j.requireNoJobDir("byhand")
	j.requireServing(pids)

	s := j.launch("stop", "--mount", j.mountTemplate(), "--local", "3", "--timeout", "20s")
	require.Equal(t, 0, s.Code, "stop: %s", s)
	j.requireNothingLeft()
}

// TestConcurrentLaunchesOneWins starts two jobs on the same mounts at
// once: exactly one must win and serve every mount, the other must fail
// without touching it.
func TestConcurrentLaunchesOneWins(t *testing.T) {
	j := newJob(t)
	ids := []string{"racer-a", "racer-b"}
	results := make([]testkit.Result, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			cmd := exec.Command(launcher(), append(j.common(), "--local", "3", "--job-id", id)...)
			cmd.Env = j.env()
			var err error
			results[i], err = testkit.RunBounded(cmd, launchTimeout)
			assert.NoError(t, err, "%s: %s", id, results[i])
		})
	}
	wg.Wait()
	j.scratch.NoteConnections()
	winners := 0
	var winner testkit.Result
	for i, r := range results {
		if r.Code == 0 {
			winners++
			winner = r
			continue
		}
		assert.Contains(t, r.Stderr, j.mount(0), "%s names the mount it could not take: %s", ids[i], r)
		j.requireNoJobDir(ids[i])
	}
	require.Equal(t, 1, winners, "exactly one launch wins:\n%s\n%s", results[0], results[1])
	pids := readyPIDs(t, winner.Stdout)
	require.Len(t, pids, 3, "%s", winner)
	j.requireServing(pids)

	s := j.launch("stop", "--mount", j.mountTemplate(), "--local", "3", "--timeout", "20s")
	require.Equal(t, 0, s.Code, "stop: %s", s)
	j.requireNothingLeft()
}

// TestUnsafeRuntimeDirRefused pre-creates the runtime directory the way
// another user could: each must be refused naming it, with nothing
// started and no job directory written.
func TestUnsafeRuntimeDirRefused(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, j *job) (env map[string]string, bad string)
		want    string
	}{
		{"xdg copper owned by another uid", func(t *testing.T, j *job) (map[string]string, string) {
			dir := filepath.Join(j.runtimeDir, "copper")
			require.NoError(t, os.MkdirAll(dir, 0o700))
			require.NoError(t, os.Chown(dir, 65534, 65534))
			return nil, dir
		}, "owned by uid 65534"},
		{"xdg copper world-writable", func(t *testing.T, j *job) (map[string]string, string) {
			dir := filepath.Join(j.runtimeDir, "copper")
			require.NoError(t, os.MkdirAll(dir, 0o700))
			require.NoError(t, os.Chmod(dir, 0o777))
			return nil, dir
		}, "writable by group or others"},
		{"xdg copper a symlink", func(t *testing.T, j *job) (map[string]string, string) {
			elsewhere := filepath.Join(j.dir, "elsewhere")
			require.NoError(t, os.MkdirAll(elsewhere, 0o700))
			require.NoError(t, os.MkdirAll(j.runtimeDir, 0o700))
			dir := filepath.Join(j.runtimeDir, "copper")
			require.NoError(t, os.Symlink(elsewhere, dir))
			return nil, dir
		}, "is a symlink"},
		{"tmp copper-uid world-writable", func(t *testing.T, j *job) (map[string]string, string) {
			tmp := filepath.Join(j.dir, "tmp")
			dir := filepath.Join(tmp, "copper-"+strconv.Itoa(os.Getuid()))
			require.NoError(t, os.MkdirAll(dir, 0o700))
			require.NoError(t, os.Chmod(dir, 0o777))
			return map[string]string{"XDG_RUNTIME_DIR": "", "TMPDIR": tmp}, dir
		}, "writable by group or others"},
		{"tmp run owned by another uid", func(t *testing.T, j *job) (map[string]string, string) {
			tmp := filepath.Join(j.dir, "tmp")
			dir := filepath.Join(tmp, "copper-"+strconv.Itoa(os.Getuid()), "run")
			require.NoError(t, os.MkdirAll(dir, 0o700))
			require.NoError(t, os.Chown(dir, 65534, 65534))
			return map[string]string{"XDG_RUNTIME_DIR": "", "TMPDIR": tmp}, dir
		}, "owned by uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newJob(t)
			env, bad := tt.prepare(t, j)
			r := j.runEnv(env, append(j.common(), "--local", "2", "--job-id", "unsafe")...)
			require.NotEqual(t, 0, r.Code, "%s", r)
			assert.Contains(t, r.Stderr, "runtime directory "+bad)
			assert.Contains(t, r.Stderr, tt.want)
			assert.NotContains(t, r.Stdout, "copper-node: ready")
			j.requireNoJobDir("unsafe")
			j.requireNothingLeft()

			// stop talks to no socket in such a directory either.
			s := j.runEnv(env, "stop", "--mount", j.mountTemplate(), "--local", "2", "--timeout", "5s")
			require.NotEqual(t, 0, s.Code, "%s", s)
			assert.Contains(t, s.Stderr, "runtime directory "+bad)
		})
	}
}

// TestStopVerifiesThePID puts a stranger on a running node's control
// socket that acknowledges stop and claims a pid that is long gone: stop
// must not report success while the node still runs.
func TestStopVerifiesThePID(t *testing.T) {
	j := newJob(t)
	r := j.launch(append(j.common(), "--local", "1", "--job-id", "victim")...)
	require.Equal(t, 0, r.Code, "%s", r)
	pids := readyPIDs(t, r.Stdout)
	require.Len(t, pids, 1, "%s", r)

	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	t.Setenv("XDG_RUNTIME_DIR", j.runtimeDir)
	sock, err := control.SocketPath(j.mount(0))
	require.NoError(t, err)
	require.NoError(t, os.Remove(sock))
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go fakeControl(ln, gone.Process.Pid)

	s := j.launch("stop", "--mount", j.mountTemplate(), "--local", "1", "--timeout", "2s")
	require.NotEqual(t, 0, s.Code, "stop must not succeed while the node runs: %s", s)
	assert.Contains(t, s.Stderr, "still running")
	assert.Contains(t, s.Stderr, fmt.Sprintf("pid %d", os.Getpid()), "the process that answered on the socket")
	assert.Contains(t, s.Stderr, fmt.Sprintf("pid %d", pids[0]), "the node that holds the mount")
	assert.True(t, osutil.ProcessRuns(pids[0]))
	assert.Equal(t, "hello from the target\n", j.readThrough(filepath.Join(j.mount(0), "sub", "hello.txt")))

	// With no socket at all, the node's claim on the mount still shows.
	require.NoError(t, ln.Close())
	_, err = os.Stat(sock)
	require.ErrorIs(t, err, os.ErrNotExist)
	s = j.launch("stop", "--mount", j.mountTemplate(), "--local", "1", "--timeout", "2s")
	require.NotEqual(t, 0, s.Code, "stop must not succeed while the node runs: %s", s)
	assert.Contains(t, s.Stderr, fmt.Sprintf("pid %d claims the mount", pids[0]))
	assert.True(t, osutil.ProcessRuns(pids[0]))

	// The node is stopped for real by its signal.
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	require.NoError(t, interruptAndWait(ctx, pids[0]))
	j.requireNothingLeft()
}

// fakeControl answers every control request on ln as a node claiming pid.
func fakeControl(ln net.Listener, pid int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			line, _ := bufio.NewReader(c).ReadBytes('\n')
			var req control.Request
			_ = json.Unmarshal(line, &req)
			data, _ := json.Marshal(map[string]int{"pid": pid})
			_ = json.NewEncoder(c).Encode(control.Response{Data: data})
		}()
	}
}

// interruptAndWait ends pid with SIGTERM (a node unmounts and exits on it)
// and waits until it is gone.
func interruptAndWait(ctx context.Context, pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := p.Signal(os.Interrupt); err != nil {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	for osutil.ProcessRuns(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("pid %d still running: %w", pid, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// TestBadTargetRefused gives a target that is a file or missing: the
// launcher must refuse it naming the path, before any start.
func TestBadTargetRefused(t *testing.T) {
	tests := []struct {
		name   string
		target func(j *job) string
		want   string
	}{
		{"regular file", func(j *job) string { return filepath.Join(j.target, "sub", "hello.txt") }, "not a directory"},
		{"missing", func(j *job) string { return filepath.Join(j.dir, "no-such-target") }, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := newJob(t)
			target := tt.target(j)
			for _, args := range [][]string{{"--local", "2"}, {"--local", "2", "--rank", "1", "--bootstrap-timeout-s", "5"}} {
				r := j.launch(append(append(j.common(), "--target", target, "--job-id", "badtarget"), args...)...)
				require.NotEqual(t, 0, r.Code, "%q: %s", args, r)
				assert.Contains(t, r.Stderr, "target "+target, "%q", args)
				assert.Contains(t, r.Stderr, tt.want, "%q", args)
				assert.NotContains(t, r.Stdout, "copper-node: ready")
				j.requireNoJobDir("badtarget")
			}
			j.requireNothingLeft()
		})
	}
}

// TestLocalCountRefused checks that --local takes only positive counts.
func TestLocalCountRefused(t *testing.T) {
	for _, n := range []string{"0", "-1", "-4"} {
		for _, cmdWord := range []string{"start", "stop"} {
			cmd := exec.Command(launcher(), cmdWord, "--local", n, "--mount", "/tmp/x{rank}")
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "XDG_RUNTIME_DIR=" + t.TempDir()}
			r, err := testkit.RunBounded(cmd, launchTimeout)
			require.NoError(t, err)
			assert.Equal(t, 2, r.Code, "%s --local %s: %s", cmdWord, n, r)
			assert.Contains(t, r.Stderr, "--local "+n+": must be at least 1", "%s", cmdWord)
		}
	}
}
