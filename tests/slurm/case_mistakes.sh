# shellcheck shell=bash
# Sourced by test_slurm.sh: the usual launch mistakes fail at startup with one clear line per
# process, before any work (no results are written).

# srun without the MPI plugin starts 4 unconnected processes; none may run the job.
# (a) Debian's Open MPI (PMIx only) refuses in MPI_Init under srun --mpi=none, on every task.
rm -f singletons.out
rc=0
sbatch --wait -J singletons -o singletons.out -N2 --ntasks-per-node=2 -t 2 \
  --wrap "srun --mpi=none $GPUJOB layout-2-per-node.yaml --set run_name=singletons" >/dev/null || rc=$?
[[ $rc -ne 0 ]] || fail "srun --mpi=none: the job succeeded"
[[ ! -e results/singletons/selftest.json && ! -s results/singletons/selftest_progress.jsonl ]] ||
  fail "srun --mpi=none: the processes ran the job"
say "ok: srun --mpi=none: every task failed (status $rc), no results written"

# (b) An Open MPI with PMI-1/2 support starts each task as an MPI world of 1 instead. Open MPI
# treats a process as such a singleton when SLURM_NODELIST is absent, so hiding it here gives
# what those sites see: every task must stop with gpujob's one-line error.
rm -f singletons-world1.out
rc=0
sbatch --wait -J singletons-world1 -o singletons-world1.out -N2 --ntasks-per-node=2 -t 2 \
  --wrap "srun --mpi=none env -u SLURM_NODELIST -u SLURM_JOB_NODELIST $GPUJOB layout-2-per-node.yaml --set run_name=singletons-world1" \
  >/dev/null || rc=$?
expect_eq "srun --mpi=none, worlds of 1: job exit status (launch error)" 2 "$rc"
# Four tasks write to one output file at once: lines may interleave, so at least one intact
# copy of the message is required (the exit status above already says every task failed).
printed=$(count_lines 'srun started 4 tasks but each one is an MPI world of 1: srun is missing the MPI plugin; use .srun --mpi=pmix' singletons-world1.out)
[[ $printed -ge 1 ]] || fail "srun --mpi=none, worlds of 1: no task printed the missing-plugin error"
[[ ! -e results/singletons-world1/selftest.json && ! -s results/singletons-world1/selftest_progress.jsonl ]] ||
  fail "srun --mpi=none, worlds of 1: the singletons ran the job"
say "ok: srun --mpi=none, worlds of 1: no results written"

# 3 ranks per node where the layout has 2 slots per node (6 ranks would pass a mere -np check).
submit threeper -N2 --ntasks-per-node=3 -t 30 -- layout-2-per-node.yaml --set run_name=threeper
expect_eq "3 ranks per node: exit status (launch error)" 2 "$JOB_RC"
expect_eq "3 ranks per node: error lines (printed once)" 1 \
  "$(count_lines "^gpujob: error: node n1 has 3 ranks but layout-2-per-node.yaml's layout needs 2 ranks per node .*-np 4 for 2 nodes" threeper.out)"
[[ ! -e results/threeper/selftest.json ]] || fail "3 ranks per node: the job ran"
say "ok: 3 ranks per node: no results written"
