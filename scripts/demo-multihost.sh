#!/usr/bin/env bash
# make demo-multihost: copper across 4 "hosts" on this machine, each a
# network namespace with its own address (cu0 on a private bridge) and
# hostname, started the way mpiexec starts copper-launch (PMI_RANK,
# PMI_SIZE, a PBS node file) in discover mode over --interface cu0. Shows
# the tree, imports numpy through a non-root host's mount, prints the
# counters, stops cleanly and removes every namespace. Needs root.
#
# Names follow internal/testkit/hosts (cphost-<pid>-<start>-<rand>), so a
# demo killed halfway is swept by the next multi-host test run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
N=4
[ "$(id -u)" = 0 ] || { echo "demo-multihost: network namespaces need root" >&2; exit 1; }
for tool in ip nsenter unshare findmnt mount hostname python3; do
  command -v "$tool" >/dev/null || { echo "demo-multihost: $tool not found (scripts/setup-test-deps.sh)" >&2; exit 1; }
done

start=$(awk '{ print $22 }' "/proc/$$/stat")
run="cphost-$$-$start-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
work=$(mktemp -d /tmp/copper-demo-mh.XXXXXX)
bridge=$run-br
subnet=10.77.250
job=demo-mh
pkgs=lib/python3/dist-packages

ns() { echo "$run-h$1"; }
host() { printf 'nid%05d' "$1"; }
mnt() { echo "$work/mnt/$(host "$1")"; }
rundir() { echo "$work/run/$(host "$1")"; }

cleanup() {
  set +e
  for i in $(seq 0 $((N - 1))); do
    [ -d "$(mnt "$i")" ] && XDG_RUNTIME_DIR=$(rundir "$i") "$BIN/copper-launch" stop --site local --mount "$(mnt "$i")" --timeout 15s >/dev/null 2>&1
  done
  for n in $(ip netns list | awk '{ print $1 }' | grep "^$run-"); do
    for pid in $(ip netns pids "$n"); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$n"
    rm -rf "/etc/netns/$n"
  done
  grep " $work" /proc/self/mounts | awk '{ print $2 }' | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work" "/run/copper-hosts/$run"
}
trap cleanup EXIT

# as_host I CMD...: run CMD as host I (its network namespace, hostname and
# /etc/hosts; the work directory stays shared with this shell).
as_host() {
  local i=$1; shift
  nsenter --net="/run/netns/$(ns "$i")" -- unshare --uts --mount --propagation unchanged -- /bin/sh -c '
    set -e; f=$1 h=$2; shift 2
    mount --make-private "$(findmnt -n -o TARGET --target /etc/hosts)"
    mount --bind "$f" /etc/hosts; hostname "$h"; exec "$@"' sh "/etc/netns/$(ns "$i")/hosts" "$(host "$i")" "$@"
}

ms() { date +%s%N; }
elapsed() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# each_stats PY: runs the python lines PY once per host, with s its
# `copper-node stats --json` document and n = s["node"].
each_stats() {
  for i in $(seq 0 $((N - 1))); do
    XDG_RUNTIME_DIR=$(rundir "$i") "$BIN/copper-node" stats --mount "$(mnt "$i")" --json
  done | python3 -c '
import json, sys
dec, text, i = json.JSONDecoder(), sys.stdin.read(), 0
while i < len(text.strip()):
    s, i = dec.raw_decode(text, i); i += len(text[i:]) - len(text[i:].lstrip())
    n = s["node"]
'"$1"
}

echo "== $N hosts: network namespaces on a private bridge (run $run)"
mkdir -p /run/copper-hosts && echo "$work" >"/run/copper-hosts/$run"
mount --bind "$work" "$work" && mount --make-shared "$work"
ip netns add "$bridge"
ip -n "$bridge" link set lo up
ip -n "$bridge" link add br0 type bridge && ip -n "$bridge" link set br0 up
hosts_file="127.0.0.1 localhost"$'\n'
for i in $(seq 0 $((N - 1))); do
  ip netns add "$(ns "$i")"
  ip -n "$bridge" link add "p$i" type veth peer name cu0 netns "$(ns "$i")"
  ip -n "$bridge" link set "p$i" master br0 up
  ip -n "$(ns "$i")" link set lo up
  ip -n "$(ns "$i")" addr add "$subnet.$((10 + i))/24" dev cu0
  ip -n "$(ns "$i")" link set cu0 up
  hosts_file+="$subnet.$((10 + i)) $(host "$i")"$'\n'
  mkdir -p "$(mnt "$i")" "$(rundir "$i")" && chmod 700 "$(rundir "$i")"
  echo "$(host "$i")" >>"$work/nodefile"
done
for i in $(seq 0 $((N - 1))); do
  mkdir -p "/etc/netns/$(ns "$i")" && printf '%s' "$hosts_file" >"/etc/netns/$(ns "$i")/hosts"
  printf '   %s  %s  cu0 %s/24\n' "$(host "$i")" "$(ns "$i")" "$subnet.$((10 + i))"
done

echo "== mpiexec-style start: one copper-launch per host (PMI_RANK/PMI_SIZE, PBS_NODEFILE, --interface cu0)"
t0=$(ms)
pids=()
for i in $(seq 0 $((N - 1))); do
  env -u XDG_RUNTIME_DIR PMI_RANK="$i" PMI_SIZE="$N" PBS_NODEFILE="$work/nodefile" XDG_RUNTIME_DIR="$(rundir "$i")" \
    bash -c "$(declare -f as_host ns host); run=$run; as_host $i $BIN/copper-launch --site local --interface cu0 --target /usr \
      --mount $(mnt "$i") --log-dir $work/jobs --key-file $work/key --job-id $job --fanout 2 --log-level 3" \
    >"$work/launch$i.log" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "copper-launch on $(host "$i") failed:" >&2; cat "$work/launch$i.log" >&2; exit 1; }
done
echo "   every launcher returned: $N hosts mounted and tree-ready after $(elapsed "$t0") ms"

echo "== the tree across hosts (copper-node stats --json of each host)"
each_stats '
    up = "(root: reads /usr)" if n["root"] else "parent rank %d" % s["parent"]
    print("   rank %d  %-22s %s  children %s" % (n["rank"], s["endpoint"], up, s["children"] or "-"))'
echo "   address book of the job: $work/jobs/$job/logs/copper_address_book.txt"
sed 's/^/     /' "$work/jobs/$job/logs/copper_address_book.txt"

imp='import numpy, sys; assert numpy.__file__.startswith(sys.argv[1]), numpy.__file__; numpy.arange(10).sum()'
import_on() { as_host "$1" env PYTHONNOUSERSITE=1 PYTHONPATH="$(mnt "$1")/$pkgs" /usr/bin/python3 -c "$imp" "$(mnt "$1")"; }
echo "== import numpy through the mounts (each run as that host)"
t=$(ms); import_on 3; cold=$(elapsed "$t")
t=$(ms); import_on 3; warm=$(elapsed "$t")
t=$(ms); import_on 2; sibling=$(elapsed "$t")
printf '   %-58s %6s ms\n' "$(host 3), cold ($(host 3) -> $(host 1) -> $(host 0) -> disk)" "$cold" \
  "$(host 3), warm (kernel + node cache)" "$warm" \
  "$(host 2), first import (the root is warm)" "$sibling"

echo "== counters: forwarded requests per host, filesystem operations at the root"
each_stats '
    fwd = sum(o["forwarded"] for o in n["ops"]); be = sum(o["backend_ops"] for o in n["ops"])
    print("   rank %d: forwarded %5d   filesystem operations %5d   cached %7d bytes" % (n["rank"], fwd, be, n["cache"]["bytes"]))'

echo "== stopping"
for i in $(seq 0 $((N - 1))); do
  XDG_RUNTIME_DIR=$(rundir "$i") as_host "$i" "$BIN/copper-launch" stop --site local --mount "$(mnt "$i")" --timeout 20s >/dev/null
done
left=$(grep -c " $work/mnt" /proc/self/mounts || true)
procs=$(for n in $(ip netns list | awk '{ print $1 }' | grep "^$run-"); do ip netns pids "$n"; done | wc -l)
echo "   stopped; copper mounts left: $left, processes left in the hosts' namespaces: $procs"
[ "$left" = 0 ] && [ "$procs" = 0 ]
