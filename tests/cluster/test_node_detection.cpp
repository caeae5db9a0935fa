// Node detection under mpirun (4 ranks): MPI's shared-memory split (one host: one node), Slurm's
// variables as srun sets them (two simulated nodes), and the malformed or partial cases.
#include <cstdlib>
#include <map>
#include <string>

#include "gpujob/cluster/world.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

using namespace gpujob;
using namespace gpujob::cluster;

namespace {

World& world() {
  static World w(nullptr, nullptr);
  return w;
}

EnvLookup map_env(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

// What srun would set for task `rank` of `size` tasks, `per_node` tasks per node.
std::map<std::string, std::string> srun_env(int rank, int size, int per_node) {
  return {{"SLURM_PROCID", std::to_string(rank)},
          {"SLURM_NTASKS", std::to_string(size)},
          {"SLURM_NODEID", std::to_string(rank / per_node)},
          {"SLURM_LOCALID", std::to_string(rank % per_node)},
          {"SLURMD_NODENAME", "sim" + std::to_string(rank / per_node)}};
}

}  // namespace

TEST_CASE("read_slurm_task reads srun's variables and rejects malformed ones") {
  CHECK_FALSE(read_slurm_task(map_env({})).has_value());
  CHECK_FALSE(read_slurm_task(map_env({{"SLURM_NODEID", "0"}})).has_value());  // a batch script, not a task
  const auto t = read_slurm_task(map_env(srun_env(5, 8, 4)));
  REQUIRE(t.has_value());
  CHECK(t->proc_id == 5);
  CHECK(t->ntasks == 8);
  CHECK(t->node_id == 1);
  CHECK(t->local_id == 1);
  CHECK(t->node_name == "sim1");
  CHECK_THROWS_WITH(read_slurm_task(map_env({{"SLURM_NODEID", "x"}, {"SLURM_LOCALID", "0"}})),
                    "environment variable SLURM_NODEID=x: expected a non-negative integer");
}

TEST_CASE("MPI's shared-memory split puts every rank of this host on one node") {
  World& w = world();
  const NodeInfo info = detect_node(w.comm(), config::NodeDetection::mpi, map_env(srun_env(w.rank(), w.size(), 2)));
  CHECK(info.nodes == 1);
  CHECK(info.node == 0);
  CHECK(info.local_rank == w.rank());
  CHECK(info.local_size == w.size());
  CHECK(info.host == host_name());
  CHECK_FALSE(info.from_slurm);
}

TEST_CASE("under srun, Slurm's variables place the ranks on their nodes") {
  World& w = world();
  if (w.size() < 2 || w.size() % 2 != 0) {
    WARN("runs under mpirun with an even number of ranks (CTest: mpi_node_detection_4)");
    return;
  }
  const auto env = map_env(srun_env(w.rank(), w.size(), 2));
  for (auto mode : {config::NodeDetection::automatic, config::NodeDetection::slurm}) {
    const NodeInfo info = detect_node(w.comm(), mode, env);
    CHECK(info.from_slurm);
    CHECK(info.nodes == w.size() / 2);
    CHECK(info.node == w.rank() / 2);
    CHECK(info.local_rank == w.rank() % 2);
    CHECK(info.local_size == 2);
    CHECK(info.host == "sim" + std::to_string(w.rank() / 2));
    CHECK(info.node_comm.size() == 2);
  }
}

TEST_CASE("automatic detection ignores Slurm variables that describe another launch") {
  World& w = world();
  if (w.size() < 2) {
    WARN("runs under mpirun with several ranks (CTest: mpi_node_detection_4)");
    return;
  }
  // mpirun inside an allocation: the batch step's variables, the same on every rank.
  auto vars = srun_env(0, 1, 1);
  const NodeInfo info = detect_node(w.comm(), config::NodeDetection::automatic, map_env(vars));
  CHECK_FALSE(info.from_slurm);
  CHECK(info.local_size == w.size());
  // Asking for Slurm detection there is an error on every rank, not a hang.
  std::map<std::string, std::string> partial;
  if (w.rank() != 1) partial = srun_env(w.rank(), w.size(), 2);
  CHECK_THROWS_WITH(w.agree([&] { detect_node(w.comm(), config::NodeDetection::slurm, map_env(partial)); }),
                    "layout.node_detection is slurm but SLURM_NODEID/SLURM_LOCALID are not set on rank 1 (start the "
                    "job with srun)");
}
