#include "gpujob/cluster/node_detection.hpp"

#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "gpujob/cluster/mpi_check.hpp"
#include "gpujob/cluster/world.hpp"

namespace gpujob::cluster {

namespace {

int parse_count(const char* name, const char* value) {
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || v < 0 || v > INT_MAX) {
    fail("environment variable ", name, "=", value, ": expected a non-negative integer");
  }
  return static_cast<int>(v);
}

}  // namespace

std::string host_name() {
  char name[256] = {0};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown-host";
  return name;
}

std::optional<SlurmTask> read_slurm_task(const EnvLookup& env) {
  const char* node_id = env("SLURM_NODEID");
  const char* local_id = env("SLURM_LOCALID");
  if (!node_id || !local_id) return std::nullopt;
  SlurmTask t;
  t.node_id = parse_count("SLURM_NODEID", node_id);
  t.local_id = parse_count("SLURM_LOCALID", local_id);
  if (const char* p = env("SLURM_PROCID")) t.proc_id = parse_count("SLURM_PROCID", p);
  if (const char* n = env("SLURM_NTASKS")) {
    t.ntasks = parse_count("SLURM_NTASKS", n);
  } else if (const char* n2 = env("SLURM_NPROCS")) {
    t.ntasks = parse_count("SLURM_NPROCS", n2);
  }
  const char* name = env("SLURMD_NODENAME");
  t.node_name = name && *name ? name : host_name();
  return t;
}

NodeInfo detect_node(MPI_Comm world, config::NodeDetection mode, const EnvLookup& env) {
  int rank = 0, size = 1;
  MPI_CHECK(MPI_Comm_rank(world, &rank));
  MPI_CHECK(MPI_Comm_size(world, &size));
  std::optional<SlurmTask> task;
  std::string task_error;
  try {
    task = read_slurm_task(env);
  } catch (const Error& e) {
    task_error = e.what();
  }
  // Decide together: every rank must take the same branch.
  int usable = task && task_error.empty() ? 1 : 0;
  int same_world = usable && task->proc_id == rank && task->ntasks == size ? 1 : 0;
  int all_usable = 0, all_same_world = 0, missing = usable ? size : rank, first_missing = size;
  MPI_CHECK(MPI_Allreduce(&usable, &all_usable, 1, MPI_INT, MPI_MIN, world));
  MPI_CHECK(MPI_Allreduce(&missing, &first_missing, 1, MPI_INT, MPI_MIN, world));
  MPI_CHECK(MPI_Allreduce(&same_world, &all_same_world, 1, MPI_INT, MPI_MIN, world));

  bool use_slurm = false;
  if (mode == config::NodeDetection::slurm) {
    if (!all_usable) {
      // Every rank reaches this branch; the ones with a reason report it.
      if (!task_error.empty()) fail("layout.node_detection is slurm but ", task_error);
      fail("layout.node_detection is slurm but SLURM_NODEID/SLURM_LOCALID are not set on rank ", first_missing,
           " (start the job with srun)");
    }
    use_slurm = true;
  } else if (mode == config::NodeDetection::automatic) {
    use_slurm = all_usable && all_same_world;
  }

  NodeInfo info;
  if (use_slurm) {
    info.node_comm = Communicator::split(world, task->node_id, task->local_id);
    info.host = task->node_name;
    info.from_slurm = true;
  } else {
    MPI_Comm node = MPI_COMM_NULL;
    MPI_CHECK(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
    info.node_comm = Communicator(node);
    info.host = host_name();
  }
  info.local_rank = info.node_comm.rank();
  info.local_size = info.node_comm.size();
  // Decided together so that no rank goes on to the next collective alone.
  int mismatch = use_slurm && info.local_rank != task->local_id ? 1 : 0, any_mismatch = 0;
  MPI_CHECK(MPI_Allreduce(&mismatch, &any_mismatch, 1, MPI_INT, MPI_MAX, world));
  if (any_mismatch) {
    if (mismatch) {
      fail("rank ", rank, " on node ", info.host, ": SLURM_LOCALID=", task->local_id, " but it is task ",
           info.local_rank, " of its node; the Slurm variables do not describe this MPI job");
    }
    fail("the Slurm variables of another rank do not describe this MPI job");
  }
  // Node index: the position of the node's first rank among all nodes' first ranks.
  Communicator leaders = Communicator::split(world, info.local_rank == 0 ? 0 : MPI_UNDEFINED, rank);
  int index_and_count[2] = {0, 0};
  if (leaders.valid()) {
    index_and_count[0] = leaders.rank();
    index_and_count[1] = leaders.size();
  }
  MPI_CHECK(MPI_Bcast(index_and_count, 2, MPI_INT, 0, info.node_comm.get()));
  info.node = index_and_count[0];
  info.nodes = index_and_count[1];
  return info;
}

}  // namespace gpujob::cluster
