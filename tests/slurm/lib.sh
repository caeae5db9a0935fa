# shellcheck shell=bash
# Helpers for the Slurm tests (sourced by test_slurm.sh): a local cluster per test run, job
# submission through slurm/sweep.sh, and checks that print what they expected and what they found.

# Exit status CTest reads as "skipped" (SKIP_RETURN_CODE in tests/CMakeLists.txt).
readonly SKIP_STATUS=77

say() { echo "test_slurm: $*"; }
fail() {
  echo "test_slurm: FAIL: $*" >&2
  exit 1
}
skip() {
  echo "test_slurm: SKIP: $*"
  exit "$SKIP_STATUS"
}

# expect_eq WHAT EXPECTED FOUND
expect_eq() {
  [[ $2 == "$3" ]] || fail "$1: expected '$2', found '$3'"
  say "ok: $1 = $3"
}

# expect_grep WHAT PATTERN FILE: an extended regex that must match a line of FILE.
expect_grep() {
  grep -Eq -- "$2" "$3" || { sed 's/^/  | /' "$3" >&2; fail "$1: no line of $3 matches /$2/"; }
  say "ok: $1"
}

# count_lines PATTERN FILE: lines matching the extended regex (0 when none or no file).
count_lines() {
  [[ -f $2 ]] || { echo 0; return; }
  grep -Ec -- "$1" "$2" || true
}

# Waits (up to 30 s) until no step daemon of an earlier job is left. The simulated nodes share one
# host, and a job's slurmstepd tears down its PMIx server state after sbatch --wait has returned;
# the next job's ranks start their own on the same nodes, so the tests let the teardown finish.
settle_nodes() {
  local i
  for ((i = 0; i < 60; i++)); do
    pgrep -x slurmstepd >/dev/null || return 0
    sleep 0.5
  done
  say "note: step daemons of an earlier job still running after 30 s"
}

# crashed_in_mpi_startup NAME: true when job NAME's output holds Open MPI's own crash report
# ("*** Process received signal ***"). gpujob replaces that handler with its own right after
# MPI_Init, so such a crash came before gpujob ran any code of its own. Seen in three fresh CI runs
# so far, each time in Open MPI's TCP wire-up between the two simulated nodes that share this host.
# submit and submit_async then submit the job once more (any other failure fails at once) and keep
# the first output as NAME.first.out (keep_first_output).
crashed_in_mpi_startup() { grep -q -- '\*\*\* Process received signal \*\*\*' "$WORK/$1.out" 2>/dev/null; }
keep_first_output() {
  say "note: a rank of job $1 crashed inside Open MPI's start-up (Open MPI's own report); submitting it once more"
  mv "$WORK/$1.out" "$WORK/$1.first.out"
}

# Submits slurm/sweep.sh with sbatch --wait; sets JOB (id) and JOB_RC (sbatch's exit status, which
# is the batch script's). Usage: submit NAME [sbatch options] -- CONFIG [gpujob options]
# A job that crashed inside Open MPI's start-up is submitted once more (crashed_in_mpi_startup).
submit() {
  local name=$1 opts=() attempt
  shift
  while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  for attempt in 1 2; do
    rm -f "$WORK/$name.out"
    settle_nodes
    JOB_RC=0
    JOB=$(sbatch --parsable --wait -J "$name" -o "$WORK/$name.out" "${opts[@]}" \
      "$SOURCE_DIR/slurm/sweep.sh" "$@") || JOB_RC=$?
    JOB=${JOB%%;*}
    say "job $name ($JOB) finished with status $JOB_RC"
    ((attempt == 1)) && crashed_in_mpi_startup "$name" || break
    keep_first_output "$name"
  done
}

# Submits without waiting for the end; sets JOB. Returns once gpujob has printed its first line,
# the job has ended, or 60 s have passed; a job that ended crashed inside Open MPI's start-up is
# submitted once more (crashed_in_mpi_startup).
submit_async() {
  local name=$1 opts=() attempt i
  shift
  while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  for attempt in 1 2; do
    rm -f "$WORK/$name.out"
    settle_nodes
    JOB=$(sbatch --parsable -J "$name" -o "$WORK/$name.out" "${opts[@]}" "$SOURCE_DIR/slurm/sweep.sh" "$@")
    JOB=${JOB%%;*}
    for ((i = 0; i < 120; i++)); do
      grep -q '^\[gpujob' "$WORK/$name.out" 2>/dev/null && return 0
      job_gone "$JOB" && break
      sleep 0.5
    done
    ((attempt == 1)) && job_gone "$JOB" && crashed_in_mpi_startup "$name" || return 0
    keep_first_output "$name"
  done
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 0.5 s until it succeeds.
wait_for() {
  local what=$1 limit=$2 i
  shift 2
  for ((i = 0; i < limit * 2; i++)); do
    "$@" && return 0
    sleep 0.5
  done
  fail "$what: not within $limit s"
}

job_gone() { [[ -z $(squeue -h -j "$1" -o %i 2>/dev/null || true) ]]; }

# Final states of every run of job $1 in the cluster's jobcomp file, space separated (a requeued
# run is logged as PENDING, or REQUEUED, when it ends).
job_states() {
  awk -v id="JobId=$1" '$1 == id { for (i = 1; i <= NF; i++) if ($i ~ /^JobState=/) { sub(/JobState=/, "", $i); printf "%s%s", sep, $i; sep = " " } }' \
    "$CLUSTER/jobcomp.txt"
}

# Prints the tail of every log that helps explain a failure.
dump_logs() {
  local f
  # Newest job output first: the one that failed is the last written, and long logs get cut.
  # shellcheck disable=SC2012  # the work directory's names are plain
  for f in $(ls -t "$WORK"/*.out "$WORK"/*/*.out 2>/dev/null) "$CLUSTER"/log/*.log; do
    [[ -f $f ]] || continue
    echo "----- $f (last 60 lines)"
    tail -n 60 "$f"
  done
}
