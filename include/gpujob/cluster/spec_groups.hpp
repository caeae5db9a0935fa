// SpecGroups: the communicators of a Speculative Thinking run (target shards, draft shards, driver channels).
#pragma once

#include "gpujob/cluster/communicator.hpp"

#include <mpi.h>

namespace gpujob::cluster {

// What one rank holds in a spec_thinking layout (from the role table).
struct SpecRankRole {
  bool target_shard = false;  // one shard of the large model
  bool draft = false;         // one shard of the small model
  int group_rank = 0;         // shard number in its group
  int group_size = 1;         // shards in its group (tensor-parallel degree)
};

// The draft group's shard 0 is the driver: it runs the algorithm and sends commands to both groups.
// Communicators this rank is not part of are invalid (Communicator::valid() == false).
struct SpecGroups {
  bool driver = false;
  SpecRankRole role;
  Communicator target_group;    // target shards, ordered by shard number: the target's collectives
  Communicator draft_group;     // draft shards, ordered by shard number: the draft's collectives
  Communicator target_channel;  // the driver (rank 0) and every target shard (rank 1 + shard number)
  Communicator draft_channel;   // the draft shards (driver = rank 0), apart from the collectives' traffic
  int target_leader = 1;   // target shard 0's rank in target_channel
};

// Collective over `world`. Checks on every rank (so all fail together, with the same one-line
// message) that there is exactly one target group and one draft group, each with shards
// 0..size-1, and that no rank holds both roles.
SpecGroups make_spec_groups(MPI_Comm world, const SpecRankRole& me);

}  // namespace gpujob::cluster
