// make_shard_collectives: NcclCollectives for CUDA shards, MpiCollectives for CPU ones.
#include "gpujob/cluster/shard_collectives.hpp"

#include "gpujob/cluster/mpi_collectives.hpp"
#include "gpujob/cluster/nccl_collectives.hpp"

namespace gpujob::cluster {

std::unique_ptr<model::Collectives> make_shard_collectives(Communicator& group, bool cuda, int gpu) {
  if (cuda) return std::make_unique<NcclCollectives>(group.get(), gpu);
  return std::make_unique<MpiCollectives>(std::move(group));
}

}  // namespace gpujob::cluster
