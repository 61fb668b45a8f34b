#!/usr/bin/env bash
# make bench-model: calibrate and run the scale model (bench/scalemodel, issue #13) and write its
# section of docs/BENCHMARKS.md (between the scalemodel markers), docs/scalemodel.svg and
# docs/scalemodel-calibration.json (the inputs, so `scalemodel run` can be repeated without
# measuring).
#
#   scripts/bench-model.sh                 # measure: pfsbench replay at N = $MODEL_NODES (1,4,8,16,32);
#                                          # the largest N is held out of every fit
#   scripts/bench-model.sh --from DIR [P]  # reuse a pfsbench run in DIR (scripts/bench.sh does);
#                                          # P: available cores probed before it
#   scripts/bench-model.sh --calibration   # no measurement: re-run the model on the committed
#                                          # docs/scalemodel-calibration.json (its measured rows kept)
#
# Needs root (pfsbench mounts FUSE). The measured rows are one short run on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
doc=docs/BENCHMARKS.md
work=$(mktemp -d /tmp/copper-model.XXXXXX)
trap 'rm -rf "$work"' EXIT
progress() { printf '[bench-model +%ss] %s\n' "$SECONDS" "$*" >&2; }

go build -buildvcs=false -o bin/ ./bench/cmd/scalemodel
cal=docs/scalemodel-calibration.json
if [ "${1:-}" = --calibration ]; then
  pfs=
elif [ "${1:-}" = --from ]; then
  pfs=${2:?--from needs a pfsbench output directory}
  probe=${3:-}
else
  nodes=${MODEL_NODES:-1,4,8,16,32}
  pfs=$work/pfs
  probe=$(bin/scalemodel probe)
  progress "pfsbench replay at N = $nodes (local, direct, copper, staging; 4 processes per node)"
  scripts/pfsbench.sh quick "$pfs" --modes local,direct,copper,staging --workloads replay \
    --replay-nodes "$nodes" --scale-nodes 0 >&2
fi
if [ -n "$pfs" ]; then
  # The launch before tree-ready: rank 0's serve time of an all-gather of
  # 2,000 ranks (the control-plane benchmark's smaller size, seconds here).
  progress "all-gather of 2,000 ranks (go test ./bootstrap -bench GatherScale/2000)"
  # Probed before and after: the serve time is scaled to the cores all ours.
  go test -c -o "$work/bootstrap.test" ./bootstrap
  p1=$(bin/scalemodel probe)
  gather_out=$("$work/bootstrap.test" -test.run '^$' -test.bench 'GatherScale/2000$' -test.benchtime 2x -test.count 1)
  serve=$(awk '{ for (i = 2; i <= NF; i++) if ($i == "serve-ms") v = $(i - 1) } END { print v }' <<<"$gather_out")
  # Rank 0's own CPU per rank: the model's per-rank cost (the serve
  # time's wall also waits for the 2,000 joiners on these same cores).
  gather_cpu=$(awk '{ for (i = 2; i <= NF; i++) if ($i == "cpu-us/rank") v = $(i - 1) } END { print v }' <<<"$gather_out")
  p2=$(bin/scalemodel probe)
  gather=; [ -n "$serve" ] && gather="2000:$serve:$(awk -v a="$p1" -v b="$p2" 'BEGIN { printf "%.3f", (a + b) / 2 }')"
  progress "calibrate (N=1 rows, the pooled rows below the largest N, an in-process round trip, tar on local disk, a CPU probe)"
  worker=; [ -x bin/pfsbench ] && worker=bin/pfsbench
  bin/scalemodel calibrate --results "$pfs/results.json" ${probe:+--available "$probe"} ${worker:+--worker "$worker"} \
    ${gather:+--gather "$gather"} ${gather_cpu:+--gather-cpu "$gather_cpu"} --out "$cal"
fi
progress "run the model (validation rows and the projection)"
bin/scalemodel run --calibration "$cal" --out "$work/model" --command "bin/scalemodel run --calibration $cal --out DIR"
cp "$work/model/scalemodel.svg" docs/scalemodel.svg

# Replace the section between the markers, or append it.
section=$work/section.md
{ echo '<!-- scalemodel:begin (written by scripts/bench-model.sh) -->'; cat "$work/model/model.md"; echo '<!-- scalemodel:end -->'; } >"$section"
if grep -q '^<!-- scalemodel:begin' "$doc"; then
  awk -v f="$section" '
    /^<!-- scalemodel:begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
    /^<!-- scalemodel:end/ { skip = 0; next }
    !skip { print }' "$doc" >"$work/doc.md"
else
  { cat "$doc"; echo; cat "$section"; } >"$work/doc.md"
fi
cp "$work/doc.md" "$doc"
progress "wrote the scale model section of $doc, docs/scalemodel.svg, docs/scalemodel-calibration.json"
