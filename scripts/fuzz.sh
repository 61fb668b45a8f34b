#!/usr/bin/env bash
# make fuzz: run every fuzz target in the repository for FUZZTIME each.
# Targets are found, not listed: every `func FuzzX(` in a *_test.go file,
# so a target added anywhere is picked up. go test -fuzz takes one package
# and one target per run, hence the loop. Exits non-zero if any target
# finds a crasher (go test writes it under the package's testdata/fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
fuzztime=${FUZZTIME:-15s}
mod=$($GO list -m)
targets=$(git ls-files -co --exclude-standard '*_test.go' 2>/dev/null || find . -name '*_test.go' -not -path './.git/*')
# "dir name" lines, sorted for a stable order
list=$(for f in $targets; do
  sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' "$f" | sed "s|^|$(dirname "$f") |"
done | sort -u)
[ -n "$list" ] || { echo "fuzz: no fuzz targets found" >&2; exit 1; }
n=$(wc -l <<<"$list")
echo "fuzz: $n targets, $fuzztime each"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=()
i=0
while read -r dir name; do
  i=$((i + 1))
  pkg=$mod/${dir#./}
  [ "$dir" = . ] && pkg=$mod
  printf '[%d/%d] %s %s\n' "$i" "$n" "$pkg" "$name"
  if ! $GO test -buildvcs=false -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" </dev/null >"$log" 2>&1; then
    cat "$log"
    failed+=("$pkg $name")
  else
    tail -1 "$log"
  fi
done <<<"$list"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of $n targets failed:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzz: all $n targets passed"
