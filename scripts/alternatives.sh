#!/usr/bin/env bash
# Keeps the machine's package alternatives as they were across a package install
# (e.g. Open MPI's openmpi-bin, whose `mpirun` alternative outranks MPICH's):
#
#   scripts/alternatives.sh save FILE      record every group (auto/manual, value) and every
#                                          alternative's priority, and where mpiexec/mpirun lead
#   ... apt-get install ...
#   scripts/alternatives.sh restore FILE   put every group back; fail if mpiexec or mpirun
#                                          would now run something else
#
# restore, per group:
#   * manual before: set to the same path again.
#   * auto before: back to auto. Where an alternative added since outranks the one auto chose
#     before, it is registered again (same path and slaves) one below the old best priority,
#     so that auto still chooses the same path. (An upgrade of that package re-registers its
#     own priority; run this script's save/restore around upgrades too, or pin the group.)
#   * new since save: MPI groups (mpi, mpi-*, mpirun, mpiexec, *openmpi*, *mpich*) are removed, so that `mpiexec` and
#     `mpirun` lead where they led before (or nowhere); the package's commands stay under
#     their own names (mpirun.openmpi, mpiexec.mpich). Other new groups are left alone.
# Then readlink -f of `mpiexec` and `mpirun` in PATH must be what save recorded.
#
# COPPER_ALTERNATIVES_OPTS passes options to every update-alternatives call (the tests use
# --altdir and --admindir to work on a private database, never the machine's).
set -euo pipefail

# shellcheck disable=SC2206 # word splitting is the point
UA_OPTS=(${COPPER_ALTERNATIVES_OPTS:-})
ua() { update-alternatives "${UA_OPTS[@]}" "$@"; }

# resolve CMD: where CMD leads in PATH, or "none".
resolve() {
  local p
  p=$(command -v "$1" 2>/dev/null) || { echo none; return; }
  readlink -f "$p" || echo "$p"
}

# groups: every alternatives group name.
groups() { ua --get-selections | awk '{ print $1 }'; }

# save FILE: lines "group NAME STATUS VALUE", "alt NAME PATH PRIORITY", "cmd NAME TARGET".
save() {
  local out=$1 g
  : > "$out.tmp"
  for g in $(groups); do
    ua --query "$g" | awk -v g="$g" '
      /^Status: / { status = $2 }
      /^Value: /  { value = $2 }
      /^Alternative: / { alt = $2 }
      /^Priority: / { alts = alts "alt " g " " alt " " $2 "\n" }
      END { printf "group %s %s %s\n%s", g, status, (value == "" ? "none" : value), alts }
    ' >> "$out.tmp"
  done
  printf 'cmd mpiexec %s\ncmd mpirun %s\n' "$(resolve mpiexec)" "$(resolve mpirun)" >> "$out.tmp"
  mv "$out.tmp" "$out"
}

# reregister GROUP PATH PRIORITY: register PATH in GROUP again, with its slaves, at PRIORITY.
reregister() {
  local g=$1 path=$2 prio=$3 link
  local -a slaves=()
  local q
  q=$(ua --query "$g")
  link=$(awk '/^Link: / { print $2; exit }' <<< "$q")
  # The group's slave links come first (" name link" under the first "Slaves:"), then each
  # alternative's slave paths (" name path" under its own "Slaves:").
  while read -r name slink spath; do
    slaves+=(--slave "$slink" "$name" "$spath")
  done < <(awk -v want="$path" '
    /^Slaves:/ { inslaves = 1; next }
    /^ / && inslaves && section == 0 { link[$1] = $2; next }
    /^ / && inslaves && section == 1 && cur == want { print $1, link[$1], $2; next }
    { inslaves = 0 }
    /^Status: / { section = 0 }
    /^Alternative: / { section = 1; cur = $2 }
  ' <<< "$q")
  ua --install "$link" "$g" "$path" "$prio" "${slaves[@]}" > /dev/null
}

restore() {
  local in=$1 g status value kind name path prio best changed=0 failed=0
  [ -r "$in" ] || { echo "alternatives: no saved state $in" >&2; exit 1; }
  declare -A was_status=() was_value=() was_alt=()
  while read -r kind name path prio; do
    case $kind in
    group) was_status[$name]=$path was_value[$name]=$prio ;;
    alt) was_alt["$name $path"]=$prio ;;
    esac
  done < "$in"

  for g in $(groups); do
    if [ -z "${was_status[$g]:-}" ]; then
      case ${g,,} in
      mpi | mpi-* | mpirun | mpiexec | *openmpi* | *mpich*)
        echo "alternatives: removing group $g, new since the install (mpiexec and mpirun stay as they were)"
        ua --remove-all "$g"
        changed=1
        ;;
      esac
      continue
    fi
    status=${was_status[$g]} value=${was_value[$g]}
    local now_status now_value
    now_status=$(ua --query "$g" | awk '/^Status: / { print $2 }')
    now_value=$(ua --query "$g" | awk '/^Value: / { print $2 }')
    [ -n "$now_value" ] || now_value=none
    if [ "$now_status" = "$status" ] && [ "$now_value" = "$value" ]; then
      continue
    fi
    changed=1
    if [ "$status" = manual ]; then
      echo "alternatives: $g back to manual $value (was changed to $now_status $now_value)"
      ua --set "$g" "$value" > /dev/null
      continue
    fi
    # auto before: whatever outranks the old choice now was added since; rank it below.
    best=${was_alt["$g $value"]:-0}
    while read -r path prio; do
      if [ -z "${was_alt["$g $path"]:-}" ] && [ "$path" != "$value" ] && [ "$prio" -ge "$best" ]; then
        echo "alternatives: $g: $path (priority $prio, added by the install) registered at priority $((best - 1)), below $value ($best), so auto keeps $value"
        reregister "$g" "$path" $((best - 1))
      fi
    done < <(ua --query "$g" | awk '/^Alternative: / { a = $2 } /^Priority: / { print a, $2 }')
    ua --auto "$g" > /dev/null
    now_value=$(ua --query "$g" | awk '/^Value: / { print $2 }')
    if [ "$now_value" != "$value" ]; then
      echo "alternatives: $g: auto chooses $now_value, not $value as before" >&2
      failed=1
    fi
  done

  local want got
  for name in mpiexec mpirun; do
    want=$(awk -v n="$name" '$1 == "cmd" && $2 == n { print $3 }' "$in")
    got=$(resolve "$name")
    if [ "$want" != "$got" ]; then
      echo "alternatives: $name leads to $got, but led to $want before the install" >&2
      failed=1
    fi
  done
  if [ "$failed" = 1 ]; then
    exit 1
  fi
  [ "$changed" = 0 ] || echo "alternatives: restored; mpiexec -> $(resolve mpiexec), mpirun -> $(resolve mpirun)"
}

case ${1:-} in
save) save "${2:?save FILE}" ;;
restore) restore "${2:?restore FILE}" ;;
*)
  echo "usage: $0 save FILE | restore FILE" >&2
  exit 2
  ;;
esac
