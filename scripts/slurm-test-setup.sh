#!/usr/bin/env bash
# A private single-host Slurm cluster for copper's Slurm test (slurmtest/):
# munged, slurmctld and slurmd for this one host, all under one directory
# (default /tmp/copper-slurm), on their own ports, so a real Slurm install
# on the machine is neither used nor disturbed.
#
#   scripts/slurm-test-setup.sh          install if missing, start what is not running,
#                                        wait until the node is idle; prints on stdout:
#                                          SLURM_CONF=<dir>/slurm.conf
#                                          STARTED=<daemons this call started>
#   scripts/slurm-test-setup.sh --stop   stop the daemons whose pid files are in <dir>
#
# Environment: COPPER_SLURM_DIR (default /tmp/copper-slurm), COPPER_SLURM_PORT
# (slurmctld's port, default 16817; slurmd uses the next one). Needs root:
# it installs Debian's slurmctld, slurmd, slurm-client and munge when they
# are missing, and slurmd runs jobs as their submitter. Idempotent and safe
# to run concurrently (a lock in <dir>). Messages go to stderr.
set -euo pipefail

dir=${COPPER_SLURM_DIR:-/tmp/copper-slurm}
ctld_port=${COPPER_SLURM_PORT:-16817}
slurmd_port=$((ctld_port + 1))
conf=$dir/slurm.conf
mdir=$dir/munge # munged wants its socket directory world-searchable (0711)
socket=$mdir/munge.socket
ready_bound=60 # seconds for the node to become idle

say() { echo "slurm-test-setup: $*" >&2; }
die() { say "error: $*"; exit 1; }

# alive PID NAME: PID is a live (not zombie) process named NAME.
alive() {
  local stat
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# running PIDFILE NAME: the pid in PIDFILE is a live NAME.
running() {
  [ -s "$1" ] && alive "$(cat "$1" 2>/dev/null)" "$2"
}

# stop_daemon PIDFILE NAME: SIGTERM, up to 10 s, then SIGKILL. The pid
# itself is watched: a daemon removes its pid file before it has exited.
stop_daemon() {
  running "$1" "$2" || return 0
  local pid
  pid=$(cat "$1")
  say "stopping $2 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    alive "$pid" "$2" || { rm -f "$1"; return 0; }
    sleep 0.1
  done
  say "$2 (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}

stop_all() {
  stop_daemon "$dir/slurmd.pid" slurmd
  stop_daemon "$dir/slurmctld.pid" slurmctld
  stop_daemon "$mdir/munged.pid" munged
}

# show_logs: the last lines of every daemon log, for a failure message.
show_logs() {
  local f
  for f in "$dir"/log/*.log "$mdir/munged.log"; do
    [ -f "$f" ] || continue
    echo "---- $f (last 15 lines)" >&2
    tail -n 15 "$f" >&2
  done
}

[ "$(id -u)" = 0 ] || die "run as root (euid $(id -u)): slurmd runs jobs as their submitter and needs root"

mkdir -p "$dir"
exec 9>"$dir/lock"
flock -w 120 9 || die "another slurm-test-setup.sh held $dir/lock for 120 s"

if [ "${1:-}" = --stop ]; then
  stop_all
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument '$1' (usage: $0 [--stop])"

# --- packages -----------------------------------------------------------------
need=()
for pair in slurmctld:slurmctld slurmd:slurmd srun:slurm-client sinfo:slurm-client \
  munged:munge mungekey:munge flock:util-linux; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  # The packages' own services (system munged, slurmd with /etc/slurm) may
  # try to start here; this cluster does not use them.
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
    die "apt-get install ${need[*]} failed"
fi

# --- munge: a private key and daemon ------------------------------------------
mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$mdir"
chmod 0755 "$dir"
chmod 0711 "$mdir"
if [ ! -s "$mdir/munge.key" ]; then
  if ! mungekey --create --keyfile="$mdir/munge.key" 2>/dev/null; then
    dd if=/dev/urandom of="$mdir/munge.key" bs=1024 count=1 status=none
  fi
fi
chmod 0600 "$mdir/munge.key"

# Daemons are started with fd 9 closed: they would otherwise hold the lock
# for as long as they run. A setup that fails stops what it started.
started=()
undo_on_failure() {
  local rc=$? d
  [ "$rc" = 0 ] && return
  for d in "${started[@]}"; do
    case $d in
    munged) stop_daemon "$mdir/munged.pid" munged ;;
    *) stop_daemon "$dir/$d.pid" "$d" ;;
    esac
  done
}
trap undo_on_failure EXIT
if ! running "$mdir/munged.pid" munged; then
  rm -f "$socket" "$socket.lock"
  munged 9>&- --key-file="$mdir/munge.key" --socket="$socket" --pid-file="$mdir/munged.pid" \
    --log-file="$mdir/munged.log" --seed-file="$mdir/munged.seed" ||
    { show_logs; die "munged did not start (its log is above)"; }
  started+=(munged)
fi
munge -n -S "$socket" | unmunge -S "$socket" >/dev/null ||
  { show_logs; die "munge round trip through $socket failed"; }

# --- slurm.conf -----------------------------------------------------------------
host=$(hostname -s)
# slurmd -C prints this host as a node line: CPUs, sockets, cores, threads, memory.
hw=$(slurmd -C | head -n 1) || die "slurmd -C failed"
field() { sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<"$hw"; }
cpus=$(field CPUs) boards=$(field Boards) sockets=$(field SocketsPerBoard)
cores=$(field CoresPerSocket) threads=$(field ThreadsPerCore) mem=$(field RealMemory)
{ [ -n "$cpus" ] && [ -n "$mem" ]; } || die "cannot read CPUs and RealMemory from 'slurmd -C': $hw"

new=$(mktemp "$dir/slurm.conf.XXXXXX")
cat >"$new" <<EOF
# Written by copper's scripts/slurm-test-setup.sh: one host, loopback only.
ClusterName=coppertest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Boards=${boards:-1} SocketsPerBoard=${sockets:-1} CoresPerSocket=${cores:-$cpus} ThreadsPerCore=${threads:-1} RealMemory=$mem State=UNKNOWN
PartitionName=copper Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
chmod 0644 "$new"
if cmp -s "$new" "$conf"; then
  rm -f "$new"
else
  # A changed configuration needs fresh daemons.
  stop_daemon "$dir/slurmd.pid" slurmd
  stop_daemon "$dir/slurmctld.pid" slurmctld
  mv -f "$new" "$conf"
  say "wrote $conf"
fi

# --- daemons --------------------------------------------------------------------
port_busy() { command -v ss >/dev/null 2>&1 && ss -Htln "sport = :$1" | grep -q .; }
if ! running "$dir/slurmctld.pid" slurmctld; then
  port_busy "$ctld_port" && die "port $ctld_port (slurmctld) is taken by another process: set COPPER_SLURM_PORT"
  # -c: start from an empty state; jobs of an earlier run are gone.
  slurmctld -f "$conf" -c 9>&- || { show_logs; die "slurmctld -f $conf failed to start"; }
  started+=(slurmctld)
fi
if ! running "$dir/slurmd.pid" slurmd; then
  port_busy "$slurmd_port" && die "port $slurmd_port (slurmd) is taken by another process: set COPPER_SLURM_PORT"
  slurmd -f "$conf" 9>&- || { show_logs; die "slurmd -f $conf failed to start"; }
  started+=(slurmd)
fi

export SLURM_CONF=$conf
state=""
for _ in $(seq $((ready_bound * 4))); do
  state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
  case $state in idle | mixed | allocated) break ;; esac
  sleep 0.25
done
case $state in
idle | mixed | allocated) ;;
*)
  sinfo -R >&2 || true
  show_logs
  die "node $host is '${state:-unknown}' after ${ready_bound}s, not idle (sinfo -R and the daemon logs are above)"
  ;;
esac
say "node $host is $state (SLURM_CONF=$conf)"
echo "SLURM_CONF=$conf"
echo "STARTED=${started[*]}"
