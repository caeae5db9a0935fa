// Layout: the role table (which rank holds which role on which node-local GPU), the same on every rank.
#pragma once

#include <string>
#include <vector>

#include "gpujob/config/run_config.hpp"

namespace gpujob::cluster {

using config::Role;

// One role held by a rank. A rank holds two roles only in an overlap layout (generator and
// extractor on the same GPUs): it runs them as phases, generation first.
struct RoleAssignment {
  Role role;
  int gpu = 0;                   // node-local GPU id (a slot number when the model runs on the CPU)
  double memory_fraction = 0.9;  // of that GPU's memory, for this rank while the role runs
  int index = 0;                 // rank's position among all ranks of this role, over all nodes
  int count = 1;                 // ranks of this role over all nodes
  int group = -1;                // target_shard/draft: tensor-parallel group over all nodes; -1 otherwise
  int group_rank = 0;            // position in that group (the shard number)
  int group_size = 1;            // ranks in that group (tensor-parallel degree)
};

// One row of the table.
struct RankPlacement {
  int rank = 0;        // world rank
  int node = 0;        // node index, 0-based
  int local_rank = 0;  // rank on its node
  std::vector<RoleAssignment> roles;  // in phase order; empty = no role (cannot happen in a valid layout)

  bool has(Role role) const { return find(role) != nullptr; }
  const RoleAssignment* find(Role role) const;
  // Whether this rank runs generation and extraction in phases on the same GPU.
  bool phased() const { return roles.size() > 1; }
};

class Layout {
 public:
  // Builds the per-node pattern from the config. Without roles in the config (an automatic layout)
  // every rank holds the job's roles in phases and `ranks_per_node` decides the node size; with
  // roles it is ignored (pass 0).
  static Layout from_config(const config::RunConfig& config, int ranks_per_node = 0);

  bool automatic() const { return automatic_; }
  int ranks_per_node() const { return static_cast<int>(node_pattern_.size()); }
  // "generator 4 + extractor 4" (phased roles counted once).
  std::string ranks_per_node_summary() const;

  // The row of one rank: rank = node * ranks_per_node + local_rank (ranks are placed node by node).
  RankPlacement placement(int node, int local_rank, int nodes) const;
  std::vector<RankPlacement> table(int nodes) const;

  // Ranks of `role` on one node / tensor-parallel groups of `role` on one node.
  int role_ranks_per_node(Role role) const;
  int groups_per_node(Role role) const;

  // Risky choices, one line each: GPUs whose memory fractions add up above 1.
  std::vector<std::string> warnings() const;

 private:
  struct Slot {
    std::vector<RoleAssignment> roles;  // index/count/group hold node-local values
  };
  bool automatic_ = false;
  std::vector<Slot> node_pattern_;
  std::vector<int> role_ranks_;   // per Role: ranks per node
  std::vector<int> role_groups_;  // per Role: tensor-parallel groups per node
};

// What a rank knows about where it was started; the inputs of the startup checks.
struct LaunchFacts {
  int world_size = 1;
  int node = 0;
  int nodes = 1;
  int local_size = 1;        // ranks on this node
  std::string host;          // node name for messages
  int visible_gpus = 0;      // GPUs the process sees (0 on CPU builds)
  int slurm_tasks = 0;       // SLURM_NTASKS when set, else 0
};

// Startup checks, each a one-line gpujob::Error: a world of 1 where the layout needs more ranks
// (srun without the MPI plugin), a node with more or fewer ranks than the layout, a GPU id the
// node does not have (checked against layout.gpus_per_node, and the visible GPUs when the model
// runs on CUDA).
void check_launch(const Layout& layout, const config::RunConfig& config, const LaunchFacts& facts);

// GPU ids in the config that a node with `gpus_on_node` GPUs lacks; `host` names it in the error.
void check_gpu_ids(const config::RunConfig& config, int gpus_on_node, const std::string& host);

// Whether the config's model runs on CUDA given what the process sees.
bool uses_cuda(const config::RunConfig& config, int visible_gpus);

// The table as `gpujob plan` prints it, followed by the warnings.
std::string format_role_table(const Layout& layout, const config::RunConfig& config, int nodes);

}  // namespace gpujob::cluster
