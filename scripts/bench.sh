#!/usr/bin/env bash
# make bench / make bench-quick: measure, side by side in one run, and write
# docs/BENCHMARKS.md with every number and the command that produced it.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-quick}
BIN=$PWD/bin
out=docs/BENCHMARKS.md
work=$(mktemp -d /tmp/copper-bench.XXXXXX)
source scripts/local-nodes.sh
# The bind mount below holds only a copy inside $work; unmounted first all the same.
cleanup() { stop_local_nodes; if mountpoint -q "$work/n2"; then umount -l "$work/n2"; fi; rm -rf "$work"; }
trap cleanup EXIT

if [ "$mode" = full ]; then count=5; rounds=9; nstat=300000; clusterx=3; else count=2; rounds=5; nstat=100000; clusterx=1; fi
progress() { printf '[bench %s +%ss] %s\n' "$mode" "$SECONDS" "$*" >&2; }
section=()
add() { section+=("$*"); }

go build -buildvcs=false -o "$work/statloop" ./bench/statloop

progress "starting a 2-node copper (rank 1 is a non-root node, its go-fuse request trace on)"
start_local_nodes 2 --log-level 5 >/dev/null
leaf=${mounts[1]}
# requests: how many FUSE requests rank 1's trace shows so far (each `rx`
# line of its log is one request the kernel sent the daemon).
leaf_pid=$("$BIN/copper-node" stats --json --mount "$leaf" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
requests() { cat "$work"/logs/*/logs/*-"$leaf_pid"-output.log | grep -c 'msg="rx [0-9]*: ' || true; }
file=/usr/lib/python3/dist-packages/numpy/__init__.py
miss=/usr/lib/python3/dist-packages/numpy/no_such_module.py
# Baselines at the mount's depth ($work/n1 and $work/n2 beside $work/m1,
# the same number of path components): a native copy of the file (the
# longer path walk alone) and, as root, a read-only bind mount of that copy
# (a mount crossing too); what the FUSE mount costs beyond them is the
# kernel's FUSE path.
mkdir -p "$work/n1$(dirname "$file")" "$work/n2"
cp "$file" "$work/n1$file"
baselines="depth=$work/n1"
if [ "$(id -u)" = 0 ] && mount --bind -o ro "$work/n1" "$work/n2"; then baselines+=",bind=$work/n2"; fi
cat "$leaf$file" >/dev/null # warm: through the tree once, then the kernel caches it
"$work/statloop" -rounds 1 -n 1 -missing "$miss" "$leaf" >/dev/null
progress "warm stat through the mount vs native"
stat_cmd="statloop -rounds $rounds -n $nstat -baseline ${baselines//$work/<work>} $file <leaf mount>"
q0=$(requests)
stat_line=$("$work/statloop" -rounds "$rounds" -n "$nstat" -baseline "$baselines" "$file" "$leaf")
q1=$(requests)
progress "warm stat of a missing path"
miss_cmd="statloop -missing -rounds $rounds -n $nstat -baseline ${baselines//$work/<work>} $miss <leaf mount>"
miss_line=$("$work/statloop" -missing -rounds "$rounds" -n "$nstat" -baseline "$baselines" "$miss" "$leaf")
q2=$(requests)
stat_requests=$((q1 - q0)); miss_requests=$((q2 - q1))
stop_local_nodes
if mountpoint -q "$work/n2"; then umount "$work/n2"; fi

progress "issue #9's node-side targets (scripts/issue9-bench.sh $mode)"
i9_out=$work/issue9
scripts/issue9-bench.sh "$mode" "$i9_out" >&2

# Round trip vs echo: interleaved rounds of all four benchmarks (each call
# benchmark runs right before its echo), so that each round's ratios
# compare runs seconds apart on this shared host; the verdict takes the
# median of the per-round ratios. Each line carries its round as round=N.
rtrounds=6
progress "parent-child round trip vs netpoll echo ($rtrounds interleaved rounds)"
go test -c -o "$work/net.test" ./net
rt_cmd="go test -c -o net.test ./net, then $rtrounds rounds of: ./net.test -test.run '^\$' -test.bench 'RoundTrip|NetpollEcho' -test.benchmem"
rt_raw=""
for ((round = 1; round <= rtrounds; round++)); do
  rt_raw+=$("$work/net.test" -test.run '^$' -test.bench 'RoundTrip|NetpollEcho' -test.benchmem 2>&1 | grep '^Benchmark' | sed "s/\$/ round=$round/")$'\n'
done
rt_raw=${rt_raw%$'\n'}

cl_cmd="go test ./service -run '^\$' -bench ClusterColdRead64 -benchtime 1x -count $clusterx"
cl_raw="(full mode only)"
if [ "$mode" = full ]; then
  progress "64-node in-process cluster, cold read of 2,000 files (x$clusterx)"
  cl_raw=$(go test ./service -run '^$' -bench ClusterColdRead64 -benchtime 1x -count "$clusterx" -timeout 20m 2>&1 | grep '^Benchmark' || true)
fi

progress "job startup on the emulated parallel filesystem (scripts/pfsbench.sh $mode)"
pfs_out="$work/pfs"
# The scale model is calibrated and validated on this run (below); it
# needs the cores' worth of CPU the run gets on this shared host.
go build -buildvcs=false -o bin/ ./bench/cmd/scalemodel
model_probe=$(bin/scalemodel probe)
scripts/pfsbench.sh "$mode" "$pfs_out" >&2
cp "$pfs_out/pfsbench.svg" docs/pfsbench.svg

ca_cmd="go test ./cache -run '^\$' -bench . -count $count"
ca_raw="(full mode only)"
if [ "$mode" = full ]; then
  progress "cache lookups"
  ca_raw=$(go test ./cache -run '^$' -bench . -count "$count" 2>&1 | grep '^Benchmark')
fi

# The Memory section belongs to scripts/memcheck.sh (its rows are kept
# across runs): carry it over, and in full mode add a run to it below.
mem_section=$(sed -n '/^## Memory/,/^<!-- memcheck:end/p' "$out" 2>/dev/null | grep -v '^> Carried over' || true)
mem_note="> Carried over from earlier runs of \`scripts/memcheck.sh\`, not measured by this run (unless it is a full run, which adds rows): each row says when and at which commit it was measured; the prose was written by the session that made the fixes and holds no numbers beyond the rows and the configured formulas."
if [ -n "$mem_section" ]; then
  mem_section=$(awk -v note="$mem_note" 'NR == 1 { print; print ""; print note; next } { print }' <<<"$mem_section")
fi

# The large-file workload at the issue's size belongs to
# scripts/large-full-bench.sh: a full run writes it from its own pfsbench
# run (below), a quick one carries it over, saying from which run.
# (An earlier carry's note goes, with the blank line after it.)
large_section=$(sed -n '/^<!-- large-full:begin/,/^<!-- large-full:end/p' "$out" 2>/dev/null |
  awk '/^> Carried over/ { drop = 1; next } drop && /^$/ { drop = 0; next } { drop = 0; print }' || true)
if [ -n "$large_section" ]; then
  large_from=$(sed -n '1s/.* run=\([^ ]*\) commit=\([^ ]*\) .*/\1, commit \2/p' <<<"$large_section")
  large_note="> Carried over from the run of ${large_from:-unknown date} (\`scripts/large-full-bench.sh\`), not measured by this run (\`make bench\` and \`make bench-large\` regenerate it)."
  large_section=$(awk -v note="$large_note" 'NR == 2 { print; print ""; print note; next } { print }' <<<"$large_section")
fi

# median of metric $3 (default ns/op) of the benchmark lines matching $1
med() {
  local v
  v=$(awk -v pat="$1" -v m="${3:-ns/op}" '$1 ~ pat { for (i = 2; i < NF; i++) if ($(i+1) == m) print $i }' <<<"$2" | sort -g)
  if [ -z "$v" ]; then echo n/a; else sed -n "$(( ($(wc -l <<<"$v") + 1) / 2 ))p" <<<"$v"; fi
}
# per-round ratios of metric $3 of the round-trip lines matching $1 over
# those matching $2, one per line, sorted
round_ratios() {
  awk -v a="$1" -v b="$2" -v m="$3" '
    { r = ""; for (i = 1; i <= NF; i++) if ($i ~ /^round=/) r = substr($i, 7)
      for (i = 2; i < NF; i++) if ($(i+1) == m) { if ($1 ~ a) x[r] = $i; else if ($1 ~ b) y[r] = $i } }
    END { for (r in x) if ((r in y) && y[r] > 0) printf "%.4f\n", x[r] / y[r] }' <<<"$rt_raw" | sort -g
}
# median per-round ratio, and the range as "min–max"
rmed() {
  local v
  v=$(round_ratios "$1" "$2" "${3:-ns/op}")
  if [ -z "$v" ]; then echo n/a; else printf '%.2f' "$(sed -n "$(( ($(wc -l <<<"$v") + 1) / 2 ))p" <<<"$v")"; fi
}
rrange() {
  local v
  v=$(round_ratios "$1" "$2" "${3:-ns/op}")
  if [ -z "$v" ]; then echo n/a; else printf '%.2f–%.2f' "$(head -1 <<<"$v")" "$(tail -1 <<<"$v")"; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.2f", a / b }'; }
# field NAME LINE: the value of the key=value field NAME (a whole key: "ratio" is not "depth_ratio")
field() { sed -n "s/\(^\|.* \)$1=\([0-9.]*\).*/\2/p" <<<"$2"; }

# stat_split: where the warm-stat gap lies, from this run's baselines.
stat_split() {
  local kind line n
  echo "Where the warm-stat gap lies, from the same alternating loops (baselines at the mount's depth: \`depth\` a plain directory holding a native copy of the file, the longer path walk alone; \`bind\` a read-only bind mount of that copy, a mount crossing too; the mount against the last of them is the kernel's FUSE path: its dentry revalidation and permission hooks on each FUSE component):"
  echo
  echo "| stat of | depth / native | bind / native | mount / native | mount / depth | mount / bind | requests reaching rank 1 during the loops |"
  echo "|---|---|---|---|---|---|---|"
  for kind in cached missing; do
    if [ $kind = cached ]; then line=$stat_line; n=$stat_requests; else line=$miss_line; n=$miss_requests; fi
    echo "| $kind | $(field depth_ratio "$line" | grep . || echo n/a) | $(field bind_ratio "$line" | grep . || echo "n/a (needs root)") | $(field ratio "$line") | $(field mount_vs_depth "$line" | grep . || echo n/a) | $(field mount_vs_bind "$line" | grep . || echo n/a) | $n |"
  done
  echo
  echo "Requests are counted from rank 1's go-fuse request trace (log_level 5: each \`rx\` line of its log is one request the kernel sent the daemon)."
}

rt4=$(med 'RoundTrip4KiB' "$rt_raw"); ec4=$(med 'NetpollEcho4KiB' "$rt_raw")
rt128=$(med 'RoundTrip128KiB' "$rt_raw"); ec128=$(med 'NetpollEcho128KiB' "$rt_raw")
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "not measured"; else if (r + 0 <= t + 0) print "met"; else printf "missed by %.0f%%", (r / t - 1) * 100 }'; }
sr=$(field ratio "$stat_line"); mr=$(field ratio "$miss_line")
r4=$(rmed RoundTrip4KiB NetpollEcho4KiB); r128=$(rmed RoundTrip128KiB NetpollEcho128KiB)
r4range=$(rrange RoundTrip4KiB NetpollEcho4KiB); r128range=$(rrange RoundTrip128KiB NetpollEcho128KiB)
c4=$(rmed RoundTrip4KiB NetpollEcho4KiB cpu-ns/op); c128=$(rmed RoundTrip128KiB NetpollEcho128KiB cpu-ns/op)
rtc4=$(med RoundTrip4KiB "$rt_raw" cpu-ns/op); ecc4=$(med NetpollEcho4KiB "$rt_raw" cpu-ns/op)
rtc128=$(med RoundTrip128KiB "$rt_raw" cpu-ns/op); ecc128=$(med NetpollEcho128KiB "$rt_raw" cpu-ns/op)
rta4=$(med RoundTrip4KiB "$rt_raw" allocs/op); rta128=$(med RoundTrip128KiB "$rt_raw" allocs/op)

# wire bytes a benchmark reported (metric $1: up-B/op or down-B/op) for the
# lines matching $2, the first such line's value
wire() { awk -v pat="$2" -v m="$1" '$1 ~ pat { for (i = 2; i <= NF; i++) if ($i == m) { print $(i-1) + 0; exit } }' <<<"$rt_raw"; }
# echo_note says, from this run's metrics, whether the echo baseline moved
# the same bytes each way as the copper call it is compared with.
echo_note() {
  local size rt_up rt_down ec_up ec_down
  for size in 4KiB 128KiB; do
    rt_up=$(wire up-B/op "RoundTrip$size"); rt_down=$(wire down-B/op "RoundTrip$size")
    ec_up=$(wire up-B/op "NetpollEcho$size"); ec_down=$(wire down-B/op "NetpollEcho$size")
    if [ -z "$rt_up" ] || [ -z "$ec_up" ]; then
      echo "* $size: the benchmarks did not report their wire bytes (up-B/op, down-B/op), so whether the echo moved the call's bytes is unknown."
    elif [ "$rt_up" = "$ec_up" ] && [ "$rt_down" = "$ec_down" ]; then
      echo "* $size: the echo moved the same bytes as the copper call: $ec_up up (a request frame: header and path), $ec_down down (a response frame: header, attributes, data)."
    else
      echo "* $size: **the echo did not move the call's bytes**: call $rt_up up / $rt_down down, echo $ec_up up / $ec_down down."
    fi
  done
}

{
cat <<EOT
# Benchmarks

Numbers from \`make bench\` (full) or \`make bench-quick\`, written by \`scripts/bench.sh\`. Every
ratio is measured side by side in one run on the same machine; the machine is shared and noisy,
so compare ratios, not absolute times, across runs.

* Run: $(date -u '+%Y-%m-%d %H:%M UTC'), mode \`$mode\`, commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`
* Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)

## Targets (issue #2)

| measurement | result | target | verdict |
|---|---|---|---|
| warm stat of a cached file through a non-root mount vs native | ${sr}× ($(field mount_ns_per_stat "$stat_line") ns vs $(field native_ns_per_stat "$stat_line") ns) | ≤ 1.2× | $(verdict "$sr" 1.2) |
| warm stat of a missing path through a non-root mount vs native | ${mr}× ($(field mount_ns_per_stat "$miss_line") ns vs $(field native_ns_per_stat "$miss_line") ns) | ≤ 1.3× | $(verdict "$mr" 1.3) |
| parent↔child round trip, 4 KiB answer, vs bare netpoll echo | ${r4}× ($rt4 ns vs $ec4 ns) | ≤ 2× | $(verdict "$r4" 2) |
| parent↔child round trip, 128 KiB answer, vs bare netpoll echo | ${r128}× ($rt128 ns vs $ec128 ns) | ≤ 2× | $(verdict "$r128" 2) |

$(stat_split)

## Targets (issue #9)

The round trip from the interleaved rounds below; the emulated-filesystem rows from \`scripts/pfsbench.sh $mode\` (section "Job startup on an emulated parallel filesystem"). The targets measured on real copper-node processes — the open-heavy read warm and cold at N=8, the FUSE requests of a warm import, the cold round trips of an import — are in the next section, from \`scripts/issue9-bench.sh $mode\` in this same run.

| measurement | result | target | verdict |
|---|---|---|---|
| parent↔child round trip, 4 KiB answer, vs a netpoll echo of the same bytes | ${r4}× (per-round ratios ${r4range}; medians $rt4 ns vs $ec4 ns) | ≤ 1.5× | $(verdict "$r4" 1.5) |
$(cat "$pfs_out/issue9-rows.md")

The other unchanged properties are held by tests through real mounts, not by this run: EROFS for every mutation (\`fuse\` TestMutationsAreRefused, TestNodeRefusesMutations), real errnos across the tree (\`net\` TestErrnoTravelsUnchanged), torn-read protection (\`backend\` TestReadNeverTorn, \`fuse\` TestChangedFileIsOneVersion), mmap (\`fuse\` TestMmapThroughMount).

Round trips are ratios of wall time, the median of $rtrounds interleaved rounds' ratios (each call benchmark runs right before its echo). CPU per operation of the same runs (client and server are one process, so this is the whole exchange's cost, and other processes' load stretches it far less than wall time): 4 KiB ${c4}× the echo ($rtc4 vs $ecc4 cpu-ns/op, $rta4 allocations per call), 128 KiB ${c128}× ($rtc128 vs $ecc128 cpu-ns/op, $rta128 allocations per call; 128 KiB per-round wall ratios ${r128range}).

$(echo_note)

$(cat "$i9_out/issue9-section.md")

## Notes (prose without numbers, not re-checked by this run)

* **Everything on one machine**: all N emulated nodes share this machine's cores, so per-node CPU
  adds up here and not on a real cluster. The pfsbench section below says, computed from its own
  rows, which runs were CPU-bound and which were bound by the emulated server.

## Commands and raw output

Warm stat (2-node copper on loopback, \`bench/statloop\` alternates native and mount rounds, median):

    $stat_cmd
    $stat_line
    $miss_cmd
    $miss_line

Round trip vs echo:

    $rt_cmd
$(sed 's/^/    /' <<<"$rt_raw")

64-node in-process cluster, cold read (Getattr + Read) of 2,000 files on every node:

    $cl_cmd
$(sed 's/^/    /' <<<"${cl_raw:-    (benchmark not available)}")

Cache:

    $ca_cmd
$(sed 's/^/    /' <<<"$ca_raw")

$(cat "$pfs_out/bench-results.md")
${mem_section:+
$mem_section}
${large_section:+
$large_section}
EOT
} >"$out"
progress "control plane at scale (scripts/controlplane-bench.sh)"
CONTROLPLANE_COUNT=$count scripts/controlplane-bench.sh "$out" >/dev/null
progress "scale model, calibrated and validated on the pfsbench run (scripts/bench-model.sh --from)"
scripts/bench-model.sh --from "$pfs_out" "$model_probe"
if [ "$mode" = full ]; then
  progress "memory against the cache budget (scripts/memcheck.sh)"
  MEMCHECK_LABEL="bench full" scripts/memcheck.sh >/dev/null
  progress "large files at the issue's size, from this run's pfsbench (scripts/large-full-bench.sh --from)"
  scripts/large-full-bench.sh --from "$pfs_out"
fi
progress "wrote $out"
cat "$out"
