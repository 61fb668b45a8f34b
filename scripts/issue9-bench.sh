#!/usr/bin/env bash
# Issue #9's node-side targets, measured side by side in one run on real
# copper-node processes with non-root mounts (part of make bench and
# make bench-quick; scripts/bench.sh puts the output in docs/BENCHMARKS.md):
#
#   scripts/issue9-bench.sh quick|full OUT [DOC]
#
# * storm: N=8 nodes × 4 readers, each reader `find DIR -type f -exec cat {} +`
#   over a local tree of 1,500 small files in 30 package directories:
#   native, copper cold (fresh nodes) and copper warm (the same nodes again),
#   alternating in every round; medians of the rounds.
# * requests: every FUSE request reaching a non-root node during a cold and
#   then a warm `import numpy` through its mount, by opcode, counted from the
#   node's own go-fuse request trace (log_level 5).
# * round trips: a cold `import numpy, scipy, pandas` through a fresh
#   non-root node: the requests it forwarded to its parent (its own
#   counters) against the directories the import touched plus the files it
#   read (its strace).
#
# ISSUE9_ONLY=open-heavy runs the storm alone and prints its table (no
# section is written); ISSUE9_ROUNDS sets the rounds.
#
# Writes OUT/issue9-section.md: a section of docs/BENCHMARKS.md between the
# issue9 markers (its targets table with verdicts, the per-round numbers,
# the per-opcode table, how each side is counted). scripts/bench.sh puts it
# under its own issue #9 table; given DOC, this script rewrites that section
# of DOC itself (appending it if DOC has none) and leaves the rest as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-quick}
case "$mode" in quick | full) ;; *) echo "usage: $0 quick|full OUT [DOC]" >&2; exit 2 ;; esac
out=${2:?usage: $0 quick|full OUT [DOC]}
doc=${3:-}
mkdir -p "$out"

scripts/setup-test-deps.sh >&2 # fuse3, numpy, scipy, pandas, strace
go build -buildvcs=false -o bin/ ./cmd/copper-node ./cmd/copper-launch
BIN=$PWD/bin
work=$(mktemp -d /tmp/copper-issue9.XXXXXX)
source scripts/local-nodes.sh
# launch ARGS...: start_local_nodes with its chatter in a file, shown on failure.
launch() { start_local_nodes "$@" >/dev/null 2>"$work/launch.err" || { cat "$work/launch.err" >&2; return 1; }; }
cleanup() { stop_local_nodes; rm -rf "$work"; }
trap cleanup EXIT
progress() { printf '[issue9 %s +%ss] %s\n' "$mode" "$SECONDS" "$*" >&2; }

if [ "$mode" = full ]; then rounds=5; else rounds=3; fi
rounds=${ISSUE9_ROUNDS:-$rounds}
export LC_ALL=C # sort and join agree on the order of opcodes
nodes=8
readers=4
python=/usr/bin/python3
site=/usr/lib/python3/dist-packages
pyenv=(env PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 OPENBLAS_NUM_THREADS=1)

# --- the storm tree: 30 package directories of 50 small files each -------
storm=$work/storm
"$python" - "$storm" <<'EOF'
import os, random, sys
root, rnd = sys.argv[1], random.Random(9)
for d in range(30):
    pkg = os.path.join(root, "pkg%02d" % d)
    os.makedirs(pkg)
    for f in range(50):
        with open(os.path.join(pkg, "mod%02d.py" % f), "wb") as out:
            out.write(rnd.randbytes(rnd.randint(200, 16384)))
EOF
files=$(find "$storm" -type f | wc -l)
dirs=$(find "$storm" -mindepth 1 -type d | wc -l)
bytes=$(du -sb "$storm" | cut -f1)

# pass ROOT...: readers per root, all at once, each reading every file of
# ROOT$storm; prints the wall seconds until the last one finished.
pass() {
  local t0 t1 r i p pids=()
  t0=$(date +%s.%N)
  for r in "$@"; do
    for ((i = 0; i < readers; i++)); do
      find "$r$storm" -type f -exec cat {} + >/dev/null &
      pids+=($!)
    done
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "issue9-bench: a reader under ${1:-/} failed" >&2; return 1; }; done
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
# node_pid MOUNT: the pid of the copper-node serving MOUNT.
node_pid() { "$BIN/copper-node" stats --json --mount "$1" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["pid"])'; }
# cpu_ticks PID...: their user + system clock ticks.
cpu_ticks() { local p t=0; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)
# forwarded MOUNT: requests the node serving MOUNT sent to its parent, all ops.
# cold_requests MOUNT...: the FUSE LOOKUPs and READs the nodes serving
# them handled and the small files they pushed into the kernel's page
# cache, per node (their own counters): "lookups reads pushed".
cold_requests() {
  local m
  for m in "$@"; do "$BIN/copper-node" stats --json --mount "$m"; done | "$python" -c '
import json, sys
d = json.JSONDecoder(); text = sys.stdin.read(); i = 0; lk = rd = pu = n = 0
while i < len(text):
    if text[i].isspace(): i += 1; continue
    s, i = d.raw_decode(text, i); n += 1
    c = s.get("fuse_calls") or {}
    lk += c.get("lookup", 0); rd += c.get("read", 0); pu += (s.get("kernel_pushes") or {}).get("pushed", 0)
print("%d %d %d" % (lk / n, rd / n, pu / n))'
}
forwarded() { "$BIN/copper-node" stats --json --mount "$1" | "$python" -c 'import json, sys; print(sum(o["forwarded"] for o in json.load(sys.stdin)["node"]["ops"]))'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "not measured"; else if (r + 0 <= t + 0) print "met"; else printf "missed by %.0f%%", (r / t - 1) * 100 }'; }

# --- storm: native, cold, warm in every round ------------------------------
native_roots=()
for ((i = 0; i < nodes; i++)); do native_roots+=(""); done
leaves=()
round_rows=""
nat_all="" cold_all="" warm_all="" ccpu_all="" wcpu_all="" coldr_all="" warmr_all=""
creq_rows=""
for ((round = 1; round <= rounds; round++)); do
  progress "storm round $round/$rounds: native, then $nodes fresh non-root nodes cold, then warm"
  nat=$(pass "${native_roots[@]}")
  # rank 0 is the root and runs no readers: every reader's node is a non-root.
  launch $((nodes + 1))
  leaves=("${mounts[@]:1}")
  pids=()
  for m in "${leaves[@]}"; do pids+=("$(node_pid "$m")"); done
  c0=$(cpu_ticks "${pids[@]}")
  cold=$(pass "${leaves[@]}")
  c1=$(cpu_ticks "${pids[@]}")
  read -r clk crd cpu_pushed < <(cold_requests "${leaves[@]}")
  creq_rows+="$clk $crd $cpu_pushed"$'\n'
  warm=$(pass "${leaves[@]}")
  c2=$(cpu_ticks "${pids[@]}")
  # native again, right after warm (the nodes idle): each copper pass has
  # a native pass next to it.
  nat2=$(pass "${native_roots[@]}")
  stop_local_nodes
  ccpu=$(awk -v t=$((c1 - c0)) -v n="$nodes" -v hz="$hz" 'BEGIN { printf "%.3f", t / hz / n }')
  wcpu=$(awk -v t=$((c2 - c1)) -v n="$nodes" -v hz="$hz" 'BEGIN { printf "%.3f", t / hz / n }')
  round_rows+="| $round | $nat | $cold | $warm | $nat2 | $(ratio "$cold" "$nat")× | $(ratio "$warm" "$nat2")× | $ccpu | $wcpu | $clk | $crd | $cpu_pushed |"$'\n'
  nat_all+="$nat"$'\n'"$nat2"$'\n' cold_all+="$cold"$'\n' warm_all+="$warm"$'\n' ccpu_all+="$ccpu"$'\n' wcpu_all+="$wcpu"$'\n'
  coldr_all+="$(ratio "$cold" "$nat")"$'\n' warmr_all+="$(ratio "$warm" "$nat2")"$'\n'
done
nat_m=$(median <<<"${nat_all%$'\n'}"); cold_m=$(median <<<"${cold_all%$'\n'}"); warm_m=$(median <<<"${warm_all%$'\n'}")
ccpu_m=$(median <<<"${ccpu_all%$'\n'}"); wcpu_m=$(median <<<"${wcpu_all%$'\n'}")
# The verdicts take the median of the per-round ratios: each round's runs
# are seconds apart, so they share that moment's load on this shared host.
warm_r=$(median <<<"${warmr_all%$'\n'}"); cold_r=$(median <<<"${coldr_all%$'\n'}")
# rrange: "min–max" of a list of ratios
rrange() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
warm_range=$(rrange <<<"${warmr_all%$'\n'}"); cold_range=$(rrange <<<"${coldr_all%$'\n'}")
if [ "${ISSUE9_ONLY:-}" = open-heavy ]; then
  printf '| round | native s | copper cold s | copper warm s | native again s | cold / native | warm / native again | cold copper-node CPU s/node | warm copper-node CPU s/node | cold LOOKUPs/node | cold READs/node | cold files pushed/node |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n%s' "$round_rows"
  echo "cold ${cold_r}x (range ${cold_range}), warm ${warm_r}x (range ${warm_range}); load average $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi

# --- requests by opcode for a cold, then a warm import numpy ---------------
progress "FUSE requests by opcode: cold and warm import numpy through rank 1 (log_level 5)"
launch 2 --log-level 5
leaf=${mounts[1]}
pid=$(node_pid "$leaf")
log=$(ls "$work"/logs/local/logs/*-"$pid"-output.log)
import_cmd=("${pyenv[@]}" "PYTHONPATH=$leaf$site" "$python" -c "import numpy, sys; sys.exit(0 if numpy.__file__.startswith('$leaf') else 'numpy not from the mount: ' + numpy.__file__)")
import_show="${pyenv[*]:1} PYTHONPATH=<rank 1 mount>$site $python -c 'import numpy'"
# counts: opcode count lines of the requests in the node's trace so far
counts() { grep -o 'msg="rx [0-9]*: [A-Z_0-9]*' "$log" | awk '{ n[$3]++ } END { for (o in n) print o, n[o] }' | sort; }
# ioctls: the ioctl commands in the trace so far, one per request
ioctls() { { grep 'msg="rx [0-9]*: IOCTL' "$log" || true; } | sed -n 's/.* Cmd \(0x[0-9a-fA-F]*\).*/\1/p'; }
sleep 1
q0=$(counts); i0=$(ioctls | wc -l)
"${import_cmd[@]}"
sleep 1
q1=$(counts); i1=$(ioctls | wc -l)
"${import_cmd[@]}"
sleep 1
q2=$(counts)
ioctl_cmds=$(ioctls | tail -n +$((i1 + 1)) | sort | uniq -c | awk '{ printf "%s%s×%s", sep, $1, $2; sep = ", " }')
cold_ioctl_cmds=$(ioctls | sed -n "$((i0 + 1)),${i1}p" | sort | uniq -c | awk '{ printf "%s%s×%s", sep, $1, $2; sep = ", " }')
stop_local_nodes
# delta A B: per opcode, B minus A, as "OP N" lines (zero deltas dropped)
delta() { join -a2 -e0 -o '0,1.2,2.2' <(echo "$1") <(echo "$2") | awk '$3 - $2 > 0 { print $1, $3 - $2 }'; }
cold_q=$(delta "$q0" "$q1"); warm_q=$(delta "$q1" "$q2")
opcodes=$(printf '%s\n%s\n' "$cold_q" "$warm_q" | awk 'NF { print $1 }' | sort -u)
op_rows=""
for o in $opcodes; do
  op_rows+="| $o | $(awk -v o="$o" '$1 == o { print $2 }' <<<"$cold_q" | grep . || echo 0) | $(awk -v o="$o" '$1 == o { print $2 }' <<<"$warm_q" | grep . || echo 0) |"$'\n'
done
warm_total=$(awk '{ s += $2 } END { print s + 0 }' <<<"$warm_q")
warm_other=$(awk '$1 != "IOCTL" { s += $2 } END { print s + 0 }' <<<"$warm_q")
warm_ioctl=$(awk '$1 == "IOCTL" { s += $2 } END { print s + 0 }' <<<"$warm_q")
# The terminal ioctls: TCGETS (0x5401) and the like, 0x54xx.
nonterm=$(ioctls | tail -n +$((i1 + 1)) | awk 'tolower($1) !~ /^0x54[0-9a-f][0-9a-f]$/ { n++ } END { print n + 0 }')
if [ "$warm_other" = 0 ] && [ "$nonterm" = 0 ]; then req_verdict=met; else req_verdict="missed: $warm_other requests other than IOCTL, $nonterm non-terminal ioctls"; fi

# --- the warm import's gap: the ioctls it cannot avoid ---------------------
# Python asks isatty (TCGETS) of every file it opens for buffering; the
# kernel sends each such ioctl on a FUSE file to the daemon, whatever it
# answered before. Timed here: the warm import, alternating local disk and
# the mount, and one isatty on an open file, alternating likewise.
progress "warm import numpy and isatty: local disk vs rank 1's mount, alternating"
launch 2
leaf=${mounts[1]}
warm_import() { # ROOT: seconds of one import numpy with ROOT$site first on the path
  "${pyenv[@]}" "PYTHONPATH=$1$site" "$python" -c "import time; t = time.perf_counter(); import numpy; print('%.6f' % (time.perf_counter() - t))"
}
isatty_ns() { # FILE: ns per isatty() of an open FILE
  "$python" -c "import sys, time; f = open(sys.argv[1], 'rb'); n = 5000; t = time.perf_counter_ns(); [f.isatty() for _ in range(n)]; print((time.perf_counter_ns() - t) // n)" "$1"
}
warm_import "$leaf" >/dev/null # warm the mount
wi_local="" wi_mount="" tty_local="" tty_mount=""
for ((round = 1; round <= rounds + 2; round++)); do
  wi_local+="$(warm_import "")"$'\n'; wi_mount+="$(warm_import "$leaf")"$'\n'
  tty_local+="$(isatty_ns "$site/numpy/__init__.py")"$'\n'; tty_mount+="$(isatty_ns "$leaf$site/numpy/__init__.py")"$'\n'
done
stop_local_nodes
wi_l=$(median <<<"${wi_local%$'\n'}"); wi_m=$(median <<<"${wi_mount%$'\n'}")
tty_l=$(median <<<"${tty_local%$'\n'}"); tty_m=$(median <<<"${tty_mount%$'\n'}")
wi_gap_ms=$(awk -v a="$wi_m" -v b="$wi_l" 'BEGIN { printf "%.1f", (a - b) * 1e3 }')
ioctl_ms=$(awk -v k="$warm_ioctl" -v a="$tty_m" -v b="$tty_l" 'BEGIN { printf "%.1f", k * (a - b) / 1e6 }')
ioctl_share=$(awk -v x="$ioctl_ms" -v g="$wi_gap_ms" 'BEGIN { if (g <= 0) print "n/a"; else printf "%.0f%%", x / g * 100 }')

# --- cold round trips for import numpy, scipy, pandas ----------------------
progress "cold round trips: import numpy, scipy, pandas through a fresh rank 1, under strace"
launch 2
leaf=${mounts[1]}
trace=$work/import.strace
rt_import=(env PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 OPENBLAS_NUM_THREADS=1 "PYTHONPATH=$leaf$site" "$python" -c "import numpy, scipy, pandas, sys; sys.exit(0 if pandas.__file__.startswith('$leaf') else 'pandas not from the mount')")
f0=$(forwarded "$leaf")
strace -f -qq -e trace=%file,getdents64 -o "$trace" "${rt_import[@]}"
f1=$(forwarded "$leaf")
fwd_by_op=$("$BIN/copper-node" stats --json --mount "$leaf" | "$python" -c 'import json, sys; print(", ".join("%s %d" % (o["op"], o["forwarded"]) for o in json.load(sys.stdin)["node"]["ops"] if o["forwarded"]))')
# Small files that came with their directories (dir_files_max_bytes).
shipped=$("$BIN/copper-node" stats --json --mount "$leaf" | "$python" -c 'import json, sys; f = json.load(sys.stdin)["node"]["cache"]["dir_files"]; print("%d files (%.1f MB) came with their directories, %d of them read, %d never" % (f["stored"], f["bytes"] / 1e6, f["read"], f["unread"]))')
stop_local_nodes
trips=$((f1 - f0))
# Directories touched: every directory under the mount on the way to a
# path the import named (each must be looked up or listed in), and every
# directory it opened; files read: distinct regular files it opened.
read -r touched read_files named < <("$python" - "$trace" "$leaf" <<'EOF'
import os, re, sys
trace, mnt = sys.argv[1], sys.argv[2]
quoted = re.compile(r'"((?:[^"\\]|\\.)*)"')
dirs, files, names = set(), set(), set()
for line in open(trace, errors="replace"):
    for raw in quoted.findall(line):
        if not raw.startswith(mnt + "/") and raw != mnt:
            continue
        p = os.path.normpath(raw[len(mnt):] or "/")
        names.add(p)
        d = os.path.dirname(p) if p != "/" else "/"
        while True:
            dirs.add(d)
            if d == "/":
                break
            d = os.path.dirname(d)
        ok = re.search(r"\) = \d+$", line.rstrip())
        if ok and re.search(r"\bopenat\(", line):
            if "O_DIRECTORY" in line:
                dirs.add(p)
            else:
                files.add(p)
print(len(dirs), len(files), len(names))
EOF
)
budget=$((touched + read_files))
trips_r=$(ratio "$trips" "$budget")

# --- the section ---------------------------------------------------------------
cat >"$out/issue9-section.md" <<EOT
<!-- issue9:begin (written by scripts/issue9-bench.sh; do not edit by hand) -->
## Targets (issue #9) on real nodes

Numbers from \`scripts/issue9-bench.sh $mode\`, $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`, in ${SECONDS} s; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end. Real copper-node processes started by \`copper-launch --local\`, every measured mount a non-root node's; ratios side by side in one run.

| measurement | result | target | verdict |
|---|---|---|---|
| warm open-heavy read, N=$nodes non-root nodes × $readers readers, every file of $files small files, copper vs native | ${warm_r}× (median of $rounds alternating rounds' ratios, range ${warm_range}; median times $warm_m s vs native $nat_m s; copper-node CPU $wcpu_m s/node) | ≤ 1.2× | $(verdict "$warm_r" 1.2) |
| cold open-heavy read, same, fresh nodes | ${cold_r}× (per-round range ${cold_range}; median times $cold_m s vs $nat_m s; copper-node CPU $ccpu_m s/node) | ≤ 3× | $(verdict "$cold_r" 3) |
| FUSE requests reaching a non-root node for a warm \`import numpy\` | $warm_total ($warm_ioctl IOCTL${ioctl_cmds:+: $ioctl_cmds}; $warm_other other) | only the terminal ioctls | $req_verdict |
| cold round trips to the parent for one \`import numpy, scipy, pandas\` on a fresh non-root node | $trips (${trips_r}× of the budget: $touched directories touched + $read_files files read) | ≤ directories touched + files read | $(verdict "$trips" "$budget") |

### Open-heavy read

The tree: $files files, $dirs package directories, $((bytes / 1024)) KiB, generated on this machine's disk (\`$work/storm\`, random bytes, 200 B–16 KiB per file). Each round runs, one after another: *native* — $nodes × $readers readers at once, every one \`find <tree> -type f -exec cat {} +\` on the local tree; *cold* — \`copper-launch --local $((nodes + 1))\` (rank 0 is the root and runs no reader), then $readers such readers on each of ranks 1–$nodes through its own mount (all non-root), timed from the readers' start (tree-ready excluded); *warm* — the same again on the same nodes; *native again* — the native pass once more, right after. Cold is compared with the native pass before it, warm with the one after it; the verdicts take the median of the per-round ratios (each ratio's two runs are seconds apart and share that moment's load on this shared host). copper-node CPU is the user + system time the $nodes reader nodes' daemons spent during the pass (\`/proc/<pid>/stat\`), per node. The cold LOOKUPs and READs are the FUSE requests each reader node handled by the end of the cold pass, and the files pushed are the small files whose bytes it stored in the kernel's page cache after a READDIRPLUS reply (so that no READ of them came): each node's own counters (\`copper-node stats --json\`: \`fuse_calls\`, \`kernel_pushes\`), the mean over the $nodes nodes.

| round | native s | copper cold s | copper warm s | native again s | cold / native | warm / native again | cold copper-node CPU s/node | warm copper-node CPU s/node | cold LOOKUPs/node | cold READs/node | cold files pushed/node |
|---|---|---|---|---|---|---|---|---|---|---|---|
${round_rows%$'\n'}

### FUSE requests reaching a non-root node, by opcode

A 2-node copper (\`copper-launch --local 2 --log-level 5\`); \`import numpy\` through rank 1's mount twice (\`$import_show\`, checking that numpy came from the mount). Counted from rank 1's own go-fuse request trace (each \`rx\` line of its log is one request the kernel sent the daemon, whether copper handles the opcode or not). Cold ioctl commands: ${cold_ioctl_cmds:-none}; warm: ${ioctl_cmds:-none}.

| opcode | cold import | warm import |
|---|---|---|
${op_rows%$'\n'}

### Warm import: what the mount still costs

A fresh 2-node copper, \`import numpy\` warmed through rank 1's mount once, then $((rounds + 2)) alternating rounds of the same import from local disk and through the mount (\`PYTHONPATH=<root>$site\`, timed inside Python), and of 5,000 \`isatty()\` calls on an open file (the TCGETS ioctl Python issues for every file it opens). Medians: the import $(awk -v x="$wi_m" 'BEGIN { printf "%.1f", x * 1e3 }') ms through the mount vs $(awk -v x="$wi_l" 'BEGIN { printf "%.1f", x * 1e3 }') ms local ($(ratio "$wi_m" "$wi_l")×, a difference of $wi_gap_ms ms); one isatty $tty_m ns through the mount vs $tty_l ns local. The warm import sends $warm_ioctl such ioctls (the opcode table above), all of which the kernel forwards to the daemon whatever it answered before: $warm_ioctl × ($tty_m − $tty_l) ns = $ioctl_ms ms ($ioctl_share of the difference, when the mount was the slower). The rest is the kernel's FUSE path on every path walk and stat (see the warm-stat table) and the noise of this shared machine.

### Cold round trips for \`import numpy, scipy, pandas\`

A fresh 2-node copper; the import runs once through rank 1's mount under \`strace -f -qq -e trace=%file,getdents64\`. *Round trips* are rank 1's own counters: the requests it forwarded to its parent during the import (\`copper-node stats --json\`, the sum of \`forwarded\` over every operation; by operation, since the node started: ${fwd_by_op:-none}; $shipped). *Directories touched* are counted from the trace: every directory under the mount on the way to a path the import named (each such directory must be looked up or listed in), plus every directory it opened; *files read* are the distinct paths under the mount it opened successfully without O_DIRECTORY. The import named $named distinct paths under the mount.
<!-- issue9:end -->
EOT

if [ -n "$doc" ]; then
  # Replace the section if DOC has one, else append it.
  tmp=$(mktemp "$doc.XXXXXX")
  if grep -q '^<!-- issue9:begin' "$doc" 2>/dev/null; then
    SECTION="$(cat "$out/issue9-section.md")" awk '
      /^<!-- issue9:begin/ { print ENVIRON["SECTION"]; skip = 1; next }
      /^<!-- issue9:end/ { skip = 0; next }
      !skip { print }' "$doc" >"$tmp"
  else
    { cat "$doc" 2>/dev/null; printf '\n%s\n' "$(cat "$out/issue9-section.md")"; } >"$tmp"
  fi
  mv "$tmp" "$doc"
  progress "wrote the issue #9 section of $doc"
fi
progress "wrote $out/issue9-section.md"
