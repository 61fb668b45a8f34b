#!/usr/bin/env bash
# make memcheck: does a copper-node stay within its cache budget?
#
# Starts a real 2-node tree (copper-launch --local 2: rank 0 root, rank 1
# leaf) over a generated tree of small files, reads 10x the cache budget
# through the leaf's mount, and reports each node's peak (VmHWM) and settled
# (VmRSS) RSS against the target RSS <= 1.2 x budget + 40 MiB (issue #8).
# The result goes to stdout and, between the memcheck markers, into
# docs/BENCHMARKS.md's Memory section (one table row per run is kept, so a
# run before a fix and one after it stand side by side).
#
# Knobs (environment): MEMCHECK_BUDGET_MIB (64), MEMCHECK_FACTOR (10),
# MEMCHECK_MIN_KIB and MEMCHECK_MAX_KIB (file sizes, 64 and 1024),
# MEMCHECK_SETTLE_S (10), MEMCHECK_LABEL (a word for the table row),
# MEMCHECK_OUT (docs/BENCHMARKS.md; "-" = stdout only), MEMCHECK_NODE_ENV
# (extra environment for the nodes, e.g. GOMEMLIMIT=off to measure without
# the derived memory limit).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
budget_mib=${MEMCHECK_BUDGET_MIB:-64}
factor=${MEMCHECK_FACTOR:-10}
settle=${MEMCHECK_SETTLE_S:-10}
min_kib=${MEMCHECK_MIN_KIB:-64}
max_kib=${MEMCHECK_MAX_KIB:-1024}
label=${MEMCHECK_LABEL:-}
out=${MEMCHECK_OUT:-docs/BENCHMARKS.md}
node_env=${MEMCHECK_NODE_ENV:-}
budget=$((budget_mib << 20))
total=$((budget * factor))

progress() { printf '[memcheck +%ss] %s\n' "$SECONDS" "$*" >&2; }

# Generated data must fit with room to spare: total plus 1 GiB free.
need_kib=$(((total >> 10) + (1 << 20)))
free_kib=$(df -Pk /tmp | awk 'NR == 2 { print $4 }')
if [ "$free_kib" -lt "$need_kib" ]; then
  echo "memcheck: /tmp has $((free_kib >> 10)) MiB free, needs $((need_kib >> 10)) MiB; lower MEMCHECK_BUDGET_MIB" >&2
  exit 1
fi

work=$(mktemp -d /tmp/copper-memcheck.XXXXXX)
source scripts/local-nodes.sh
cleanup() { stop_local_nodes; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

progress "generating $((total >> 20)) MiB of files of $min_kib-$max_kib KiB in $work/data"
# One python3 process (a fork per file is slow for small files); a fixed
# seed, so runs read the same sizes. Prints "files bytes".
read -r nfiles made < <(python3 - "$work/data" "$total" "$min_kib" "$max_kib" <<'PY'
import os, random, sys
root, total, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng, made, n = random.Random(8), 0, 0
while made < total:
    size = rng.randint(lo, hi) << 10
    d = os.path.join(root, "d%d" % (n // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%d" % n), "wb") as f:
        f.write(os.urandom(size))
    made, n = made + size, n + 1
print(n, made)
PY
)

progress "starting copper-launch --local 2 --cache-memory-bytes $budget ${node_env:+(node env: $node_env)}"
local_n=2 tmpl="$work/m{rank}" mounts=("$work/m0" "$work/m1") # for cleanup, should the start fail half way
(
  # shellcheck disable=SC2086,SC2163 # node_env is a list of VAR=value words to export
  [ -z "$node_env" ] || export $node_env
  start_local_nodes 2 --target "$work/data" --cache-memory-bytes "$budget" --log-level 2 >/dev/null
)
leaf=${mounts[1]}

stat_field() { "$BIN/copper-node" stats --mount "$1" --json | python3 -c 'import json, sys; v = json.load(sys.stdin); [v := v[k] for k in sys.argv[1].split(".")]; print(v)' "$2"; }
pid_of() { stat_field "$1" pid; }
cache_bytes() { stat_field "$1" node.cache.bytes; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
pids=("$(pid_of "${mounts[0]}")" "$(pid_of "$leaf")")
for p in "${pids[@]}"; do [ -n "$p" ] || { echo "memcheck: no pid from copper-node stats" >&2; exit 1; }; done
start_kib=("$(status_kib "${pids[0]}" VmRSS)" "$(status_kib "${pids[1]}" VmRSS)")

progress "reading $nfiles files ($((made >> 20)) MiB) through the leaf mount, 4 readers"
t0=$(date +%s%N)
(cd "$leaf" && find . -type f -print0 | xargs -0 -P 4 -n 32 cat) | cksum >/dev/null
read_ms=$((($(date +%s%N) - t0) / 1000000))
(cd "$work/data" && find . -type f -print0 | xargs -0 -n 64 cat) | cksum >"$work/want"
(cd "$leaf" && find . -type f -print0 | xargs -0 -n 64 cat) | cksum >"$work/got"
cmp -s "$work/want" "$work/got" || { echo "memcheck: data read through the leaf differs from the source" >&2; exit 1; }
progress "read in ${read_ms} ms; settling ${settle} s"
sleep "$settle"

target_mib=$(awk -v b="$budget_mib" 'BEGIN { printf "%.1f", 1.2 * b + 40 }')
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { awk -v r="$1" -v l="$target_mib" 'BEGIN { if (r <= l) print "met"; else printf "missed (%.2f × the target)", r / l }'; }
if [ "$min_kib-$max_kib" != 64-1024 ]; then label="${label:+$label, }$min_kib-$max_kib KiB files"; fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- . ":!$out" 2>/dev/null || commit="$commit+dirty" # this run's own output does not count
when=$(date -u '+%Y-%m-%d %H:%M UTC')
rows=() raw=()
for i in 0 1; do
  role=$([ "$i" = 0 ] && echo root || echo leaf)
  hwm=$(status_kib "${pids[$i]}" VmHWM) rss=$(status_kib "${pids[$i]}" VmRSS)
  cb=$(cache_bytes "${mounts[$i]}")
  rows+=("| $when | \`$commit\` | ${label:--} | $role | $budget_mib | $(mib "$hwm") | $(mib "$rss") | $(mib $((cb >> 10))) | $target_mib | $(verdict "$(mib "$hwm")") / $(verdict "$(mib "$rss")") |")
  raw+=("$role pid=${pids[$i]} start_rss_kib=${start_kib[$i]} vmhwm_kib=$hwm vmrss_kib=$rss cache_bytes=$cb budget_bytes=$budget")
done
stop_local_nodes

# shellcheck disable=SC2016 # the quotes are literal text; node_env expands
cmd="make memcheck  # scripts/memcheck.sh, MEMCHECK_BUDGET_MIB=$budget_mib MEMCHECK_FACTOR=$factor MEMCHECK_MIN_KIB=$min_kib MEMCHECK_MAX_KIB=$max_kib MEMCHECK_SETTLE_S=$settle${node_env:+ MEMCHECK_NODE_ENV='$node_env'}"
frag=$work/memory.md
{
  echo "<!-- memcheck:begin (written by scripts/memcheck.sh; rows are kept across runs) -->"
  echo "| run | commit | label | node | budget MiB | peak RSS MiB (VmHWM) | settled RSS MiB (VmRSS) | cache MiB | target MiB (1.2 × budget + 40) | verdict peak / settled |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  if [ "$out" != - ] && [ -f "$out" ]; then
    sed -n '/^<!-- memcheck:begin/,/^<!-- memcheck:end/p' "$out" | grep '^| [0-9]' || true
  fi
  printf '%s\n' "${rows[@]}"
  echo
  echo "Latest run: $when, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $nfiles files of $min_kib-$max_kib KiB, $((made >> 20)) MiB read through the leaf in $read_ms ms, then ${settle} s idle before VmRSS:"
  echo
  echo "    $cmd"
  printf '    %s\n' "${raw[@]}"
  echo "<!-- memcheck:end -->"
} >"$frag"
cat "$frag"
if [ "$out" != - ]; then
  if ! grep -q '^<!-- memcheck:begin' "$out"; then
    printf '\n## Memory (issue #8)\n\n' >>"$out"
    cat "$frag" >>"$out"
  else
    awk -v frag="$frag" '
      /^<!-- memcheck:begin/ { while ((getline l < frag) > 0) print l; skip = 1; next }
      /^<!-- memcheck:end/ { skip = 0; next }
      !skip { print }' "$out" >"$work/out.md"
    cp "$work/out.md" "$out"
  fi
  progress "updated the Memory section of $out"
fi
