#!/usr/bin/env bash
# slurm/sweep.sh when Slurm's warning comes before gpujob is launched (Slurm may send it up to a
# minute early, even as the job starts): the batch shell must not die of it, must not start gpujob,
# and requeues at once. No Slurm needed: srun and scontrol are stand-ins that record their calls,
# and the warning is sent from the script's own `cd` (an exported function), after its traps and
# before the launch.
#
#   tests/slurm/test_sweep_early_warning.sh PATH/TO/gpujob
set -euo pipefail

SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GPUJOB=${1:?usage: $0 PATH/TO/gpujob}
GPUJOB=$(cd "$(dirname "$GPUJOB")" && pwd)/$(basename "$GPUJOB")
WORK=$(mktemp -d /tmp/gpujob-sweep-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "test_sweep_early_warning: FAIL: $*" >&2; exit 1; }
ok() { echo "test_sweep_early_warning: ok: $*"; }

mkdir -p "$WORK/bin"
for tool in srun scontrol; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\n' "$tool" "$WORK" > "$WORK/bin/$tool"
  chmod +x "$WORK/bin/$tool"
done
echo "job: selftest" > "$WORK/config.yaml"

# run_sweep [VAR=value ...]: sweep.sh in WORK with USR1 sent from its first `cd`; sets status, out.
run_sweep() {
  rm -f "$WORK/calls"
  set +e
  out=$(cd "$WORK" && env 'BASH_FUNC_cd%%=() { kill -USR1 $$; builtin cd "$@"; }' PATH="$WORK/bin:$PATH" \
    GPUJOB_BIN="$GPUJOB" SLURM_SUBMIT_DIR="$WORK" "$@" bash "$SOURCE_DIR/slurm/sweep.sh" config.yaml 2>&1)
  status=$?
  set -e
}
calls() { cat "$WORK/calls" 2>/dev/null || true; }

# Inside a job: no launch, a requeue of this job, exit 0.
run_sweep SLURM_JOB_ID=4242
[[ $status -eq 0 ]] || fail "in a job: exit status $status, expected 0 (requeued); output: $out"
grep -q "SIGUSR1 came before gpujob started: not starting it" <<<"$out" || fail "in a job: no notice; output: $out"
! grep -q "^srun" <<<"$(calls)" || fail "in a job: srun was started: $(calls)"
grep -qx "scontrol requeue 4242" <<<"$(calls)" || fail "in a job: no requeue of job 4242: $(calls)"
ok "a warning before the launch: gpujob not started, job requeued, exit 0"

# Without requeue (GPUJOB_REQUEUE=0): no launch, no requeue, the stop status.
run_sweep SLURM_JOB_ID=4242 GPUJOB_REQUEUE=0
[[ $status -eq 75 ]] || fail "without requeue: exit status $status, expected 75; output: $out"
[[ -z $(calls) ]] || fail "without requeue: unexpected calls: $(calls)"
ok "a warning before the launch, GPUJOB_REQUEUE=0: nothing started or requeued, exit 75"
