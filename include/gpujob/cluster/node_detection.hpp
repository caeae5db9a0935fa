// Node detection: which node a rank is on and its rank there, from MPI's shared-memory split or Slurm.
#pragma once

#include <mpi.h>

#include <functional>
#include <optional>
#include <string>

#include "gpujob/cluster/communicator.hpp"
#include "gpujob/config/run_config.hpp"

namespace gpujob::cluster {

struct NodeInfo {
  int node = 0;        // node index over the job, 0-based, ordered by the node's lowest world rank
  int nodes = 1;       // nodes in the job
  int local_rank = 0;  // rank on this node
  int local_size = 1;  // ranks on this node
  std::string host;    // SLURMD_NODENAME under Slurm detection, else the host name
  bool from_slurm = false;
  Communicator node_comm;  // the ranks of this node, ordered by local rank
};

// What srun tells one task about itself.
struct SlurmTask {
  int proc_id = 0;   // SLURM_PROCID: task rank in the step
  int ntasks = 0;    // SLURM_NTASKS (or SLURM_NPROCS)
  int node_id = 0;   // SLURM_NODEID: node index in the allocation
  int local_id = 0;  // SLURM_LOCALID: task index on the node
  std::string node_name;  // SLURMD_NODENAME
};

using EnvLookup = std::function<const char*(const char*)>;

// The task's Slurm variables, or nothing when SLURM_NODEID or SLURM_LOCALID is missing (not under srun).
// Malformed values are a one-line error naming the variable.
std::optional<SlurmTask> read_slurm_task(const EnvLookup& env);

// Collective over `world`. mpi: MPI_Comm_split_type(MPI_COMM_TYPE_SHARED). slurm: Slurm's variables
// (an error when a rank lacks them). automatic: Slurm's variables when every rank is an srun task
// of this very MPI world (SLURM_PROCID = rank, SLURM_NTASKS = size), else MPI. Slurm is preferred
// there because it states the placement the user asked for even where several simulated nodes
// share one host.
NodeInfo detect_node(MPI_Comm world, config::NodeDetection mode, const EnvLookup& env);

}  // namespace gpujob::cluster
