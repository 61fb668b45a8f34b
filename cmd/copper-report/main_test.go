package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// smallJob is a one-node job directory with a usage root it touched; its
// node recorded target "/" (view paths are host paths).
func smallJob(t *testing.T) (job, root string) {
	return smallJobRecording(t, "target,/\n")
}

func smallJobRecording(t *testing.T, records string) (job, root string) {
	dir := t.TempDir()
	job, root = filepath.Join(dir, "job"), filepath.Join(dir, "env")
	write(t, filepath.Join(root, "lib", "m.py"), "x")
	final := filepath.Join(job, "profiling", "final")
	write(t, filepath.Join(final, "h-7-profiling_operations.csv"),
		"operation,total_calls,cache_hits,cache_misses,negative_results,avg_latency_us,total_latency_s\ngetattr,4,3,1,0,2.500,0.000010\n")
	write(t, filepath.Join(final, "h-7-profiling_aggregate.csv"),
		"metric,value\nrank,0\n"+records+"total_counted_fuse_operations,4\ntotal_cache_hits,3\ntotal_cache_misses,1\n")
	write(t, filepath.Join(final, "h-7-profiling_paths_full.csv"),
		"path,getattr,readdir,readlink,read,hits,misses,enoent,result\n"+root+"/lib/m.py,4,0,0,0,3,1,0,miss\n")
	write(t, filepath.Join(job, "tables", "final", "h-7-cache_tables.csv"), "table,entries,bytes\ndata,1,100\n")
	return job, root
}

func TestRun(t *testing.T) {
	job, root := smallJob(t)
	unrecorded, unrecordedRoot := smallJobRecording(t, "")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no command", nil, 2, "", "copper-report aggregate <jobdir>"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"help", []string{"help"}, 0, "copper-report paths <jobdir> --usage-root ROOT", ""},
		{"command help", []string{"aggregate", "--help"}, 0, "--prefix", ""},
		{"missing jobdir", []string{"aggregate"}, 2, "", "missing <jobdir>"},
		{"two jobdirs", []string{"cache", job, job}, 2, "", "want one <jobdir>, got 2"},
		{"bad flag", []string{"aggregate", "--nope", job}, 2, "", "unknown flag: --nope"},
		{"paths without usage root", []string{"paths", job}, 2, "", "--usage-root is required"},
		{"no such job", []string{"aggregate", filepath.Join(job, "nope")}, 1, "", "does not exist"},
		{"no snapshot", []string{"aggregate", job, "--source", "pre-reset"}, 1, "", "no profiling CSV under " + filepath.Join(job, "profiling", "pre-reset")},
		{"aggregate", []string{"aggregate", job}, 0, "summary: " + filepath.Join(job, "profiling", "cluster", "cluster-profiling_summary.md"), ""},
		{"paths", []string{"paths", job, "--usage-root", root}, 0, "Observed files: 1 of 1 (100.00%)", ""},
		{"paths, target from the job's records", []string{"paths", job, "--usage-root", root}, 0, "target: / (recorded by the nodes in profiling/final/*-profiling_aggregate.csv)", ""},
		{"paths, no recorded target", []string{"paths", unrecorded, "--usage-root", unrecordedRoot}, 1, "",
			"no --target given, and no *-profiling_aggregate.csv in " + filepath.Join(unrecorded, "profiling", "final") + " records the target"},
		{"paths, explicit target", []string{"paths", unrecorded, "--usage-root", unrecordedRoot, "--target", "/"}, 0, "Observed files: 1 of 1", ""},
		{"cache", []string{"cache", job}, 0, "summary: " + filepath.Join(job, "profiling", "cluster", "cache_usage_summary.txt"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tt.args...)
			assert.Equal(t, tt.code, code, "stdout: %s\nstderr: %s", stdout, stderr)
			assert.Contains(t, stdout, tt.stdout)
			assert.Contains(t, stderr, tt.stderr)
		})
	}
	for _, f := range []string{"cluster-profiling_chart.svg", "paths/used_paths_existing.txt", "cache_usage_summary.csv"} {
		assert.FileExists(t, filepath.Join(job, "profiling", "cluster", f))
	}
}

// doctor's exit status says what it found: 0 nothing, 1 problems, 2 it
// could not look.
func TestDoctorExitStatus(t *testing.T) {
	clean, _ := smallJob(t)
	sick, _ := smallJob(t)
	write(t, filepath.Join(sick, "profiling", "final", "h-7-profiling_paths_full.csv"),
		"path,getattr,readdir,readlink,read,hits,misses,enoent,result,refetches\n/env/lib/m.py,1,0,0,1,0,2,0,miss,0\n")
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"nothing found", []string{"doctor", clean}, 0, "no problems found", ""},
		{"a problem", []string{"doctor", sick}, 1, "python-bytecode: 1 .py file read with no .pyc", ""},
		{"fix named", []string{"doctor", sick, "--target", "/lus"}, 1, "fix: before the job, with the job's Python (the .pyc name carries its version): python -m compileall -q /lus/env/lib", ""},
		{"no job", []string{"doctor", filepath.Join(clean, "nope")}, 2, "", "does not exist"},
		{"no jobdir", []string{"doctor"}, 2, "", "missing <jobdir>"},
		{"bad flag", []string{"doctor", clean, "--probe-fanout", "x"}, 2, "", "invalid argument"},
		{"help", []string{"doctor", "--help"}, 0, "--probe-fanout", ""},
		{"relative target", []string{"doctor", clean, "--target", "lus"}, 2, "", `--target "lus": want an absolute host path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tt.args...)
			assert.Equal(t, tt.code, code, "stdout: %s\nstderr: %s", stdout, stderr)
			assert.Contains(t, stdout, tt.stdout)
			assert.Contains(t, stderr, tt.stderr)
		})
	}
}
