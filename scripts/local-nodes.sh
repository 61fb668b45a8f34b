# Sourced by demo.sh and bench.sh: start and stop N copper-node daemons on
# loopback from a generated address book. Needs BIN and work set.
# Until copper-launch --local lands, this is how a local tree is made.

# start_local_nodes N [extra copper-node flags...]: mounts are $work/m<rank>.
start_local_nodes() {
  local n=$1; shift
  mounts=()
  local r
  for r in $(seq 0 $((n - 1))); do mounts+=("$work/m$r"); done
  local ports
  read -r -a ports <<<"$(/usr/bin/python3 - "$n" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)"
  for r in $(seq 0 $((n - 1))); do echo "$(hostname) 127.0.0.1:${ports[$r]}"; done >"$work/book"
  local pids=() p rc=0
  for r in $(seq 0 $((n - 1))); do
    "$BIN/copper-node" --book "$work/book" --rank "$r" --mount "${mounts[$r]}" \
      --log-dir "$work/logs" --job-id local "$@" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}

# stop_local_nodes: stop every node started above and make sure nothing is
# left mounted.
stop_local_nodes() {
  local m
  for m in "${mounts[@]}"; do "$BIN/copper-node" stop --mount "$m" --timeout 20s >/dev/null 2>&1 || true; done
  for m in "${mounts[@]}"; do
    if grep -q " $m fuse" /proc/mounts; then umount -l "$m" 2>/dev/null || true; fi
  done
}
