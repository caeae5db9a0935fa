# shellcheck shell=bash
# Sourced by test_slurm.sh: a rank that fails in the middle of the job, through srun, ends the
# whole job with its status (no rank waits for the lost one), and nothing claims to be complete.
#   exception  the rank's error goes to rank 0, which prints it once and aborts the step (status 1)
#   segfault   the crash report names the rank; srun ends the other ranks after GPUJOB_SRUN_WAIT
#   exit       the rank vanishes without a word (as after the OOM killer): the same bounded end,
#              with a failure status

# A wait shorter than the 2-minute time limit, so that a job that ended by the limit fails below.
export GPUJOB_SRUN_WAIT=5
for mode in exception segfault exit; do
  name=crash-$mode
  started=$SECONDS
  submit "$name" -N2 --ntasks-per-node=2 -t 2 -- selftest-slurm.yaml --set run_name="$name" \
    --set selftest.delay_ms=100 --set selftest.fail_rank=3 --set selftest.fail_chunk=4 \
    --set selftest.fail_mode="$mode"
  took=$((SECONDS - started))
  case $mode in
    exception)
      expect_eq "$mode: job exit status (gpujob's failure status)" 1 "$JOB_RC"
      expect_eq "$mode: the error, printed once" 1 \
        "$(count_lines '^gpujob: error: rank 3 \(n2\), chunk [0-9]+ of queue square_sum: selftest: injected failure' "$name.out")"
      ;;
    segfault)
      expect_eq "$mode: job exit status (128 + SIGSEGV)" 139 "$JOB_RC"
      expect_grep "$mode: the crash report names the rank" "^gpujob rank 3: fatal signal SIGSEGV" "$name.out"
      ;;
    exit)
      # srun reports the highest status: the peers it ended (137), or one that crashed on the lost
      # connection (139), rank above the lost one's 3.
      ((JOB_RC != 0 && JOB_RC != 2 && JOB_RC != 75)) || fail "$mode: the job exited with status $JOB_RC"
      say "ok: $mode: job exit status $JOB_RC"
      ;;
  esac
  ((took < 90)) || fail "$mode: the job took $took s to end (the lost rank's peers waited)"
  [[ ! -e results/$name/selftest.json ]] || fail "$mode: the job wrote complete results"
  say "ok: $mode: the job ended in $took s without complete results"
done
unset GPUJOB_SRUN_WAIT
