#!/usr/bin/env bash
# Job startup on an emulated parallel filesystem (issue #5): installs what
# the benchmark needs, builds it and runs it.
#
#   scripts/pfsbench.sh quick [OUT] [pfsbench flags...]   # < 2 min + the scale-model rows (minutes; --scale-nodes 0 drops them)
#   scripts/pfsbench.sh full  [OUT] [pfsbench flags...]   # < 15 min
#
# OUT (default ${TMPDIR:-/tmp}/copper-pfsbench-<mode>) receives results.json,
# results.csv, bench-results.md (a fragment for docs/BENCHMARKS.md) and
# pfsbench.svg. Needs root: the emulator and copper mount FUSE directly.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-quick}
case "$mode" in quick | full) ;; *) echo "usage: $0 quick|full [OUT] [pfsbench flags...]" >&2; exit 2 ;; esac
shift || true
out=${1:-${TMPDIR:-/tmp}/copper-pfsbench-$mode}
shift || true

scripts/setup-test-deps.sh # fuse3, python3-numpy, ...
# strace records the import once; pandas (four small packages without
# recommends) makes `--import numpy,pandas` available. setup-test-deps.sh
# installs both, and SciPy without recommends (for scripts/issue9-bench.sh);
# the check stays for a machine set up before.
need=()
command -v strace >/dev/null 2>&1 || need+=(strace)
/usr/bin/python3 -c 'import pandas' >/dev/null 2>&1 || need+=(python3-pandas)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "pfsbench: missing packages: ${need[*]}; run as root or: sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
    exit 1
  fi
  echo "pfsbench: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go build -buildvcs=false -o bin/ ./cmd/copper-node ./bench/cmd/slowpfs ./bench/cmd/pfsbench
exec bin/pfsbench "--$mode" --out "$out" "$@"
