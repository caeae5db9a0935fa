#!/usr/bin/env bash
# gpujob under a real Slurm: a local cluster of 2 simulated nodes (scripts/slurm-local-cluster.sh),
# jobs submitted with `sbatch slurm/sweep.sh` across both nodes, then checked:
#   two_nodes    the selftest job through srun --mpi=pmix and through mpirun; results equal a
#                run without Slurm; the role table repeats per node with node-local slots
#   requeue      the warning signal (USR1) stops the job cleanly with gpujob's stop status, the
#                job is requeued, and the second run ends with the uninterrupted run's results
#   mistakes     srun --mpi=none (N singletons) and more ranks on a node than the layout has
#                slots: every rank fails at startup with the one-line error, nothing runs
#   crash        a rank that fails mid-job (error, segfault, silent exit) ends the whole job
#   timelimit    the real --signal=B:USR1@30 at a 1-minute limit: stop, requeue, same results
#   demo         the CPU demo pipeline (configs/demo.yaml) on 2 nodes x 4 ranks equals one node
#
#   tests/slurm/test_slurm.sh PATH/TO/gpujob [CASE...]     (as root; CASE default: all of them)
# Exit status 0 passed, 1 failed, 77 skipped (no root, no Slurm, or gpujob lacks what is tested).
# GPUJOB_TEST_KEEP=1 keeps the work directory (cluster logs, job outputs) for a look afterwards.
set -euo pipefail

SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/slurm/lib.sh
. "$SOURCE_DIR/tests/slurm/lib.sh"

(($# >= 1)) || { echo "usage: $0 PATH/TO/gpujob [CASE...]" >&2; exit 2; }
GPUJOB=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
CASES=("$@")
((${#CASES[@]})) || CASES=(two_nodes mistakes crash requeue timelimit demo)

[[ -x $GPUJOB ]] || fail "gpujob executable $GPUJOB not found"
[[ $(id -u) -eq 0 ]] || skip "needs root (slurmd launches the tasks)"
for tool in slurmctld slurmd sbatch srun scontrol munged mpirun; do
  command -v "$tool" >/dev/null || skip "$tool not installed (scripts/deps.sh installs slurm-wlm, munge, openmpi-bin)"
done

WORK=$(mktemp -d /tmp/gpujob-slurm-test.XXXXXX)
chmod 0755 "$WORK"  # munged needs every directory above its socket open to all
CLUSTER=$WORK/cluster
cleanup() {
  local rc=$?
  "$SOURCE_DIR/scripts/slurm-local-cluster.sh" stop "$CLUSTER" || true
  if ((rc != 0 && rc != SKIP_STATUS)); then dump_logs || true; fi
  if [[ ${GPUJOB_TEST_KEEP:-0} == 1 ]]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each simulated node gets 4 CPUs (more than the machine has: Slurm only counts) so 3 ranks per node fit.
GPUJOB_LC_CPUS=4 "$SOURCE_DIR/scripts/slurm-local-cluster.sh" start "$CLUSTER"
# shellcheck disable=SC1091
. "$CLUSTER/env.sh"
export GPUJOB_BIN=$GPUJOB
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$WORK"  # the jobs' submit directory: results/ lands here
cp "$SOURCE_DIR"/tests/slurm/*.yaml "$WORK/"

for case_name in "${CASES[@]}"; do
  [[ -f $SOURCE_DIR/tests/slurm/case_$case_name.sh ]] || fail "unknown case $case_name"
  say "=== $case_name"
  # shellcheck disable=SC1090
  . "$SOURCE_DIR/tests/slurm/case_$case_name.sh"
done
say "all passed: ${CASES[*]}"
