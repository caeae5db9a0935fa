// MpiCollectives: tensor-parallel all-reduce and all-gather of CPU tensors over an MPI communicator.
#pragma once

#include "gpujob/model/collectives.hpp"

#include <mpi.h>

#include "gpujob/cluster/communicator.hpp"

namespace gpujob::cluster {

// The Collectives of one tensor-parallel shard group on CPU tensors. Every shard calls each
// operation with tensors of the same shape and dtype, in the same order.
// Sums go through MPI_Allreduce; bfloat16 and float16 tensors are summed in float32 (MPI has no
// such types, and the wider sum is also what NCCL's reduction does in effect for a few shards).
class MpiCollectives final : public model::Collectives {
 public:
  explicit MpiCollectives(Communicator comm);

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(at::Tensor& tensor) override;
  at::Tensor all_gather(const at::Tensor& tensor, int64_t dim) override;
  bool graph_capturable() const override { return false; }  // the host waits for MPI

  MPI_Comm comm() const { return comm_.get(); }

 private:
  Communicator comm_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace gpujob::cluster
