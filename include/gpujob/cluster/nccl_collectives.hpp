// NcclCollectives: tensor-parallel all-reduce and all-gather of CUDA tensors over one NCCL communicator.
#pragma once

#include "gpujob/model/collectives.hpp"

#include <mpi.h>

#include <memory>

namespace gpujob::cluster {

// One shard group's NCCL communicator, built over the group's MPI communicator: rank 0 of `group`
// creates the unique id and broadcasts it over MPI, every rank selects `device` before
// ncclCommInitRank, and the collectives run on a stream of their own, ordered after (and before)
// the work libtorch queues on its current stream. Non-copyable; destroys the communicator and
// stream on destruction.
//
// Only CUDA builds (GPUJOB_WITH_CUDA) implement it; elsewhere the constructor throws a clear error,
// so code paths that name it still compile.
class NcclCollectives final : public model::Collectives {
 public:
  NcclCollectives(MPI_Comm group, int device);
  ~NcclCollectives() override;
  NcclCollectives(const NcclCollectives&) = delete;
  NcclCollectives& operator=(const NcclCollectives&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(at::Tensor& tensor) override;
  at::Tensor all_gather(const at::Tensor& tensor, int64_t dim) override;
  // NCCL calls are captured into CUDA graphs (the collectives' stream joins the captured one).
  bool graph_capturable() const override { return true; }

  // True when this build can create NCCL communicators.
  static bool available();

 private:
  struct State;  // NCCL and CUDA handles, kept out of this header
  std::unique_ptr<State> state_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace gpujob::cluster
