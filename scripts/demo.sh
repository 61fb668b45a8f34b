#!/usr/bin/env bash
# make demo: a 4-node copper on this machine, numpy imported through a
# non-root mount, timings and cache stats, then a clean stop.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
N=4
work=$(mktemp -d /tmp/copper-demo.XXXXXX)
mounts=()
for r in $(seq 0 $((N - 1))); do mounts+=("$work/m$r"); done

cleanup() {
  for m in "${mounts[@]}"; do "$BIN/copper-node" stop --mount "$m" --timeout 20s >/dev/null 2>&1 || true; done
  for m in "${mounts[@]}"; do
    if grep -q " $m fuse" /proc/mounts; then umount -l "$m" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

ms() { date +%s%N; }
elapsed() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# A local address book: rank r listens on a free loopback port.
read -r -a ports <<<"$(/usr/bin/python3 - "$N" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)"
for r in $(seq 0 $((N - 1))); do echo "$(hostname) 127.0.0.1:${ports[$r]}"; done >"$work/book"

echo "== starting $N copper nodes (fan-out 2: rank 0 is the root; 1, 2 ask 0; 3 asks 1)"
t0=$(ms)
pids=()
for r in $(seq 0 $((N - 1))); do
  "$BIN/copper-node" --book "$work/book" --rank "$r" --mount "${mounts[$r]}" --fanout 2 \
    --log-dir "$work/logs" --job-id demo --log-level 4 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "   all nodes mounted and tree-ready after $(elapsed "$t0") ms"

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
  "$work"/logs/demo/logs/*-output.log | sort | uniq -c | sed 's/^/   /' || true

echo "== stopping"
for m in "${mounts[@]}"; do "$BIN/copper-node" stop --mount "$m" --timeout 20s; done
left=$(grep -c " $work/m" /proc/mounts || true)
echo "   stopped; copper mounts left: $left"
[ "$left" = 0 ]
