#!/usr/bin/env bash
# Open MPI for @segkit/dist-mpi's tests (mpirun, and mpicc to build the binding). Idempotent: skips the
# install when mpicc and mpirun are there. Run before `npm ci` the binding is built by its install step;
# run after it, the binding is rebuilt here.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then echo "apt-mpi: needs root (apt-get)" >&2; exit 1; fi
  apt-get -o DPkg::Lock::Timeout=1800 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=1800 install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev >/dev/null
fi
if [ -d node_modules/@segkit/dist-mpi ] && [ ! -f plugins/dist-mpi/build/Release/segkit_mpi.node ]; then
  npm rebuild @segkit/dist-mpi
fi
