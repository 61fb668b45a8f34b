#!/usr/bin/env bash
# Installs what copper's tests, demo and benchmarks need on a Debian machine:
# FUSE 3 (fusermount3, /dev/fuse), Python 3 with numpy (a real C extension to
# import through a mount), MPICH and Open MPI (the launcher tests run
# copper-launch under mpiexec.mpich and under mpirun.openmpi), strace (the
# benchmark records an import once to replay it), Lmod and man-db (packaging
# tests: `module load copper` and `man -w` on a make install), shellcheck
# (the example job scripts' test), SciPy and pandas without recommends (the
# issue #9 benchmark imports numpy, scipy and pandas cold through a mount).
# Idempotent: installs only what is missing.
#
# The machine's alternatives are left as they were: Open MPI registers an
# `mpirun`/`mpiexec` alternative that outranks MPICH's, so every group is
# saved before the install and restored after it (scripts/alternatives.sh);
# the tests name each MPI's own command (mpiexec.mpich, mpirun.openmpi).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
if ! /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then need+=(python3 python3-numpy); fi
# MPICH by its own name: another MPI's `mpiexec` (Open MPI's alternative) does not count,
# and the alternatives stay as the machine's owner set them.
command -v mpiexec.mpich >/dev/null 2>&1 || need+=(mpich)
command -v mpirun.openmpi >/dev/null 2>&1 || need+=(openmpi-bin)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck) # examples: the job scripts' lint
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v strace >/dev/null 2>&1 || need+=(strace) # bench: records an import once for replay
[ -r /usr/share/lmod/lmod/init/bash ] || need+=(lmod) # packaging: module use / module load
command -v man >/dev/null 2>&1 || need+=(man-db)      # packaging: man -w finds the pages
[ -e /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1 ] || need+=(libllvm15) # large files: the big .so mapped and dlopened through mounts

# Without recommends: SciPy's pull in boost and pythran headers, far from cheap.
lean=()
/usr/bin/python3 -c 'import scipy' >/dev/null 2>&1 || lean+=(python3-scipy)
/usr/bin/python3 -c 'import pandas' >/dev/null 2>&1 || lean+=(python3-pandas)

if [ $((${#need[@]} + ${#lean[@]})) -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-test-deps: missing packages: ${need[*]} ${lean[*]}; run as root or: sudo apt-get install -y ${need[*]} && sudo apt-get install -y --no-install-recommends ${lean[*]}" >&2
    exit 1
  fi
  echo "setup-test-deps: installing ${need[*]} ${lean[*]}"
  export DEBIAN_FRONTEND=noninteractive
  saved=$(mktemp)
  "$here/alternatives.sh" save "$saved"
  # Restored whether or not the install succeeded (a half install may have registered some).
  restore() {
    local code=$?
    "$here/alternatives.sh" restore "$saved" || code=1
    rm -f "$saved"
    exit "$code"
  }
  trap restore EXIT
  # Another apt on this machine (a shared test host) is waited for, not failed on.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  if [ ${#need[@]} -gt 0 ]; then apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null; fi
  if [ ${#lean[@]} -gt 0 ]; then apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${lean[@]}" >/dev/null; fi
  trap - EXIT
  "$here/alternatives.sh" restore "$saved"
  rm -f "$saved"
fi

if [ ! -c /dev/fuse ]; then
  modprobe fuse 2>/dev/null || true
  [ -c /dev/fuse ] || { echo "setup-test-deps: /dev/fuse is missing: FUSE tests cannot run" >&2; exit 1; }
fi
# fusectl lets tests abort a FUSE connection whose daemon died mid-request.
if [ -d /sys/fs/fuse/connections ] && ! mountpoint -q /sys/fs/fuse/connections 2>/dev/null; then
  mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null || true
fi
exit 0
