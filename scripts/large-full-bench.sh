#!/usr/bin/env bash
# The large-file workload at the issue's size (issue #10: 32 local nodes
# each read a 1 GiB file), alone, and its section of docs/BENCHMARKS.md
# between the large-full markers (replaced if there, else appended).
#
#   scripts/large-full-bench.sh [OUT]        # run pfsbench --workloads large, then write the section
#   scripts/large-full-bench.sh --from DIR   # write the section from DIR/results.json (make bench's own run)
#
# LARGE_NODES (32), LARGE_BYTES (1 GiB), LARGE_SCALE_BYTES (256 MiB, the
# scale model's file; 0 = none), BENCH_DOC (docs/BENCHMARKS.md; - = stdout).
# Before running, the file size is halved until the spill directories
# (N × (file + one chunk)), the emulator's backing copies and 2 GiB of
# headroom fit the free space of ${TMPDIR:-/tmp}; the section then says so.
# Needs root (FUSE mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
doc=${BENCH_DOC:-docs/BENCHMARKS.md}
progress() { printf '[large-full +%ss] %s\n' "$SECONDS" "$*" >&2; }

from=""
if [ "${1:-}" = --from ]; then
  from=${2:?usage: $0 --from DIR}
  [ -f "$from/results.json" ] || { echo "$0: $from/results.json: no such file" >&2; exit 1; }
fi
# make build builds ./cmd/... only; the driver and the emulator too.
go build -buildvcs=false -o bin/ ./cmd/copper-node ./bench/cmd/slowpfs ./bench/cmd/pfsbench
note=""
if [ -z "$from" ]; then
  scripts/setup-test-deps.sh # fuse3, python3, libllvm15 (the .so every node dlopens)
  out=${1:-${TMPDIR:-/tmp}/copper-large-full}
  nodes=${LARGE_NODES:-32}
  want=${LARGE_BYTES:-1073741824}
  scale=${LARGE_SCALE_BYTES:-268435456}
  for v in nodes want scale; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$0: $v=${!v}: not a whole number" >&2; exit 2; }
  done
  chunk=$((4 << 20)) # pfsbench's chunk_bytes
  free=$(($(df -Pk "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $4 }') * 1024))
  # need BYTES: the peak on disk of a run with file size BYTES: the
  # backing copies (the file, the served file, the scale file) and the
  # larger of the two copper passes' spill directories, plus headroom.
  need() {
    local spill=$((nodes * ($1 + chunk))) sspill=$((nodes * (scale + chunk)))
    echo $((2 * $1 + scale + (spill > sspill ? spill : sspill) + (2 << 30)))
  }
  bytes=$want
  while [ "$(need "$bytes")" -gt "$free" ] && [ "$bytes" -gt $((64 << 20)) ]; do bytes=$((bytes / 2)); done
  if [ "$(need "$bytes")" -gt "$free" ]; then
    echo "$0: ${TMPDIR:-/tmp} has $((free >> 20)) MiB free; $nodes nodes need $(($(need "$bytes") >> 20)) MiB even at $((bytes >> 20)) MiB" >&2
    exit 1
  fi
  if [ "$bytes" != "$want" ]; then
    note="Asked for $((want >> 20)) MiB: ${TMPDIR:-/tmp} had $((free >> 20)) MiB free, and $nodes spill directories of that size with the backing copies would need $(($(need "$want") >> 20)) MiB."
  fi
  progress "pfsbench: $nodes nodes × $((bytes >> 20)) MiB (scale model $((scale >> 20)) MiB); $((free >> 20)) MiB free, the run needs at most $(($(need "$bytes") >> 20)) MiB"
  bin/pfsbench --full --workloads large --scale-nodes 0 --large-nodes "$nodes" --large-bytes "$bytes" \
    --large-scale-bytes "$scale" --out "$out" || progress "pfsbench failed; its results.json says how, and so will the section"
  from=$out
fi

section=$(bin/pfsbench large-section "$from/results.json" "$note")
if [ "$doc" = - ]; then
  printf '%s\n' "$section"
  exit 0
fi
tmp=$(mktemp "$doc.XXXXXX")
if grep -q '^<!-- large-full:begin' "$doc" 2>/dev/null; then
  SECTION="$section" awk '
    /^<!-- large-full:begin/ { print ENVIRON["SECTION"]; skip = 1; next }
    /^<!-- large-full:end/ { skip = 0; next }
    !skip { print }' "$doc" >"$tmp"
else
  { cat "$doc" 2>/dev/null; printf '\n%s\n' "$section"; } >"$tmp"
fi
mv "$tmp" "$doc"
progress "wrote the large-full section of $doc"
