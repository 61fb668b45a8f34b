package service_test

// Profiling through a real FUSE mount: one root node in this process,
// mounted, driven by file system calls from this process (each bounded
// by a timeout: the server is in this process, but a bug could still
// hang a call), its outputs read back from the job directory.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hpc-copper/copper/config"
	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/testkit"
	"github.com/hpc-copper/copper/profile"
	"github.com/hpc-copper/copper/service"
	"github.com/hpc-copper/copper/tree"
)

// mountTimeout bounds one file system call on a test mount.
const mountTimeout = 20 * time.Second

// profiledNode is one mounted root node with profiling.
type profiledNode struct {
	svc    *service.Service
	mnt    string
	jobDir string
	target string
}

// startProfiledNode mounts target through a one-node job with profiling
// on (edit may change that) and stops it, unmounting lazily if need be,
// at cleanup.
func startProfiledNode(t *testing.T, target string, edit func(*config.Settings)) *profiledNode {
	t.Helper()
	testkit.RequireFuse(t)
	dir := t.TempDir()
	s, err := config.Load("local")
	require.NoError(t, err)
	s.Target = target
	s.Mount = filepath.Join(dir, "mnt")
	s.LogDir = filepath.Join(dir, "logs")
	s.CacheMemoryBytes = 64 << 20
	s.SpillDir = filepath.Join(dir, "spill")
	s.MdEnoentTTLMs = 600_000 // no ENOENT entry lapses during a test
	s.ReadyTimeoutS = 10
	s.ProfileMetrics = true
	s.ProfileTopN = 20
	s.DirFilesMaxBytes = 0 // the counts below are per name: a read per file
	s.ProfilePathsFull = true
	if edit != nil {
		edit(&s)
	}
	p := &profiledNode{mnt: s.Mount, jobDir: filepath.Join(dir, "logs", "job"), target: target}
	book := []tree.Entry{{Host: "localhost", Endpoint: "127.0.0.1:0"}}
	p.svc, err = service.Start(t.Context(), s, service.Identity{Rank: 0, Book: book, Token: []byte("profile-test-job-token")},
		service.Options{Mount: true, Control: true, JobDir: p.jobDir})
	require.NoError(t, err)
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop stops the node; the mount goes even if the node cannot unmount.
func (p *profiledNode) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	assert.NoError(t, p.svc.Stop(ctx))
	if err := testkit.DetachMountsUnder(p.mnt); err != nil {
		t.Errorf("after stop: %v", err)
	}
}

// within runs f, which touches the mount, bounded in time.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	return testkit.Within(t, mountTimeout, what, f)
}

// opsTable indexes profiling_operations.csv: operation -> column -> value.
func opsTable(t *testing.T, path string) map[string]map[string]int64 {
	t.Helper()
	cols := strings.Split(profile.OperationsHeader, ",")
	out := map[string]map[string]int64{}
	for _, rec := range testkit.ReadCSV(t, path, profile.OperationsHeader) {
		row := map[string]int64{}
		for i, c := range cols[1:] {
			if strings.HasSuffix(c, "_us") || strings.HasSuffix(c, "_s") {
				continue
			}
			n, err := strconv.ParseInt(rec[i+1], 10, 64)
			require.NoError(t, err, "%s: %s of %s", path, c, rec[0])
			row[c] = n
		}
		out[rec[0]] = row
	}
	return out
}

// aggregate reads profiling_aggregate.csv as a map.
func aggregate(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, rec := range testkit.ReadCSV(t, path, profile.AggregateHeader) {
		out[rec[0]] = rec[1]
	}
	return out
}

func (p *profiledNode) file(tag, name string) string {
	return filepath.Join(p.jobDir, "profiling", tag, p.svc.Profile().Prefix()+"-"+name)
}

// TestProfileCountsThroughMount drives a scripted access pattern through
// the mount and checks the counts that follow from it exactly.
func TestProfileCountsThroughMount(t *testing.T) {
	const k, m, n = 5, 3, 4 // stats of existing files, whole-file reads, missing paths
	src := t.TempDir()
	for _, d := range []string{"s", "r"} {
		require.NoError(t, os.Mkdir(filepath.Join(src, d), 0o755))
	}
	for i := range k {
		require.NoError(t, os.WriteFile(filepath.Join(src, "s", fmt.Sprintf("f%d", i)), []byte("x"), 0o644))
	}
	var readBytes int64
	for i := range m {
		size := 100 * (i + 1) // well under a page: one FUSE READ each
		readBytes += int64(size)
		require.NoError(t, os.WriteFile(filepath.Join(src, "r", fmt.Sprintf("r%d", i)), bytes.Repeat([]byte{'a' + byte(i)}, size), 0o644))
	}
	p := startProfiledNode(t, src, nil)

	// Let the kernel learn the root first, then count from zero.
	require.NoError(t, within(t, "stat the mount root", func() error { _, err := os.Stat(p.mnt); return err }))
	p.svc.Profile().Reset(profile.PartAll)

	script := func() {
		for i := range k {
			require.NoError(t, within(t, "lstat", func() error {
				_, err := os.Lstat(filepath.Join(p.mnt, "s", fmt.Sprintf("f%d", i)))
				return err
			}))
		}
		for i := range m {
			require.NoError(t, within(t, "read", func() error {
				b, err := os.ReadFile(filepath.Join(p.mnt, "r", fmt.Sprintf("r%d", i)))
				if err == nil && len(b) != 100*(i+1) {
					err = fmt.Errorf("r%d: read %d bytes", i, len(b))
				}
				return err
			}))
		}
		for i := range n {
			err := within(t, "lstat missing", func() error {
				_, err := os.Lstat(filepath.Join(p.mnt, "s", fmt.Sprintf("missing%d", i)))
				return err
			})
			require.ErrorIs(t, err, os.ErrNotExist)
		}
	}
	script()
	// The same calls again reach nothing: the kernel keeps entries and
	// attributes (entry/attr timeouts of an hour) and negative entries
	// (a minute). This is why every path above is fresh.
	script()
	require.NoError(t, p.svc.Profile().Snapshot("scripted"))

	ops := opsTable(t, p.file("scripted", "profiling_operations.csv"))
	getattr, lookup, read := ops["getattr"], ops["lookup"], ops["read"]

	// FUSE: the kernel LOOKUPs each name once: the directories s and r,
	// k stat'ed files, m read files, n missing names (answered ENOENT,
	// then kept as negative entries).
	assert.EqualValues(t, 2+k+m+n, lookup["total_calls"], "lookups")
	assert.EqualValues(t, n, lookup["negative_results"], "lookups answered ENOENT")
	assert.EqualValues(t, n, lookup["errors"])
	// Only the mount's first OPEN reaches the node: it is answered ENOSYS
	// (no-open), and from then on the kernel opens files alone. The
	// page stays cached across opens: one READ per file, which is
	// smaller than a page.
	assert.EqualValues(t, 1, ops["open"]["total_calls"], "opens")
	assert.Zero(t, ops["open"]["errors"], "the no-open handshake's ENOSYS is not an error")
	assert.EqualValues(t, m, read["total_calls"], "READs")

	// Node: the lookup of s fetches the dirplus of "/" (lstats of s and
	// r), the first lookup in s and in r their dirplus (lstats of every
	// entry): three misses, each stat done once. Every other lookup is a
	// hit, missing names included (absent from the listing of s), and so
	// are the one OPEN and each kernel GETATTR (attributes are cached for
	// an hour, so there may be none; whatever the kernel sent is counted).
	dirplus := ops["dirplus"]
	assert.EqualValues(t, 2+k+m, getattr["backend_ops"], "backend lstats: every entry once, by a dirplus")
	assert.EqualValues(t, 3, dirplus["backend_ops"], "getdents of /, s and r")
	assert.EqualValues(t, 3, getattr["cache_misses"])
	assert.EqualValues(t, (2+k+m+n-3)+1+getattr["total_calls"], getattr["cache_hits"],
		"hits = the other lookups + the one OPEN + kernel GETATTRs")
	assert.EqualValues(t, map[string]int64{
		"total_calls": m, "cache_hits": 0, "cache_misses": m, "negative_results": 0, "errors": 0,
		"coalesced_waits": 0, "forwarded": 0, "backend_ops": m, "bytes_served": readBytes,
	}, read, "each file read whole from the backend once")
	assert.Zero(t, ops["readdir"]["backend_ops"]+ops["readlink"]["backend_ops"])

	errs := testkit.ReadCSV(t, p.file("scripted", "profiling_errors.csv"), profile.ErrorsHeader)
	assert.Contains(t, errs, []string{"lookup", "2", "ENOENT", strconv.Itoa(n)})

	agg := aggregate(t, p.file("scripted", "profiling_aggregate.csv"))
	assert.Equal(t, "0", agg["metadata_enoent_ttl_stores"], "missing names are absent from a held listing: no TTL entry")
	assert.Equal(t, "0", agg["metadata_enoent_ttl_serves"], "the kernel's negative entries absorb the repeats")
	assert.Equal(t, strconv.Itoa(n), agg["total_negative_results"])
	assert.Equal(t, strconv.Itoa((2+k+m)+3+m), agg["total_backend_ops"], "lstats, getdents, reads")
	assert.Equal(t, strconv.FormatInt(readBytes, 10), agg["total_bytes_served"])
	assert.Equal(t, "root", agg["role"])
	assert.Equal(t, "0", agg["total_forwarded"])

	// Paths: each stat'ed file was fetched once; each read file was
	// fetched (lookup) and read once (no OPEN reaches the node after the
	// mount's first); missing names are enoent.
	full := testkit.ReadCSV(t, p.file("scripted", "profiling_paths_full.csv"), profile.PathsFullHeader)
	rows := map[string][]string{}
	for _, r := range full {
		rows[r[0]] = r[1:]
	}
	assert.Len(t, rows, 2+k+m+n)
	assert.Equal(t, []string{"1", "0", "0", "0", "0", "1", "0", "miss", "0"}, rows["/s/f0"])
	assert.Equal(t, []string{"2", "0", "0", "1", "1", "2", "0", "miss", "0"}, rows["/r/r0"], "fetched the dirplus of r; the one OPEN; read")
	assert.Equal(t, []string{"1", "0", "0", "1", "1", "1", "0", "miss", "0"}, rows["/r/r2"], "listed by r0's dirplus, then read")
	assert.Equal(t, []string{"1", "0", "0", "0", "1", "0", "1", "enoent", "0"}, rows["/s/missing3"], "answered by the listing of s")

	top := testkit.ReadCSV(t, p.file("scripted", "profiling_top_paths.csv"), profile.TopPathsHeader)
	var ttl, data [][]string
	for _, r := range top {
		switch r[0] {
		case profile.CategoryMetadataTTL:
			ttl = append(ttl, r)
		case profile.CategoryData:
			data = append(data, r)
		}
	}
	assert.Empty(t, ttl, "no ENOENT went through the TTL table: the listing of s answered them")
	require.Len(t, data, m)
	assert.Equal(t, []string{"data", "/r/r0", "1", "0", "1", "0", "0", "0", "0", "0"}, data[0])

	// copper-node stats shows the same table.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var st service.Status
	require.NoError(t, control.Call(ctx, p.mnt, control.Request{Cmd: "stats"}, &st))
	assert.Positive(t, st.UptimeSec, "stats reports the node's uptime")
	require.NotEmpty(t, st.Profile)
	for _, r := range st.Profile {
		if r.Op == "lookup" {
			assert.EqualValues(t, 2+k+m+n, r.Calls)
			assert.EqualValues(t, n, r.Errors)
			assert.Positive(t, r.P99)
		}
	}
}

// TestSnapshotsOnTimerOnDemandAndAtStop checks every way a snapshot is
// written, and that the last ones come at Stop.
func TestSnapshotsOnTimerOnDemandAndAtStop(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644))
	p := startProfiledNode(t, src, func(s *config.Settings) { s.ProfileSnapshotIntervalS = 1 })
	require.NoError(t, within(t, "stat", func() error { _, err := os.Stat(filepath.Join(p.mnt, "a")); return err }))

	runtime := p.file(profile.TagRuntime, "profiling_aggregate.csv")
	require.Eventually(t, func() bool { _, err := os.Stat(runtime); return err == nil },
		15*time.Second, 50*time.Millisecond, "no runtime snapshot after 15 s with a 1 s interval")
	assert.Equal(t, profile.TagRuntime, aggregate(t, runtime)["snapshot_tag"])

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, tag := range []string{"", "before-import"} {
		var res service.SnapshotResult
		args := map[string]string{}
		if tag != "" {
			args["tag"] = tag
		}
		require.NoError(t, control.Call(ctx, p.mnt, control.Request{Cmd: "snapshot", Args: args}, &res))
		want := tag
		if want == "" {
			want = profile.TagIoctl
		}
		assert.Equal(t, filepath.Join(p.jobDir, "profiling", want), res.Profiling)
		assert.Equal(t, filepath.Join(p.jobDir, "tables", want), res.Tables)
		assert.Equal(t, want, aggregate(t, p.file(want, "profiling_aggregate.csv"))["snapshot_tag"])
		assert.FileExists(t, filepath.Join(res.Tables, p.svc.Profile().Prefix()+"-cache_tables.csv"))
	}
	err := control.Call(ctx, p.mnt, control.Request{Cmd: "snapshot", Args: map[string]string{"tag": "../escape"}}, nil)
	assert.ErrorContains(t, err, `snapshot tag "../escape"`)

	_, err = os.Stat(p.file(profile.TagFinal, "profiling_aggregate.csv"))
	require.True(t, os.IsNotExist(err), "final outputs before stop: %v", err)
	p.stop(t)
	pre := aggregate(t, p.file(profile.TagPreDestroy, "profiling_aggregate.csv"))
	final := aggregate(t, p.file(profile.TagFinal, "profiling_aggregate.csv"))
	assert.Equal(t, profile.TagFinal, final["snapshot_tag"])
	preUp, err := strconv.ParseFloat(pre["uptime_s"], 64)
	require.NoError(t, err)
	finalUp, err := strconv.ParseFloat(final["uptime_s"], 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, finalUp, preUp, "final comes after pre-destroy")
	assert.FileExists(t, filepath.Join(p.jobDir, "tables", "final", p.svc.Profile().Prefix()+"-cache_tables.csv"))
	for _, tag := range []string{profile.TagRuntime, profile.TagPreDestroy, profile.TagFinal} {
		ents, err := os.ReadDir(filepath.Join(p.jobDir, "profiling", tag))
		require.NoError(t, err)
		for _, e := range ents {
			assert.False(t, strings.HasPrefix(e.Name(), "."), "temporary file %s left in %s", e.Name(), tag)
		}
	}
}

// ioctl issues a Copper 1.0 command on path inside the mount.
func ioctl(t *testing.T, path string, cmd uint) {
	t.Helper()
	require.NoError(t, within(t, fmt.Sprintf("ioctl %d on %s", cmd, path), func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(cmd), 0); errno != 0 {
			return fmt.Errorf("ioctl %d: %w", cmd, errno)
		}
		return nil
	}))
}

func TestIoctlCommandsThroughMount(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "d", "f"), []byte("content"), 0o644))
	p := startProfiledNode(t, src, nil)
	file := filepath.Join(p.mnt, "d", "f")
	prof := p.svc.Profile()
	out := func(cmd uint32) string { return filepath.Join(prof.IoctlDir(), prof.IoctlOutputName(cmd)) }

	ioctl(t, file, profile.IoctlLogOpCounts)
	counts := testkit.ReadCSV(t, out(profile.IoctlLogOpCounts), "operation,count,errors")
	assert.Contains(t, counts, []string{"lookup", "2", "0"}, "d and d/f")

	ioctl(t, file, 4242) // not a Copper 1.0 command: counted, and it succeeds
	ioctl(t, filepath.Join(p.mnt, "d"), profile.IoctlLogAll)
	for _, cmd := range []uint32{profile.IoctlLogCacheTables, profile.IoctlLogOpTimes, profile.IoctlLogOpHits,
		profile.IoctlLogOpMisses, profile.IoctlLogDataEvents, profile.IoctlLogTreeEvents, profile.IoctlLogMetadataEvents,
		profile.IoctlLogNegative, profile.IoctlLogIoctlEvents, profile.IoctlDataCacheSize, profile.IoctlTreeCacheSize,
		profile.IoctlMetadataCacheSize} {
		assert.FileExists(t, out(cmd), "ioctl 2000 writes what %d writes", cmd)
	}
	events := testkit.ReadCSV(t, out(profile.IoctlLogIoctlEvents), "command,count")
	assert.Equal(t, [][]string{{"300", "1"}, {"2000", "1"}, {"4242", "1"}, {"external", "1"}, {"terminal", "0"}}, events)
	assert.Equal(t, "1", aggregate(t, p.file(profile.TagIoctl, "profiling_aggregate.csv"))["ioctl_external_count"])
	md := testkit.ReadCSV(t, out(profile.IoctlMetadataCacheSize), "table,entries,bytes")
	require.Len(t, md, 1)
	assert.Equal(t, "metadata", md[0][0])
	assert.NotEqual(t, "0", md[0][1], "metadata entries before ioctl 100")

	ioctl(t, file, profile.IoctlClearCaches)
	assert.Zero(t, p.svc.Node().Stats().Cache.Metadata.Entries, "ioctl 100 empties the cache")

	ioctl(t, file, profile.IoctlReset)
	pre := opsTable(t, p.file(profile.TagPreReset, "profiling_operations.csv"))
	assert.EqualValues(t, 2, pre["lookup"]["total_calls"], "the pre-reset snapshot keeps the counts")
	var ioctlCalls, lookups int64
	for _, r := range prof.Ops() {
		switch r.Op {
		case "ioctl":
			ioctlCalls = r.Calls
		case "lookup":
			lookups = r.Calls
		}
	}
	assert.Zero(t, lookups, "reset")
	assert.EqualValues(t, 1, ioctlCalls, "only ioctl 1900 itself, counted as it returned")
}

// Without profile_metrics the ioctls still work, and nothing is written
// at stop.
func TestIoctlWithoutProfiling(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	p := startProfiledNode(t, src, func(s *config.Settings) {
		s.ProfileMetrics, s.ProfileTopN, s.ProfilePathsFull = false, 0, false
	})
	ioctl(t, filepath.Join(p.mnt, "f"), profile.IoctlLogOpCounts)
	assert.Contains(t, testkit.ReadCSV(t, filepath.Join(p.svc.Profile().IoctlDir(), p.svc.Profile().IoctlOutputName(profile.IoctlLogOpCounts)),
		"operation,count,errors"), []string{"lookup", "1", "0"})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var st service.Status
	require.NoError(t, control.Call(ctx, p.mnt, control.Request{Cmd: "stats"}, &st))
	assert.Empty(t, st.Profile, "stats shows the profile table only when profiling")
	p.stop(t)
	assert.NoDirExists(t, filepath.Join(p.jobDir, "profiling"))
}

func TestProfilingNeedsJobDir(t *testing.T) {
	s, err := config.Load("local")
	require.NoError(t, err)
	s.Target = t.TempDir()
	s.Mount = filepath.Join(t.TempDir(), "mnt")
	s.CacheMemoryBytes = 1 << 20
	s.ProfileMetrics = true
	_, err = service.Start(t.Context(), s, service.Identity{Book: []tree.Entry{{Host: "localhost", Endpoint: "127.0.0.1:0"}}, Token: []byte("profile-test-job-token")},
		service.Options{})
	assert.ErrorContains(t, err, "job directory")
}
