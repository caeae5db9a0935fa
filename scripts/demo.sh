#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, creates the tiny demo model, and
# runs the whole activation pipeline (generate -> cache -> extract into one HDF5 file -> probe
# sweep) on the CPU under mpirun with 2 generator and 2 extractor ranks.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/deps.sh"
"$root/scripts/build.sh"
cd "$root"
gpujob="${GPUJOB_BUILD_DIR:-$root/build}/gpujob"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [[ ! -f results/demo/model/model.safetensors ]]; then
  "$gpujob" make-demo-model results/demo/model --corpus configs/data/mc_demo.jsonl
fi
mpirun -np 4 --oversubscribe "$gpujob" configs/demo.yaml
echo
echo "demo results:"
echo "  completions (cache):  results/cache/"
echo "  activations (HDF5):   results/demo/activations.h5    (h5dump -H results/demo/activations.h5)"
echo "  probe sweep:          results/demo/sweep_summary.txt, sweep_summary.csv, sweep_auroc.svg"
cat results/demo/sweep_summary.txt
