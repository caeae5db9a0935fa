# shellcheck shell=bash
# Sourced by test_slurm.sh: Slurm's warning signal (USR1 to the batch shell, as --signal=B:USR1@T
# sends it) stops the run cleanly, sweep.sh requeues the job, and the second run finishes with the
# results of an uninterrupted run, redoing no chunk.
results=$SOURCE_DIR/tests/slurm/selftest_results.py
[[ -f results/reference/selftest.json ]] ||
  env -u SLURM_CONF "$GPUJOB" selftest-slurm.yaml --set run_name=reference --set selftest.delay_ms=0 \
    > reference.out 2>&1 || { cat reference.out; fail "reference run without Slurm failed"; }

progress=results/requeue/selftest_progress.jsonl
progress_lines() { count_lines . "$progress"; }
some_progress() { (($(progress_lines) >= 10)); }
submit_async requeue -N2 --ntasks-per-node=2 -t 30 -- selftest-slurm.yaml --set run_name=requeue
# Stop once a few chunks are done and many remain (96 results at about 4 per second).
wait_for "requeue: first results of job $JOB" 60 some_progress
scancel --signal=USR1 --batch "$JOB"
say "sent USR1 to the batch shell of job $JOB after $(progress_lines) results"
wait_for "requeue: job $JOB to finish" 150 job_gone "$JOB"

out=requeue.out
expect_grep "requeue: the batch shell passed the warning on" "SIGUSR1 received: asking gpujob to stop" "$out"
expect_grep "requeue: gpujob stopped with the stop status 75" "gpujob exited with status 75" "$out"
expect_grep "requeue: gpujob recorded the stop" '"signal": 10' results/requeue/selftest_stopped.json
expect_grep "requeue: sweep.sh requeued the job" "requeuing job $JOB" "$out"
expect_grep "requeue: a second run started" "job $JOB run 2 on n\[1-2\]" "$out"
expect_grep "requeue: the second run resumed from the recorded progress" "resuming: [1-9][0-9]* chunk result" "$out"
expect_grep "requeue: the second run finished" "gpujob exited with status 0" "$out"
expect_eq "requeue: runs of job $JOB in jobcomp (first requeued, second completed)" 2 \
  "$(count_lines "^JobId=$JOB " "$CLUSTER/jobcomp.txt")"
expect_eq "requeue: final state of job $JOB" COMPLETED "$(job_states "$JOB" | awk '{print $NF}')"
expect_eq "requeue: chunks recorded twice (redone)" 0 "$("$results" duplicates "$progress")"
same=$("$results" same results/reference/selftest.json results/requeue/selftest.json) ||
  fail "requeue: results differ from the uninterrupted run: $same"
say "ok: requeue: results equal the uninterrupted run ($same)"
