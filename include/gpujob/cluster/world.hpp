// World: MPI for the life of the process (RAII init/finalize), this rank, its node, and collective checks.
#pragma once

#include <mpi.h>

#include <functional>
#include <string>

#include "gpujob/cluster/communicator.hpp"
#include "gpujob/cluster/node_detection.hpp"

namespace gpujob::cluster {

// Thrown on every rank by World::agree when some rank failed a step; the message has already been
// agreed on (rank 0 prints it once).
class AgreedFailure : public Error {
 public:
  AgreedFailure(const std::string& message, int failed_rank) : Error(message), failed_rank_(failed_rank) {}
  int failed_rank() const { return failed_rank_; }

 private:
  int failed_rank_;
};

class World {
 public:
  // MPI_Init_thread with MPI_THREAD_MULTIPLE (the coordinator is a thread on rank 0); works
  // without mpirun as a singleton. If MPI is already initialised it is left to its owner.
  World(int* argc, char*** argv);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm comm() const { return MPI_COMM_WORLD; }

  // Collective: learns the node (see detect_node); before it, node() is one node per rank.
  void detect_node(config::NodeDetection mode);
  const NodeInfo& node() const { return node_; }
  const std::string& host() const { return node_.host; }

  // Collective: runs `step` on every rank; if it throws on any rank, every rank throws
  // AgreedFailure carrying the message of the lowest failing rank. Startup uses it so that a bad
  // config is reported once and every rank exits cleanly instead of some waiting forever.
  void agree(const std::function<void()>& step) const;

  // Collective: whether `flag` is true on any rank.
  bool any(bool flag) const;

 private:
  bool owns_mpi_ = false;
  int rank_ = 0;
  int size_ = 1;
  NodeInfo node_;
};

// The host name of this machine.
std::string host_name();

}  // namespace gpujob::cluster
