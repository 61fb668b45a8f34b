#!/usr/bin/env bash
# make bench-controlplane (also run by scripts/bench.sh): the control plane
# at scale, measured here — the all-gather of 10,000 ranks, tree-ready of
# 1,024 in-process nodes, the address book's memory at 20,000 ranks — and
# written into docs/BENCHMARKS.md between the controlplane markers (the
# rest of the file is left as it is). Every number in the section comes
# from this run; the prose around it holds none.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/BENCHMARKS.md}
count=${CONTROLPLANE_COUNT:-3}
progress() { printf '[controlplane +%ss] %s\n' "$SECONDS" "$*" >&2; }

gather_cmd="go test ./bootstrap -run '^\$' -bench 'GatherScale|ResultDecode' -benchtime 3x -count $count"
progress "all-gather, 2,000 and 10,000 ranks ($gather_cmd)"
gather_raw=$(go test ./bootstrap -run '^$' -bench 'GatherScale|ResultDecode' -benchtime 3x -count "$count" -timeout 10m 2>&1 | grep -E '^Benchmark|FAIL|^ok' || true)
ready_cmd="go test ./service -run '^\$' -bench TreeReady1024 -benchtime 1x -count $count"
progress "tree-ready, 1,024 in-process nodes ($ready_cmd)"
ready_raw=$(go test ./service -run '^$' -bench TreeReady1024 -benchtime 1x -count "$count" -timeout 10m 2>&1 | grep -E '^Benchmark|FAIL|^ok' || true)
book_cmd="go test ./book -run '^\$' -bench BookAtScale -benchtime 5x -count $count"
progress "address book memory, 2,000 and 20,000 ranks ($book_cmd)"
book_raw=$(go test ./book -run '^$' -bench BookAtScale -benchtime 5x -count "$count" -timeout 10m 2>&1 | grep -E '^Benchmark|FAIL|^ok' || true)

# metric NAME of the lines matching PAT in RAW: median over the lines
metric() {
  local v
  v=$(awk -v pat="$1" -v m="$2" '$1 ~ pat { for (i = 2; i <= NF; i++) if ($i == m) print $(i-1) }' <<<"$3" | sort -g)
  if [ -z "$v" ]; then echo n/a; else sed -n "$(( ($(wc -l <<<"$v") + 1) / 2 ))p" <<<"$v"; fi
}
range() {
  local v
  v=$(awk -v pat="$1" -v m="$2" '$1 ~ pat { for (i = 2; i <= NF; i++) if ($i == m) print $(i-1) }' <<<"$3" | sort -g)
  if [ -z "$v" ]; then echo n/a; else echo "$(head -1 <<<"$v")–$(tail -1 <<<"$v")"; fi
}
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "not measured"; else if (r + 0 <= t + 0) print "met"; else printf "missed by %.0f%%", (r / t - 1) * 100 }'; }

g10=$(metric 'GatherScale/10000' ms/gather "$gather_raw"); g10r=$(range 'GatherScale/10000' ms/gather "$gather_raw")
g2=$(metric 'GatherScale/2000' ms/gather "$gather_raw")
s10=$(metric 'GatherScale/10000' serve-ms "$gather_raw")
c10=$(metric 'GatherScale/10000' cpu-us/rank "$gather_raw"); c2=$(metric 'GatherScale/2000' cpu-us/rank "$gather_raw")
rb10=$(metric 'GatherScale/10000' result-B "$gather_raw")
dec10=$(metric 'ResultDecode/10000' ns/op "$gather_raw")
rd=$(metric 'TreeReady1024' ms/ready "$ready_raw"); rdr=$(range 'TreeReady1024' ms/ready "$ready_raw")
rs=$(metric 'TreeReady1024' ms/all-started "$ready_raw")
int() { awk -v v="$1" 'BEGIN { if (v == "n/a") print "n/a"; else printf "%.0f", v }'; }
rdepth=$(int "$(metric 'TreeReady1024' depth "$ready_raw")"); rfan=$(int "$(metric 'TreeReady1024' fanout "$ready_raw")")
bh=$(metric 'BookAtScale/20000' held-B/rank "$book_raw"); bk=$(metric 'BookAtScale/20000' held-KiB "$book_raw")
ba=$(metric 'BookAtScale/20000' alloc-B/rank "$book_raw"); bp=$(metric 'BookAtScale/20000' position-B "$book_raw")
ms() { awk -v v="$1" 'BEGIN { if (v == "n/a") print "n/a"; else printf "%.2f", v / 1000 }'; }
nsms() { awk -v v="$1" 'BEGIN { if (v == "n/a") print "n/a"; else printf "%.2f", v / 1e6 }'; }

section=$(cat <<EOT
<!-- controlplane:begin (written by scripts/controlplane-bench.sh; do not edit by hand) -->
## Control plane at scale (issue #13)

Measured by \`scripts/controlplane-bench.sh\` (\`make bench-controlplane\`, also part of \`make bench\`)
on $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`, $(nproc) cores,
load average $(cut -d' ' -f1-3 /proc/loadavg) at the end of the run. Medians of $count runs (range in brackets).

| measurement | result | target | verdict |
|---|---|---|---|
| all-gather of 10,000 ranks over loopback | $(ms "$g10") s [$g10r ms], of which rank 0's \`Serve\` call $(ms "$s10") s | ≤ 5 s | $(verdict "$(ms "$g10")" 5) |
| all-gather of 2,000 ranks, same harness | $(ms "$g2") s | — | — |
| rank 0's own CPU per rank (\`Serve\`, this process only), 2,000 / 10,000 ranks | $c2 / $c10 µs | — | — |
| result rank 0 writes to each rank at 10,000 ranks (header, front-coded DEFLATE book, tag) | $rb10 B | — | — |
| one rank's inflate + parse of a 10,000-rank result | $(nsms "$dec10") ms | — | — |
| tree-ready of 1,024 in-process nodes, depth $rdepth, fan-out $rfan | $(ms "$rd") s [$rdr ms], of which starting 1,024 servers $(ms "$rs") s | — | — |
| address book held per node at 20,000 ranks | $bh B/rank, $bk KiB in all; $ba B/rank allocated while reading; the node's tree position $bp B | — | — |

How they are measured:

* **All-gather** (\`BenchmarkGatherScale\`): rank 0's real \`bootstrap.Serve\` in the benchmark
  process; the ranks in child processes of 5,000 each (the test binary re-executed), every rank its
  own TCP connection over loopback with a tagged hello and a fresh nonce, the whole verdict read
  and its per-rank tag verified. About 100 ranks per run run the complete \`bootstrap.Join\`
  (inflate, parse, own entry checked); the others stop after the tag, because inflating the book is
  each rank's own work on its own node (the row above), which simulated here would be 10,000 ×
  that on these cores. One process cannot hold both ends of 10,000 connections: the hard
  descriptor limit here is $(ulimit -Hn) and raising it needs \`CAP_SYS_RESOURCE\`. The time runs from
  starting the joiner processes (Serve already accepting) until every rank has its verdict and every
  joiner has exited: process start-up is included. Rank 0 and the 10,000 simulated ranks share
  this machine's cores (and its load, above); on a job each rank's share runs on its own node.
  Rank 0's own CPU is the benchmark process's user + system time over the gather (\`Serve\` and
  starting the joiner processes, not the joiners), per rank: what a launch node pays per rank
  whatever the ranks' arrival, and steadier than the wall times on a shared host.
* **Tree-ready** (\`BenchmarkTreeReady1024\`): 1,024 \`service.Start\` at once, no FUSE, each with its
  own host name in the book (as in a job) and the local site's readiness settings (a parent holds a
  probe until it is tree-ready; a parent not yet up is probed with the backoff); until every node is
  tree-ready. All 1,024 nodes share this machine's cores.
* **Address book** (\`BenchmarkBookAtScale\`): \`book.Read\` of a 20,000-line book with Aurora-style
  names, \`tree.ValidateBook\`, \`tree.Locate\` of the deepest rank; live heap after a GC.

Raw output:

    $gather_cmd
$(sed 's/^/    /' <<<"$gather_raw")
    $ready_cmd
$(sed 's/^/    /' <<<"$ready_raw")
    $book_cmd
$(sed 's/^/    /' <<<"$book_raw")
<!-- controlplane:end -->
EOT
)

# Replace the section if the file has one, else append it.
tmp=$(mktemp "$out.XXXXXX")
if grep -q '^<!-- controlplane:begin' "$out" 2>/dev/null; then
  SECTION="$section" awk '
    /^<!-- controlplane:begin/ { print ENVIRON["SECTION"]; skip = 1; next }
    /^<!-- controlplane:end/ { skip = 0; next }
    !skip { print }' "$out" >"$tmp"
else
  { cat "$out" 2>/dev/null; printf '\n%s\n' "$section"; } >"$tmp"
fi
mv "$tmp" "$out"
progress "wrote the control-plane section of $out"
printf '%s\n' "$section"
