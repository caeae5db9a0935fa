#!/usr/bin/env bash
# A throwaway Slurm cluster on this one machine: one slurmctld and several slurmd (`slurmd -N n1`,
# `-N n2`, ...), so multi-node runs of gpujob (sbatch, srun --mpi=pmix, mpirun inside sbatch) can be
# tested without a real cluster. Built on Debian's slurm-wlm and munge; run it as root.
#
#   scripts/slurm-local-cluster.sh start [DIR]    # writes DIR/slurm.conf, starts the daemons, returns
#                                                 # once every node is idle (DIR default /tmp/gpujob-slurm)
#   . DIR/env.sh   or   eval "$(scripts/slurm-local-cluster.sh env [DIR])"
#                                                 # SLURM_CONF (and Open MPI settings) for this shell
#   scripts/slurm-local-cluster.sh status [DIR]   # sinfo + squeue
#   scripts/slurm-local-cluster.sh stop [DIR]     # cancels the jobs, then kills the daemons by PID
#
# Settings (environment):
#   GPUJOB_LC_AUTH=munge|none   munge: a private munged with its own key and socket in DIR;
#                               none: auth/none (no daemon; anyone local may act as anyone: CI only)
#   GPUJOB_LC_NODES=2           simulated nodes n1..nN
#   GPUJOB_LC_CPUS=2            CPUs per node (may exceed the real core count)
#   GPUJOB_LC_PORT=auto         slurmctld port; node i listens on PORT+i. auto: first free from 16817
#   GPUJOB_LC_UTS=auto|1|0      1: each slurmd in its own UTS namespace so tasks see hostname n1, n2...
#                               auto: when `unshare --uts` works. 0: one shared hostname (see env.sh)
#
# Facts this script is built on (Slurm 22.05, Open MPI 4.1, PMIx 4.2 on one host):
# - Several slurmd on one host need their own port, spool dir, pid file, log and TmpFS (%n): the
#   PMIx plugin creates DIR/tmp/%n/spmix_appdir_* per step, and a shared TmpFS makes the second
#   node's step fail with "File exists".
# - Open MPI's shared-memory transport (vader) names its segments after the hostname and job id, so
#   two "nodes" with one hostname collide and crash. UTS namespaces give each node its own hostname.
#   Even then, vader in Open MPI 4.x now and then segfaults when several MPI jobs share one host
#   (open-mpi/ompi#7642), which every job on this cluster does: seen here as a rare crash inside
#   mca_btl_vader_poll_handle_frag of a 2x4-rank run. env.sh therefore turns vader off and the ranks
#   talk over TCP on the loopback, as ranks on different hosts would.
# - Open MPI in Debian has PMIx but no PMI-1/2 support, so MpiDefault is pmix.
# - A requeued job waits cred_expire seconds (default 120) plus a scheduler pass before it may run
#   again; cred_expire=10 and sched_interval=5 make that about 15 s. MinJobAge=4 keeps
#   `sbatch --wait` polling every 2 s. There is no accounting daemon: DIR/jobcomp.txt has one line
#   per finished run (JobState, ExitCode), requeued runs included.
# - Killing slurmd leaves running steps alive, so stop cancels the jobs first.
set -euo pipefail

readonly LC_DEFAULT_DIR=/tmp/gpujob-slurm
readonly LC_DAEMONS="slurmd slurmctld munged"  # the only process names stop will ever signal

lc_die() { echo "slurm-local-cluster: $*" >&2; exit 1; }
lc_log() { echo "slurm-local-cluster: $*" >&2; }

# True when something accepts TCP connections on 127.0.0.1:$1.
lc_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# First port P >= 16817 with P..P+nodes all free.
lc_pick_port() {
  local nodes=$1 p i busy
  for ((p = 16817; p < 16817 + 400; p += nodes + 1)); do
    busy=0
    for ((i = 0; i <= nodes; i++)); do
      if lc_port_busy $((p + i)); then busy=1; break; fi
    done
    ((busy)) || { echo "$p"; return 0; }
  done
  lc_die "no free port range near 16817; set GPUJOB_LC_PORT"
}

# True when PID $1 runs one of our daemons (a zombie counts as gone).
lc_is_our_daemon() {
  local pid=$1 comm state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && " $LC_DAEMONS " == *" $comm "* ]]
}

lc_pid_files() {
  local dir=$1
  ls "$dir"/slurmd-*.pid 2>/dev/null || true
  [[ -f $dir/slurmctld.pid ]] && echo "$dir/slurmctld.pid"
  [[ -f $dir/munge/munged.pid ]] && echo "$dir/munge/munged.pid"
  return 0
}

lc_write_conf() {
  local dir=$1 auth=$2 nodes=$3 cpus=$4 port=$5 user=$6 i names=""
  local authconf
  if [[ $auth == munge ]]; then
    authconf="AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock,cred_expire=10"
  else
    authconf="AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=10"
  fi
  {
    cat <<EOF
# Written by scripts/slurm-local-cluster.sh: $nodes simulated nodes on one host.
ClusterName=gpujoblc
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmUser=$user
SlurmdUser=$user
$authconf
StateSaveLocation=$dir/state
SlurmctldPidFile=$dir/slurmctld.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdSpoolDir=$dir/spool/%n
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmdLogFile=$dir/log/slurmd-%n.log
TmpFS=$dir/tmp/%n
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5
MpiDefault=pmix
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=4
KillWait=5
JobRequeue=1
EOF
    for ((i = 1; i <= nodes; i++)); do
      echo "NodeName=n$i NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((port + i)) CPUs=$cpus State=UNKNOWN"
      names+="${names:+,}n$i"
    done
    echo "PartitionName=debug Nodes=$names Default=YES MaxTime=INFINITE State=UP"
  } > "$dir/slurm.conf"
}

lc_start() {
  local dir=$1
  local auth=${GPUJOB_LC_AUTH:-munge} nodes=${GPUJOB_LC_NODES:-2} cpus=${GPUJOB_LC_CPUS:-2}
  local port=${GPUJOB_LC_PORT:-auto} uts=${GPUJOB_LC_UTS:-auto} user i f t0=$SECONDS
  [[ $auth == munge || $auth == none ]] || lc_die "GPUJOB_LC_AUTH=$auth: expected munge or none"
  [[ $nodes =~ ^[1-9][0-9]*$ ]] || lc_die "GPUJOB_LC_NODES=$nodes: expected a positive integer"
  [[ $cpus =~ ^[1-9][0-9]*$ ]] || lc_die "GPUJOB_LC_CPUS=$cpus: expected a positive integer"
  local need=(slurmctld slurmd sinfo squeue scancel)
  [[ $auth == munge ]] && need+=(munged)
  for f in "${need[@]}"; do
    command -v "$f" >/dev/null || lc_die "$f not found (Debian: apt-get install slurm-wlm munge)"
  done
  [[ $(id -u) -eq 0 ]] || lc_log "warning: not root; slurmd may be unable to launch tasks"
  for f in $(lc_pid_files "$dir"); do
    lc_is_our_daemon "$(cat "$f")" && lc_die "$dir already has a running cluster (pid file $f); run: $0 stop $dir"
  done
  [[ $port == auto ]] && port=$(lc_pick_port "$nodes")
  [[ $port =~ ^[0-9]+$ ]] || lc_die "GPUJOB_LC_PORT=$port: expected a number or auto"
  if [[ $uts == auto ]]; then
    if unshare --uts true 2>/dev/null; then uts=1; else uts=0; fi
  fi
  user=$(id -un)

  # From here on a failure tears down whatever already started.
  LC_TEARDOWN_DIR=$dir
  trap 'lc_log "start failed; tearing down"; lc_stop "$LC_TEARDOWN_DIR" || true' EXIT
  rm -rf "$dir/state" "$dir/jobcomp.txt"
  mkdir -p "$dir"/{state,log}
  for ((i = 1; i <= nodes; i++)); do mkdir -p "$dir/spool/n$i" "$dir/tmp/n$i"; done

  if [[ $auth == munge ]]; then
    # munged refuses a socket whose directories others cannot traverse (mktemp -d makes 0700 ones)
    chmod 0755 "$dir"
    mkdir -p "$dir/munge"
    chmod 0755 "$dir/munge"  # munged refuses a socket directory others cannot traverse
    if [[ ! -s $dir/munge/munge.key ]]; then
      dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 0600 "$dir/munge/munge.key"
    munged --socket="$dir/munge/munge.sock" --key-file="$dir/munge/munge.key" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
      --seed-file="$dir/munge/munged.seed"
  fi

  lc_write_conf "$dir" "$auth" "$nodes" "$cpus" "$port" "$user"
  # shellcheck disable=SC2016
  {
    echo "# Source this file to use the local cluster in $dir."
    echo "export SLURM_CONF=$dir/slurm.conf"
    echo "# Every node is this host: Open MPI's TCP transport needs only the loopback interface."
    echo 'export OMPI_MCA_btl_tcp_if_include=${OMPI_MCA_btl_tcp_if_include:-lo}'
    echo "# Every node is this host: Open MPI's shared-memory transport (vader) crashes now and then"
    echo "# when several MPI jobs share a host (and collides outright when the nodes share a hostname)."
    echo 'export OMPI_MCA_btl=${OMPI_MCA_btl:-^vader}'
    if [[ $uts != 1 ]]; then
      echo "# The nodes share one hostname (no UTS namespaces here)."
    fi
  } > "$dir/env.sh"
  # shellcheck disable=SC1091
  . "$dir/env.sh"

  slurmctld -c  # -c: start with an empty job list (the state dir is ours and throwaway)
  for ((i = 1; i <= nodes; i++)); do
    if [[ $uts == 1 ]]; then
      unshare --uts sh -c "hostname n$i && exec slurmd -N n$i"
    else
      slurmd -N "n$i"
    fi
  done

  local idle=""
  for ((i = 0; i < 120; i++)); do
    idle=$(sinfo -h -o '%T %D' 2>/dev/null || true)
    [[ $idle == "idle $nodes" ]] && break
    sleep 0.5
  done
  [[ $idle == "idle $nodes" ]] || { sinfo >&2 || true; lc_die "nodes not idle after 60 s (see $dir/log)"; }
  trap - EXIT
  lc_log "up in $((SECONDS - t0)) s: $nodes nodes, port $port, auth $auth, uts $uts; . $dir/env.sh"
}

lc_stop() {
  local dir=$1 f pid i
  if [[ -f $dir/slurm.conf ]] && lc_is_our_daemon "$(cat "$dir/slurmctld.pid" 2>/dev/null || echo x)"; then
    # Cancel first: slurmstepd and the job's tasks outlive a killed slurmd.
    local jobs
    jobs=$(SLURM_CONF=$dir/slurm.conf squeue -h -o %i 2>/dev/null || true)
    # shellcheck disable=SC2086
    [[ -n $jobs ]] && { SLURM_CONF=$dir/slurm.conf scancel --quiet $jobs 2>/dev/null || true; }
    for ((i = 0; i < 60; i++)); do
      [[ -z $(SLURM_CONF=$dir/slurm.conf squeue -h -o %i 2>/dev/null || true) ]] && break
      sleep 0.5
    done
  fi
  for f in $(lc_pid_files "$dir"); do
    pid=$(cat "$f" 2>/dev/null || true)
    if lc_is_our_daemon "$pid"; then
      kill "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do lc_is_our_daemon "$pid" || break; sleep 0.1; done
      if lc_is_our_daemon "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$f"
  done
}

lc_main() {
  local cmd=${1:-} dir=${2:-$LC_DEFAULT_DIR}
  case $cmd in
    start)
      mkdir -p "$dir"
      dir=$(cd "$dir" && pwd)  # slurm.conf needs absolute paths
      lc_start "$dir"
      ;;
    stop)
      [[ -d $dir ]] || return 0
      lc_stop "$(cd "$dir" && pwd)"
      ;;
    env)
      [[ -f $dir/env.sh ]] || lc_die "$dir/env.sh missing; run: $0 start $dir"
      cat "$dir/env.sh"
      ;;
    status)
      [[ -f $dir/env.sh ]] || lc_die "$dir/env.sh missing; run: $0 start $dir"
      # shellcheck disable=SC1091
      . "$dir/env.sh"
      sinfo
      squeue
      ;;
    *)
      echo "usage: $0 start|stop|env|status [DIR]   (DIR default $LC_DEFAULT_DIR)" >&2
      return 2
      ;;
  esac
}

lc_main "$@"
