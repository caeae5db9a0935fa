# shellcheck shell=bash
# Sourced by test_slurm.sh: the CPU demo pipeline (configs/demo.yaml: generate, extract into one
# HDF5 file, probe sweep; 4 ranks per node) through sbatch slurm/sweep.sh on 2 nodes (8 ranks),
# against the same config on one node under plain mpirun: the extractors of both nodes write
# into the one HDF5 file, and the activations and the sweep equal the single-node run's.
if [[ ! -f $SOURCE_DIR/configs/demo.yaml ]] || ! command -v h5diff >/dev/null; then
  say "demo: skipped (needs configs/demo.yaml and h5diff from hdf5-tools)"
  return 0
fi
mkdir -p demo
cd demo || fail "demo: no directory"
ln -sfn "$SOURCE_DIR/configs" configs
"$GPUJOB" make-demo-model results/demo/model --corpus configs/data/mc_demo.jsonl > make-model.out 2>&1 ||
  { cat make-model.out; fail "demo: make-demo-model failed"; }

# One node, no Slurm. Each run has its own generation cache, so neither reuses the other's completions.
env -u SLURM_CONF mpirun -np 4 --oversubscribe "$GPUJOB" configs/demo.yaml --set run_name=one-node \
  --set generation.cache_dir=results/cache-one-node > one-node.out 2>&1 ||
  { tail -n 30 one-node.out; fail "demo: the single-node run failed"; }

WORK_SAVED=$WORK
WORK=$PWD  # submit() writes the job output next to the run
submit demo-two-nodes -N2 --ntasks-per-node=4 -t 30 -- configs/demo.yaml --set run_name=two-nodes \
  --set generation.cache_dir=results/cache-two-nodes
WORK=$WORK_SAVED
expect_eq "demo: sweep.sh exit status on 2 nodes" 0 "$JOB_RC"
expect_grep "demo: 8 ranks on both nodes" "\(2 nodes, 8 ranks\)" demo-two-nodes.out
# The root attributes hold the creation time: compare the activations and the samples.
for group in /activations /samples; do
  h5diff -d 1e-6 results/one-node/activations.h5 results/two-nodes/activations.h5 "$group" "$group" \
    > h5diff.out 2>&1 || { head -n 30 h5diff.out; fail "demo: $group on 2 nodes differs from the single-node run"; }
  say "ok: demo: activations.h5 $group equal within 1e-6 (h5diff)"
done
expect_eq "demo: sweep_summary.csv on 2 nodes equals the single-node one" "" \
  "$(diff results/one-node/sweep_summary.csv results/two-nodes/sweep_summary.csv || true)"
cd "$WORK" || fail "demo: no directory $WORK"
