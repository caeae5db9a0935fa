#!/usr/bin/env bash
# sbatch script for gpujob runs (a layer sweep, or any config) on one or more nodes, with a warning
# signal before the time limit and a requeue, so a long run continues where it stopped.
#
#   sbatch slurm/sweep.sh configs/split8.yaml                  # one node, the layout's ranks on it
#   sbatch -N 4 slurm/sweep.sh configs/split8.yaml             # the layout repeats on every node
#   sbatch -N 2 --ntasks-per-node=2 slurm/sweep.sh CONFIG      # options on the command line win
#   GPUJOB_LAUNCHER=mpirun sbatch slurm/sweep.sh CONFIG        # mpirun inside the allocation
#
# Everything after CONFIG goes to gpujob. The job starts in the directory sbatch ran in, so
# relative paths in the config (and its output_dir, default results/) are relative to it; the
# results of a run are in <output_dir>/<run_name>/.
#
# Site settings: edit the #SBATCH lines below (a line starting with ##SBATCH is switched off).
#   --ntasks-per-node  ranks per node the layout needs: `gpujob plan CONFIG --np N` prints it
#                      (8 for configs/split8.yaml; 2 per GPU where a role has ranks_per_gpu: 2)
#   --gres=gpu:N       GPUs per node (some sites use --gpus-per-node=N instead)
#   --partition, --account, --qos: your site's names
#   --time and --signal: the warning comes <lead> seconds before the limit (and Slurm may send it
#                      up to a minute early); the lead must cover finishing the chunks in flight.
#                      Keep the B: (batch shell only): this script passes the signal on and requeues.
#                      A --time shorter than the lead sends the warning at once (a stop at the start)
#
#SBATCH --job-name=gpujob-sweep
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
##SBATCH --gres=gpu:8
##SBATCH --cpus-per-task=8
##SBATCH --partition=gpu
##SBATCH --account=myproject
#SBATCH --time=12:00:00
#SBATCH --signal=B:USR1@600
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
#
# Environment (set before sbatch; sbatch passes the environment on):
#   GPUJOB_BIN           gpujob executable (default: gpujob on PATH, else ./build/gpujob)
#   GPUJOB_LAUNCHER      srun (default; srun --mpi=pmix) or mpirun (Open MPI inside the allocation)
#   GPUJOB_REQUEUE       1 (default): requeue after a stop on the warning signal; 0: just exit
#   GPUJOB_MAX_RESTARTS  requeues at most this many times (default 20)
#   GPUJOB_STOP_STATUS   gpujob's exit status for "stopped on a signal, progress saved" (default 75)
#   GPUJOB_SRUN_WAIT     seconds srun waits for the other ranks after one ended (default 60): how
#                        long the job can outlive a rank that died without a word (killed, OOM)
#
# How a stop works: Slurm sends USR1 to this script (B: = batch shell only) ahead of the limit; the
# script passes it on to every rank; gpujob finishes or returns its chunks in flight, records
# progress and exits with the stop status; the script then runs `scontrol requeue`, and the rerun
# (SLURM_RESTART_COUNT=1, 2, ...) does only the work that is missing. A TERM (the limit itself, or
# scancel) is passed on the same way, but the job is not requeued: a cancelled job stays cancelled.
#
# Exit status: 0 done (or requeued); gpujob's status otherwise (the stop status when stopped and not
# requeued).
set -uo pipefail  # no -e: the statuses of the launcher and scontrol are inspected below

log() { echo "sweep.sh: $*"; }

# The traps come first: Slurm may send the warning as soon as the job starts (up to a minute early),
# and a batch shell that has no trap for USR1 yet dies of it, with no requeue.
child=""
stop_signal=""
interrupted=0
# shellcheck disable=SC2317  # called from the traps below
on_signal() {
  interrupted=1
  [[ -n $stop_signal ]] && return 0  # already stopping
  stop_signal=$1
  log "SIG$1 received: asking gpujob to stop"
  # srun and mpirun pass USR1 on to every rank; TERM would make mpirun kill the ranks at once.
  signal_ranks
  return 0
}
# USR1 to the launcher, and to the ranks it started on this node: some Open MPI builds' mpirun
# does not forward USR1, and one rank that has it stops the whole job. Ranks that srun starts are
# not its children (pkill then finds none; srun forwards the signal itself).
signal_ranks() {
  [[ -n $child ]] || return 0
  kill -USR1 "$child" 2>/dev/null
  pkill -USR1 -P "$child" 2>/dev/null
  return 0
}
trap 'on_signal USR1' USR1
trap 'on_signal TERM' TERM

if (($# < 1)); then
  echo "usage: sbatch [sbatch options] slurm/sweep.sh CONFIG [gpujob options]" >&2
  exit 2
fi
config=$1
shift

# Site modules, if the site uses environment modules (uncomment and adjust):
# module load openmpi/4.1 cuda/12.1 hdf5/1.10-openmpi
# export LD_LIBRARY_PATH=/path/to/libtorch/lib:$LD_LIBRARY_PATH

cd "${SLURM_SUBMIT_DIR:-.}" || exit 1
gpujob=${GPUJOB_BIN:-}
if [[ -z $gpujob ]]; then
  if command -v gpujob >/dev/null; then gpujob=$(command -v gpujob); else gpujob=$PWD/build/gpujob; fi
fi
[[ -x $gpujob ]] || { log "gpujob executable not found at $gpujob (set GPUJOB_BIN)" >&2; exit 2; }
[[ -f $config ]] || { log "config $config not found (relative to $PWD)" >&2; exit 2; }

launcher=${GPUJOB_LAUNCHER:-srun}
stop_status=${GPUJOB_STOP_STATUS:-75}
restarts=${SLURM_RESTART_COUNT:-0}
case $launcher in
  # Not --kill-on-bad-exit: it cancels the step as soon as one rank exits with an error status,
  # while the other ranks are still in MPI_Finalize with the same status (a launch error is 2 on
  # every rank, a stop 75); cancelled there, a rank can crash (139) and hide that status. A failing
  # rank aborts the step itself (MPI_Abort); --wait ends the rest after a rank that died silently.
  srun) cmd=(srun --mpi=pmix --kill-on-bad-exit=0 --wait="${GPUJOB_SRUN_WAIT:-60}" "$gpujob" "$config" "$@") ;;
  # mpirun reads the allocation from Slurm (hosts, slots); ranks fill node by node like srun.
  mpirun) cmd=(mpirun --map-by slot --bind-to none "$gpujob" "$config" "$@") ;;
  *) log "GPUJOB_LAUNCHER=$launcher: expected srun or mpirun" >&2; exit 2 ;;
esac
log "job ${SLURM_JOB_ID:-?} run $((restarts + 1)) on ${SLURM_JOB_NODELIST:-?}" \
  "(${SLURM_NNODES:-?} nodes, ${SLURM_NTASKS:-?} ranks): ${cmd[*]}"

if [[ -n $stop_signal ]]; then
  # The warning came before the launch: nothing has started, so nothing needs stopping.
  log "SIG$stop_signal came before gpujob started: not starting it"
  rc=$stop_status
else
  "${cmd[@]}" &
  child=$!
  [[ -n $stop_signal ]] && signal_ranks  # a signal that came while the launcher started
  while :; do
    interrupted=0
    wait "$child"
    rc=$?
    ((interrupted)) || break  # wait returns early when a trapped signal arrives: wait again
  done
  log "gpujob exited with status $rc"
fi

# Slurm may send the warning up to a minute early, even before gpujob has set up its handlers; the
# ranks then die of the USR1 itself (status 138), with the progress recorded so far intact.
if [[ ($rc -eq $stop_status || $rc -eq 138) && $stop_signal == USR1 && ${GPUJOB_REQUEUE:-1} == 1 &&
  -n ${SLURM_JOB_ID:-} ]]; then
  if ((restarts >= ${GPUJOB_MAX_RESTARTS:-20})); then
    log "not requeued: already restarted $restarts times (GPUJOB_MAX_RESTARTS)"
    exit "$rc"
  fi
  # Logged before the requeue: Slurm may end this shell (TERM) before scontrol returns.
  log "requeuing job $SLURM_JOB_ID; the next run continues from the saved progress"
  trap 'exit 0' TERM  # the requeue ends this run with a TERM
  scontrol requeue "$SLURM_JOB_ID" && exit 0
  log "scontrol requeue $SLURM_JOB_ID failed; resubmit the same command to continue" >&2
fi
exit "$rc"
