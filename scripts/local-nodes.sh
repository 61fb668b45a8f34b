# Sourced by demo.sh and bench.sh: a local copper tree of N nodes started by
# copper-launch --local N. Needs BIN and work set; sets mounts[] and tmpl.

# start_local_nodes N [extra copper-launch flags...]: mounts are $work/m<rank>.
start_local_nodes() {
  local n=$1 r; shift
  tmpl="$work/m{rank}"
  local_n=$n
  mounts=()
  for r in $(seq 0 $((n - 1))); do mounts+=("$work/m$r"); done
  "$BIN/copper-launch" --local "$n" --mount "$tmpl" --log-dir "$work/logs" --job-id local "$@"
}

# stop_local_nodes: stop every node started above and make sure nothing is
# left mounted.
stop_local_nodes() {
  [ -n "${local_n:-}" ] || return 0
  "$BIN/copper-launch" stop --local "$local_n" --mount "$tmpl" >/dev/null 2>&1 || true
  local m
  for m in "${mounts[@]}"; do
    if grep -q " $m fuse" /proc/mounts; then umount -l "$m" 2>/dev/null || true; fi
  done
  local_n=
}
