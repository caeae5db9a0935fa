# shellcheck shell=bash
# Sourced by test_slurm.sh: the selftest job across 2 nodes x 2 ranks, through srun and mpirun.
results=$SOURCE_DIR/tests/slurm/selftest_results.py

# Reference without Slurm or MPI launcher: one process does every chunk.
env -u SLURM_CONF "$GPUJOB" selftest-slurm.yaml --set run_name=reference --set selftest.delay_ms=0 \
  > reference.out 2>&1 || { cat reference.out; fail "reference run without Slurm failed"; }

for launcher in srun mpirun; do
  GPUJOB_LAUNCHER=$launcher submit "plain-$launcher" -N2 --ntasks-per-node=2 -t 30 -- \
    selftest-slurm.yaml --set run_name="plain-$launcher" --set selftest.delay_ms=50
  expect_eq "$launcher: sweep.sh exit status" 0 "$JOB_RC"
  expect_grep "$launcher: both nodes in the allocation" "job $JOB run 1 on n\[1-2\] \(2 nodes, 4 ranks\)" "plain-$launcher.out"
  same=$("$results" same results/reference/selftest.json "results/plain-$launcher/selftest.json") ||
    fail "$launcher: results differ from the run without Slurm: $same"
  say "ok: $launcher: results equal the run without Slurm ($same)"
done

# The role table repeats per node: ranks 0,1 on n1 and 2,3 on n2, each node with the generator on
# its slot 0 and the extractor on its slot 1 (node-local ids), whatever the launcher.
for launcher in srun mpirun; do
  GPUJOB_LOG_LEVEL=debug GPUJOB_LAUNCHER=$launcher submit "placement-$launcher" -N2 --ntasks-per-node=2 -t 30 -- \
    layout-2-per-node.yaml --set run_name="placement-$launcher"
  out=placement-$launcher.out
  host_any=0
  grep -q 'OMPI_MCA_btl=' "$CLUSTER/env.sh" && host_any=1  # no UTS namespaces: one host name for both
  expect_eq "$launcher: layout run exit status" 0 "$JOB_RC"
  for row in "0 n1 0 0 generator 0" "1 n1 0 1 extractor 1" "2 n2 1 0 generator 0" "3 n2 1 1 extractor 1"; do
    read -r rank host node local role gpu <<<"$row"
    ((host_any)) && [[ $launcher == mpirun ]] && host='[^ ]+'
    expect_grep "$launcher: rank $rank on $host, node $node, local rank $local, $role on slot $gpu" \
      "placement: rank $rank host $host node $node/2 local rank $local/2 from [a-z]+ role $role gpu $gpu\$" "$out"
  done
  expect_eq "$launcher: ranks that did stage 1 (generators)" "0 2" \
    "$("$results" ranks "results/placement-$launcher/selftest.json" 0)"
  expect_eq "$launcher: ranks that did stage 2 (extractors)" "1 3" \
    "$("$results" ranks "results/placement-$launcher/selftest.json" 1)"
done
