#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, and runs the main job on the
# built-in CPU demo (a tiny model gpujob creates itself) under mpirun.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh"
cd "$root"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun -np 4 --oversubscribe "${GPUJOB_BUILD_DIR:-$root/build}/gpujob" configs/demo.yaml
