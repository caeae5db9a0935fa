# shellcheck shell=bash
# Sourced by test_slurm.sh: the real warning. With -t 1 --signal=B:USR1@30 Slurm sends USR1 to
# the batch shell about 30 s before the limit (its timer runs every 30 s or so, so 15-30 s after
# the start); the run stops cleanly and is requeued. While it waits to run again the limit is
# raised (as an admin would), so the second run ends the work instead of meeting the warning again.
results=$SOURCE_DIR/tests/slurm/selftest_results.py
[[ -f results/reference/selftest.json ]] ||
  env -u SLURM_CONF "$GPUJOB" selftest-slurm.yaml --set run_name=reference --set selftest.delay_ms=0 \
    > reference.out 2>&1 || { cat reference.out; fail "reference run without Slurm failed"; }

# 96 results at 2 s each over 4 ranks: about 48 s of work, more than the warning leaves.
submit_async timelimit -N2 --ntasks-per-node=2 -t 1 --signal=B:USR1@30 -- \
  selftest-slurm.yaml --set run_name=timelimit --set selftest.delay_ms=2000
requeued() { [[ -f timelimit.out ]] && grep -q "requeuing job $JOB" timelimit.out; }
wait_for "timelimit: job $JOB requeued after the warning" 75 requeued
scontrol update JobId="$JOB" TimeLimit=5
wait_for "timelimit: job $JOB to finish" 120 job_gone "$JOB"

out=timelimit.out
expect_grep "timelimit: Slurm's warning reached the batch shell" "SIGUSR1 received: asking gpujob to stop" "$out"
# Slurm may send the warning up to a minute early: before the launch the batch shell starts no
# gpujob; just after it, the warning kills gpujob before its handlers exist (status 138) and
# nothing is recorded yet; otherwise the stop is clean (75).
expect_grep "timelimit: gpujob stopped (75, or 138 or not started when the warning came at the start)" \
  "gpujob exited with status (75|138)|came before gpujob started: not starting it" "$out"
if grep -q "gpujob exited with status 75" "$out"; then
  expect_grep "timelimit: the second run resumed" "resuming: [1-9][0-9]* chunk result" "$out"
fi
expect_grep "timelimit: the second run finished" "gpujob exited with status 0" "$out"
expect_eq "timelimit: final state of job $JOB" COMPLETED "$(job_states "$JOB" | awk '{print $NF}')"
expect_eq "timelimit: chunks recorded twice (redone)" 0 \
  "$("$results" duplicates results/timelimit/selftest_progress.jsonl)"
same=$("$results" same results/reference/selftest.json results/timelimit/selftest.json) ||
  fail "timelimit: results differ from the uninterrupted run: $same"
say "ok: timelimit: results equal the uninterrupted run ($same)"
