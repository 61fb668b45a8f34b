package control

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// lockerEnv makes this test binary, run by TestLockFileStress, run
// lockLoop on the path it names instead of the tests.
const lockerEnv = "COPPER_CONTROL_TEST_LOCKER"

func TestMain(m *testing.M) {
	if path := os.Getenv(dialerEnv); path != "" {
		os.Exit(dialAndStop(path))
	}
	if path := os.Getenv(lockerEnv); path != "" {
		if err := lockLoop(path, "proc"+strconv.Itoa(os.Getpid()), stressRounds, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const stressRounds = 150

// lockLoop takes and lets go path's lock rounds times, removing the file
// at each release as the last holder does, and fails when, while it
// holds the lock, the path stops naming its file or another holder's
// mark appears there: two holders at once. inside counts this process's
// holders, when not nil.
func lockLoop(path, id string, rounds int, inside *atomic.Int32) error {
	mark := []byte(fmt.Sprintf("%-*s\n", pidWidth-1, id))
	for range rounds {
		f, err := LockFile(path)
		if err != nil {
			if errorsIsBusy(err) {
				continue
			}
			return err
		}
		if inside != nil && inside.Add(1) != 1 {
			return fmt.Errorf("%s: two holders in one process", id)
		}
		if _, err := f.WriteAt(mark, 0); err != nil {
			return err
		}
		time.Sleep(50 * time.Microsecond)
		got, err := os.ReadFile(path)
		switch {
		case err != nil:
			return fmt.Errorf("%s: the lock file went while held: %w", id, err)
		case string(got) != string(mark):
			return fmt.Errorf("%s: another holder's mark %q while held", id, got)
		case !namesFile(path, f):
			return fmt.Errorf("%s: the path names another file while held", id)
		}
		if inside != nil {
			inside.Add(-1)
		}
		if err := ReleaseFile(f, path); err != nil {
			return err
		}
	}
	return nil
}

func errorsIsBusy(err error) bool { return errors.Is(err, unix.EWOULDBLOCK) }

// TestLockFileStress: lockers in goroutines and in other processes, and
// a sweeper, on one lock file that each release removes: never two
// holders at once.
func TestLockFileStress(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	dir, err := MakeRuntimeDir()
	require.NoError(t, err)
	path := filepath.Join(dir, "ctl-stress.lock")
	self, err := os.Executable()
	require.NoError(t, err)
	var procs []*exec.Cmd
	for range 2 {
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), lockerEnv+"="+path)
		// A file, not a pipe: no copying goroutine for Wait to await.
		out, err := os.Create(filepath.Join(t.TempDir(), "locker.out"))
		require.NoError(t, err)
		t.Cleanup(func() { out.Close() })
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		procs = append(procs, cmd)
	}
	var inside atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 3 {
		wg.Go(func() { errs <- lockLoop(path, "g"+strconv.Itoa(i), stressRounds, &inside) })
	}
	stop := make(chan struct{})
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
				// As often as lock calls come; a sweep spinning without
				// pause could remove a new file before every locker's
				// flock, which no real host does.
				SweepLocks("")
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-swept
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, cmd := range procs {
		err := cmd.Wait()
		out, _ := os.ReadFile(cmd.Stdout.(*os.File).Name())
		require.NoError(t, err, "a locker process: %s", out)
	}
	assert.NoFileExists(t, path, "the last holder removed it")
}

// holdIn starts a process holding f's lock (an inherited copy).
func holdIn(t *testing.T, f *os.File) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	cmd.ExtraFiles = []*os.File{f}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// TestLockFileRemoved: the last holder's release removes a mount's lock
// file, wherever the lock was handed; a holder killed by SIGKILL leaves
// it, and the next lock taken in the runtime directory sweeps it.
func TestLockFileRemoved(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	dir, err := MakeRuntimeDir()
	require.NoError(t, err)

	lockHeld := func(name string) (*os.File, string) {
		p := filepath.Join(dir, name)
		f, err := LockFile(p)
		require.NoError(t, err)
		return f, p
	}
	// Held by a live child: kept. Held by a child that was killed: swept.
	f, liveHeld := lockHeld("ctl-live.lock")
	holdIn(t, f)
	require.NoError(t, f.Close())
	f, killedHeld := lockHeld("job-killed.lock")
	killed := holdIn(t, f)
	require.NoError(t, f.Close())
	require.NoError(t, killed.Process.Signal(unix.SIGKILL))
	_ = killed.Wait()
	free := filepath.Join(dir, "ctl-free.lock")
	other := filepath.Join(dir, "ctl-x.sock")
	unrelated := filepath.Join(dir, "notes.lock")
	for _, p := range []string{free, other, unrelated} {
		require.NoError(t, os.WriteFile(p, nil, 0o600))
	}

	mount := t.TempDir()
	l, err := LockMount(mount)
	require.NoError(t, err)
	tests := []struct {
		path string
		kept bool
	}{
		{liveHeld, true},
		{killedHeld, false},
		{free, false},
		{other, true},
		{unrelated, true},
		{l.Path(), true},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			if tt.kept {
				assert.FileExists(t, tt.path)
			} else {
				assert.NoFileExists(t, tt.path)
			}
		})
	}

	// Handed to a child: the parent's release keeps it, the child's death
	// frees it, and the next holder's release removes it.
	child := holdIn(t, l.File())
	require.NoError(t, l.Close())
	assert.FileExists(t, l.Path(), "the child still holds it")
	_, err = LockMount(mount)
	var busy *BusyError
	require.ErrorAs(t, err, &busy)
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	l2, err := LockMount(mount)
	require.NoError(t, err)
	require.NoError(t, l2.Close())
	assert.NoFileExists(t, l2.Path(), "the last holder removed it")
	_, held, err := Holder(mount)
	require.NoError(t, err)
	assert.False(t, held)
}
