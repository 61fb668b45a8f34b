#!/usr/bin/env bash
# make demo: a 4-node copper on this machine, numpy imported through a
# non-root mount, timings and cache stats, then a clean stop.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
N=4
work=$(mktemp -d /tmp/copper-demo.XXXXXX)
source scripts/local-nodes.sh
cleanup() { stop_local_nodes; rm -rf "$work"; }
trap cleanup EXIT

ms() { date +%s%N; }
elapsed() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "== copper-launch --local $N (fan-out 2: rank 0 is the root; 1, 2 ask 0; 3 asks 1)"
t0=$(ms)
start_local_nodes "$N" --fanout 2 --log-level 4 --profile-metrics --profile-top-n 20 --profile-paths-full 2>/dev/null
echo "   copper-launch returned: all $N nodes mounted and tree-ready after $(elapsed "$t0") ms"

pkgs=usr/lib/python3/dist-packages
leaf=${mounts[3]}
imp='import numpy, sys; assert numpy.__file__.startswith(sys.argv[1]), numpy.__file__; numpy.arange(10).sum()'
run_import() { PYTHONNOUSERSITE=1 PYTHONPATH="$1/$pkgs" /usr/bin/python3 -c "$imp" "$1"; }

echo "== import numpy"
t=$(ms); run_import /; native=$(elapsed "$t")
t=$(ms); run_import "$leaf"; cold=$(elapsed "$t")
t=$(ms); run_import "$leaf"; warm=$(elapsed "$t")
t=$(ms); run_import "${mounts[2]}"; sibling=$(elapsed "$t")
printf '   %-48s %6s ms\n' "local disk (/$pkgs)" "$native" \
  "rank 3 mount, cold (rank 3 -> 1 -> 0 -> disk)" "$cold" \
  "rank 3 mount, warm (kernel + node cache)" "$warm" \
  "rank 2 mount, first import (root already warm)" "$sibling"

echo "== rank 3 (leaf) cache and counters"
"$BIN/copper-node" stats --mount "$leaf" | sed 's/^/   /'
echo "== rank 0 (root): backend operations, the only ones that touched the disk"
"$BIN/copper-node" stats --mount "${mounts[0]}" | sed -n '/^ *op /,/^$/p' | sed 's/^/   /'
echo "== startup timing lines (log level 4)"
grep -h -o 'provider registration completed after [0-9]* us\|first successful parent rpc_[a-z]* completed after [0-9]* us since provider startup' \
  "$work"/logs/local/logs/*-output.log | sort | uniq -c | sed 's/^/   /' || true

echo "== stopping"
stop_local_nodes
left=$(grep -c " $work/m" /proc/mounts || true)
echo "   stopped; copper mounts left: $left"
[ "$left" = 0 ]

echo "== copper-report aggregate (profiling written by every node at stop)"
"$BIN/copper-report" aggregate "$work/logs/local" | sed 's/^/   /'
sed -n '/^## Operations/,/^## [A-Z]/p' "$work"/logs/local/profiling/cluster/cluster-profiling_summary.md | sed '$d' | sed 's/^/   /' 

echo "== copper-report doctor (problems the profile shows, each with its fix; exit 1 when any)"
status=0
"$BIN/copper-report" doctor "$work/logs/local" | sed 's/^/   /' || status=$?
[ "$status" -le 1 ]
