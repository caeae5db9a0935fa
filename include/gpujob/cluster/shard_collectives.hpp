// make_shard_collectives: the Collectives of a tensor-parallel shard group, NCCL or MPI by device.
#pragma once

#include <memory>

#include "gpujob/cluster/communicator.hpp"
#include "gpujob/model/collectives.hpp"

namespace gpujob::cluster {

// The reductions of one shard group: NCCL between the GPUs (`gpu`, this rank's device, already
// selected) when `cuda`, else MPI on CPU tensors. The MPI collectives take `group` over (it is
// left empty); NCCL only uses it to set up its communicator. Collective over `group`.
std::unique_ptr<model::Collectives> make_shard_collectives(Communicator& group, bool cuda, int gpu);

}  // namespace gpujob::cluster
