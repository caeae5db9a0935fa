// MpiCollectives: tensor-parallel all-reduce and all-gather of CPU tensors over an MPI communicator.
#pragma once

#include "gpujob/model/collectives.hpp"

#include <mpi.h>

#include <string>

namespace gpujob::cluster {

// Owns one MPI communicator (freed on destruction). Non-copyable, movable.
class MpiComm {
 public:
  MpiComm() = default;
  explicit MpiComm(MPI_Comm comm) : comm_(comm) {}
  ~MpiComm();
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;
  MpiComm(MpiComm&& other) noexcept : comm_(other.comm_) { other.comm_ = MPI_COMM_NULL; }
  MpiComm& operator=(MpiComm&& other) noexcept;

  MPI_Comm get() const { return comm_; }
  bool valid() const { return comm_ != MPI_COMM_NULL; }
  int rank() const;
  int size() const;

  // MPI_Comm_split of `parent`: ranks with the same color form one communicator, ordered by key.
  // A negative color (MPI_UNDEFINED) gives an invalid MpiComm. Collective over `parent`.
  static MpiComm split(MPI_Comm parent, int color, int key);

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// Throws a gpujob::Error "<what>: <MPI error string> (rank R)" when `code` is not MPI_SUCCESS.
void check_mpi(int code, const char* what);

// The Collectives of one tensor-parallel shard group on CPU tensors. Every shard calls each
// operation with tensors of the same shape and dtype, in the same order.
// Sums go through MPI_Allreduce; bfloat16 and float16 tensors are summed in float32 (MPI has no
// such types, and the wider sum is also what NCCL's reduction does in effect for a few shards).
class MpiCollectives final : public model::Collectives {
 public:
  explicit MpiCollectives(MpiComm comm);

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(at::Tensor& tensor) override;
  at::Tensor all_gather(const at::Tensor& tensor, int64_t dim) override;

  MPI_Comm comm() const { return comm_.get(); }

 private:
  MpiComm comm_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace gpujob::cluster
