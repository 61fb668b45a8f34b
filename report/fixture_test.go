package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/profile"
)

// The synthetic job: three nodes of a torch import from a conda env.
// Node 0 is the tree root (backend ops), nodes 1 and 2 are children
// (forwarded). Node 2 has no paths_full file and an operations file with
// a column newer than this reader, to exercise both fallbacks.
const (
	envPrefix = "/opt/conda/envs/torch"
	sitePkgs  = envPrefix + "/lib/python3.11/site-packages"
)

var expand = strings.NewReplacer("$SP", sitePkgs, "$E", envPrefix)

// opsHeader is the writer's header: the fixture cannot drift from what nodes write.
const opsHeader = profile.OperationsHeader

var fixtureNodes = []struct {
	prefix string
	files  map[string]string // suffix → content
}{
	{"x1000c0s0b0n0-4101", map[string]string{
		suffixOperations: opsHeader + `
getattr,1200,1100,100,40,12.500,0.015000,40,3,0,100,0,8.000,20.000,90.000,400.000
lookup,800,760,40,30,10.000,0.008000,30,0,0,40,0,6.000,15.000,60.000,200.000
readdir,50,45,5,0,40.000,0.002000,0,0,0,5,0,30.000,60.000,120.000,150.000
readlink,10,9,1,0,5.000,0.000050,0,0,0,1,0,4.000,6.000,8.000,9.000
open,300,290,10,0,3.000,0.000900,0,0,0,0,0,2.000,4.000,6.000,20.000
read,600,560,40,0,50.000,0.030000,0,2,0,40,52428800,30.000,100.000,500.000,2000.000
statfs,2,0,0,0,1.000,0.000002,0,0,0,0,0,1.000,1.000,1.000,1.000
getxattr,0,0,0,0,0.000,0.000000,0,0,0,0,0,0.000,0.000,0.000,0.000
ioctl,1,0,0,0,20.000,0.000020,0,0,0,0,0,20.000,20.000,20.000,20.000
write,1,0,0,0,2.000,0.000002,1,0,0,0,0,2.000,2.000,2.000,2.000
`,
		suffixErrors: `operation,errno,name,count
getattr,2,ENOENT,40
lookup,2,ENOENT,30
write,30,EROFS,1
`,
		suffixMetrics: `metric,value
hostname,x1000c0s0b0n0
pid,4101
rank,0
role,root
snapshot_tag,final
snapshot_unix_s,1767225600
uptime_s,95.5
total_counted_fuse_operations,2964
total_cache_hits,2764
total_cache_misses,196
total_negative_results,70
total_coalesced_waits,5
total_forwarded,0
total_backend_ops,186
total_bytes_served,52428800
metadata_enoent_ttl_stores,30
metadata_enoent_ttl_serves,40
metadata_enoent_ttl_expires,2
metadata_enoent_ttl_clears_on_success_or_non_enoent,1
total_measured_latency_seconds,0.055974
ioctl_external_count,1
cache_bytes,39253504
cache_budget_bytes,1073741824
profile_top_n,5
profile_paths_full,true
`,
		suffixTopPaths: `category,path,total_events,cache_hits,cache_misses,negative_results,ttl_stores,ttl_serves,ttl_expires,ttl_clears
metadata,$SP/torch/__init__.py,40,38,2,0,0,0,0,0
metadata,$SP/torch/_C.cpython-311-x86_64-linux-gnu.so,30,29,1,0,0,0,0,0
metadata,$SP/torch/__init__.cpython-311-x86_64-linux-gnu.so,12,0,0,12,0,0,0,0
metadata,/usr/lib64/libc.so.6,8,7,1,0,0,0,0,0
data,$SP/torch/lib/libtorch_cpu.so,120,110,10,0,0,0,0,0
data,$SP/torch/_C.cpython-311-x86_64-linux-gnu.so,60,58,2,0,0,0,0,0
data,$E/lib/python3.11/__pycache__/os.cpython-311.pyc,5,4,1,0,0,0,0,0
tree,$SP,20,19,1,0,0,0,0,0
tree,$SP/torch,10,9,1,0,0,0,0,0
link,$E/lib/libpython3.so,4,3,1,0,0,0,0,0
metadata_ttl,$SP/torch/__init__.cpython-311-x86_64-linux-gnu.so,12,0,0,12,6,6,0,0
metadata_ttl,$SP/torch.py,6,0,0,6,3,3,0,0
`,
		suffixPathsFull: `path,getattr,readdir,readlink,read,hits,misses,enoent,result
$E,5,0,0,0,4,1,0,miss
$E/bin/python3.11,3,0,0,10,12,1,0,miss
$E/lib/libpython3.11.so.1.0,4,0,0,20,22,2,0,miss
$E/lib/libpython3.so,2,0,4,0,5,1,0,miss
$E/lib/python3.11/os.py,3,0,0,0,3,0,0,hit
$E/lib/python3.11/__pycache__/os.cpython-311.pyc,2,0,0,5,6,1,0,miss
$SP,6,20,0,0,25,1,0,miss
$SP/torch,8,10,0,0,17,1,0,miss
$SP/torch/__init__.py,40,0,0,0,38,2,0,miss
$SP/torch/__pycache__/__init__.cpython-311.pyc,3,0,0,8,10,1,0,miss
$SP/torch/_C.cpython-311-x86_64-linux-gnu.so,30,0,0,60,87,3,0,miss
$SP/torch/lib/libtorch_cpu.so,6,0,0,120,116,10,0,miss
$SP/torch/version.py,2,0,0,1,2,1,0,miss
$SP/torch/__init__.cpython-311-x86_64-linux-gnu.so,12,0,0,0,6,0,12,enoent
$SP/torch.py,6,0,0,0,3,0,6,enoent
/usr/lib64/libc.so.6,8,0,0,0,7,1,0,miss
/etc/ld.so.cache,1,0,0,0,0,1,0,miss
`,
	}},
	{"x1000c0s0b0n1-4102", map[string]string{
		suffixOperations: opsHeader + `
getattr,1100,1050,50,35,15.000,0.016500,35,4,50,0,0,9.000,25.000,150.000,900.000
lookup,700,680,20,25,11.000,0.007700,25,1,20,0,0,7.000,16.000,70.000,300.000
readdir,40,38,2,0,60.000,0.002400,0,0,2,0,0,40.000,80.000,200.000,220.000
readlink,10,10,0,0,4.000,0.000040,0,0,0,0,0,3.000,5.000,7.000,8.000
open,280,280,0,0,3.000,0.000840,0,0,0,0,0,2.000,4.000,7.000,25.000
read,550,530,20,0,70.000,0.038500,0,3,20,0,50331648,40.000,150.000,800.000,3000.000
statfs,1,0,0,0,1.000,0.000001,0,0,0,0,0,1.000,1.000,1.000,1.000
getxattr,3,0,0,3,2.000,0.000006,3,0,0,0,0,2.000,2.000,2.000,2.000
ioctl,0,0,0,0,0.000,0.000000,0,0,0,0,0,0.000,0.000,0.000,0.000
`,
		suffixErrors: `operation,errno,name,count
getattr,2,ENOENT,35
lookup,2,ENOENT,25
getxattr,61,ENODATA,3
`,
		suffixMetrics: `metric,value
hostname,x1000c0s0b0n1
pid,4102
rank,1
role,child
snapshot_tag,final
snapshot_unix_s,1767225601
uptime_s,94.25
total_counted_fuse_operations,2684
total_cache_hits,2588
total_cache_misses,92
total_negative_results,63
total_coalesced_waits,8
total_forwarded,92
total_backend_ops,0
total_bytes_served,50331648
metadata_enoent_ttl_stores,25
metadata_enoent_ttl_serves,35
metadata_enoent_ttl_expires,1
metadata_enoent_ttl_clears_on_success_or_non_enoent,0
total_measured_latency_seconds,0.065987
ioctl_external_count,0
cache_bytes,37748736
cache_budget_bytes,1073741824
profile_top_n,5
profile_paths_full,true
`,
		suffixTopPaths: `category,path,total_events,cache_hits,cache_misses,negative_results,ttl_stores,ttl_serves,ttl_expires,ttl_clears
metadata,$SP/torch/__init__.py,35,34,1,0,0,0,0,0
metadata,$SP/torch/_C.cpython-311-x86_64-linux-gnu.so,28,27,1,0,0,0,0,0
metadata,$SP/numpy/__init__.py,9,8,1,0,0,0,0,0
data,$SP/torch/lib/libtorch_cpu.so,110,100,10,0,0,0,0,0
data,$SP/torch/_C.cpython-311-x86_64-linux-gnu.so,50,49,1,0,0,0,0,0
tree,$SP,18,17,1,0,0,0,0,0
link,$E/lib/libpython3.so,4,4,0,0,0,0,0,0
metadata_ttl,$SP/torch/_C.abi3.so,5,0,0,5,2,3,0,0
`,
		suffixPathsFull: `path,getattr,readdir,readlink,read,hits,misses,enoent,result
$E/bin/python3.11,3,0,0,9,12,0,0,hit
$E/lib/libpython3.so,2,0,4,0,6,0,0,hit
$SP,5,18,0,0,22,1,0,miss
$SP/numpy,4,2,0,0,5,1,0,miss
$SP/numpy/__init__.py,9,0,0,3,11,1,0,miss
$SP/numpy/__pycache__/__init__.cpython-311.pyc,2,0,0,4,5,1,0,miss
$SP/numpy/core/__init__.py,2,0,0,2,3,1,0,miss
$SP/torch/__init__.py,35,0,0,0,34,1,0,miss
$SP/torch/_C.cpython-311-x86_64-linux-gnu.so,28,0,0,50,77,1,0,miss
$SP/torch/lib/libtorch_cpu.so,5,0,0,110,105,10,0,miss
$SP/torch/_C.abi3.so,5,0,0,0,3,0,5,enoent
/usr/lib64/libc.so.6,7,0,0,0,7,0,0,hit
`,
	}},
	{"x1000c0s1b0n0-4103", map[string]string{
		suffixOperations: opsHeader + `,queue_us
getattr,1000,990,10,30,10.000,0.010000,30,0,10,0,0,7.000,15.000,50.000,120.000,1.5
lookup,650,640,10,20,9.000,0.005850,20,0,10,0,0,6.000,12.000,40.000,100.000,1.0
readdir,40,40,0,0,30.000,0.001200,0,0,0,0,0,20.000,40.000,60.000,70.000,0.0
readlink,10,10,0,0,4.000,0.000040,0,0,0,0,0,3.000,5.000,6.000,7.000,0.0
open,280,280,0,0,2.500,0.000700,0,0,0,0,0,2.000,3.000,5.000,10.000,0.0
read,500,495,5,0,40.000,0.020000,0,0,5,0,47185920,30.000,80.000,300.000,900.000,2.0
statfs,1,0,0,0,1.000,0.000001,0,0,0,0,0,1.000,1.000,1.000,1.000,0.0
getxattr,0,0,0,0,0.000,0.000000,0,0,0,0,0,0.000,0.000,0.000,0.000,0.0
ioctl,0,0,0,0,0.000,0.000000,0,0,0,0,0,0.000,0.000,0.000,0.000,0.0
mkdir,2,0,0,0,3.000,0.000006,2,0,0,0,0,3.000,3.000,3.000,3.000,0.0
`,
		suffixErrors: `operation,errno,name,count
getattr,2,ENOENT,30
lookup,2,ENOENT,20
mkdir,30,EROFS,2
`,
		suffixMetrics: `metric,value
hostname,x1000c0s1b0n0
pid,4103
rank,2
role,child
snapshot_tag,final
snapshot_unix_s,1767225601
uptime_s,93
total_counted_fuse_operations,2483
total_cache_hits,2455
total_cache_misses,25
total_negative_results,50
total_coalesced_waits,0
total_forwarded,25
total_backend_ops,0
total_bytes_served,47185920
metadata_enoent_ttl_stores,20
metadata_enoent_ttl_serves,30
metadata_enoent_ttl_expires,0
metadata_enoent_ttl_clears_on_success_or_non_enoent,0
total_measured_latency_seconds,0.037797
ioctl_external_count,0
cache_bytes,36700160
cache_budget_bytes,1073741824
profile_top_n,5
profile_paths_full,false
future_metric,something new
`,
		suffixTopPaths: `category,path,total_events,cache_hits,cache_misses,negative_results,ttl_stores,ttl_serves,ttl_expires,ttl_clears
metadata,$SP/torch/__init__.py,30,30,0,0,0,0,0,0
metadata,$SP/torch/__init__.cpython-311-x86_64-linux-gnu.so,10,0,0,10,0,0,0,0
data,$SP/torch/lib/libtorch_cpu.so,100,95,5,0,0,0,0,0
tree,$SP/torch,9,9,0,0,0,0,0,0
metadata_ttl,$SP/torch/__init__.cpython-311-x86_64-linux-gnu.so,10,0,0,10,5,5,0,0
`,
	}},
}

var fixtureTables = map[string]string{
	"x1000c0s0b0n0-4101": "table,entries,bytes\ndata,728,38379520\ntree,120,245760\nmetadata,2400,614400\nnegative,96,12288\nlinks,12,1536\n",
	"x1000c0s0b0n1-4102": "table,entries,bytes\ndata,700,36962304\ntree,110,225280\nmetadata,2200,552960\nnegative,80,8192\nlinks,12,1536\n",
	"x1000c0s1b0n0-4103": "table,entries,bytes\ndata,690,35913728\ntree,105,215040\nmetadata,2100,563200\nnegative,70,7168\nlinks,10,1024\n",
}

// buildJob writes the synthetic job directory and returns its path.
func buildJob(t *testing.T) string {
	t.Helper()
	job := filepath.Join(t.TempDir(), "job-4242")
	for _, n := range fixtureNodes {
		for suffix, content := range n.files {
			writeTestFile(t, filepath.Join(job, "profiling", FinalSource, n.prefix+suffix), expand.Replace(content))
		}
	}
	// A runtime snapshot of node 0 only, and a writer's hidden temp file.
	n0 := fixtureNodes[0]
	writeTestFile(t, filepath.Join(job, "profiling", "runtime-snapshot", n0.prefix+suffixOperations), n0.files[suffixOperations])
	writeTestFile(t, filepath.Join(job, "profiling", FinalSource, ".x1000c0s0b0n0-4101-profiling_operations.csv.tmp123"), "garbage")
	for prefix, content := range fixtureTables {
		writeTestFile(t, filepath.Join(job, "tables", FinalSource, prefix+suffixCacheTables), content)
	}
	return job
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}
