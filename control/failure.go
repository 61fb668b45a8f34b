package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hpc-copper/copper/internal/osutil"
)

// StartFailure is what a start that failed leaves in the runtime
// directory, beside the mount's control socket, so that a `wait` for the
// same mount returns at once with the reason instead of waiting out its
// timeout for a node that will never come.
type StartFailure struct {
	Mount string    `json:"mount"`
	JobID string    `json:"job_id,omitempty"` // "" when the start failed before it knew one
	Rank  int       `json:"rank"`
	Host  string    `json:"host"`
	By    string    `json:"by"` // the program that failed: copper-launch or copper-node
	PID   int       `json:"pid"`
	Time  time.Time `json:"time"`
	Error string    `json:"error"`
	// Logs are the files holding more, only those that existed when the
	// record was written (and, read back, that still exist).
	Logs []string `json:"logs,omitempty"`
}

// maxFailureRecord bounds what is read back: an error line and a few paths.
const maxFailureRecord = 64 << 10

// failurePath names mount's start-failure record.
func failurePath(mount string) (string, error) {
	return runtimePath(mount, ".failed")
}

// WriteStartFailure records f for f.Mount, atomically (a wait never reads
// half a record): written to a temporary file, then renamed over the
// record. Logs that do not exist are left out.
func WriteStartFailure(f StartFailure) error {
	path, err := failurePath(f.Mount)
	if err != nil {
		return err
	}
	if _, err := MakeRuntimeDir(); err != nil {
		return err
	}
	f.Logs = existing(f.Logs)
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return err
	}
	// 0600, the mode it always had: the runtime directory is its owner's
	// alone.
	if err := osutil.WriteFile(path, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("start-failure record for mount %s: %w", f.Mount, err)
	}
	return nil
}

// ReadStartFailure returns mount's start-failure record; ok is false when
// there is none.
func ReadStartFailure(mount string) (f StartFailure, ok bool, err error) {
	path, err := failurePath(mount)
	if err != nil {
		return f, false, err
	}
	if err := CheckRuntimeDir(); err != nil {
		return f, false, err
	}
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("start-failure record %s: %w", path, err)
	}
	defer file.Close()
	raw, err := io.ReadAll(io.LimitReader(file, maxFailureRecord))
	if err != nil {
		return f, false, fmt.Errorf("start-failure record %s: %w", path, err)
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return f, false, fmt.Errorf("start-failure record %s: %w", path, err)
	}
	f.Logs = existing(f.Logs)
	return f, true, nil
}

// ClearStartFailure removes mount's start-failure record: a new start
// claimed the mount, or the job stopped it.
func ClearStartFailure(mount string) error {
	path, err := failurePath(mount)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("start-failure record %s: %w", path, err)
	}
	return nil
}

// AppliesTo says whether the record belongs to the job jobID: a record
// left by another job on the same mount must not fail this job's wait. An
// empty id on either side matches (a start that failed before it knew its
// id, or a wait outside a batch job).
func (f StartFailure) AppliesTo(jobID string) bool {
	return f.JobID == "" || jobID == "" || f.JobID == jobID
}

// Message says what failed, why, and where to read more: only files that
// exist are named.
func (f StartFailure) Message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the node for mount %s failed to start: rank %d on host %s", f.Mount, f.Rank, f.Host)
	if f.JobID != "" {
		fmt.Fprintf(&b, ", job %s", f.JobID)
	}
	fmt.Fprintf(&b, " (%s pid %d at %s): %s", f.By, f.PID, f.Time.Format(time.RFC3339), f.Error)
	if len(f.Logs) > 0 {
		fmt.Fprintf(&b, "; more in %s", strings.Join(f.Logs, " and "))
	} else {
		b.WriteString("; no log file was recorded for it")
	}
	if !slices.ContainsFunc(f.Logs, func(p string) bool { return strings.HasSuffix(p, "-stderr.log") }) {
		// Not daemonized (or not yet): its stderr is its caller's.
		b.WriteString("; its stderr went to the output of the job step that started it")
	}
	return b.String()
}

// existing keeps the paths that name a file.
func existing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			out = append(out, p)
		}
	}
	return out
}
