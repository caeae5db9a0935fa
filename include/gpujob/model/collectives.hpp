// Collectives: the two reductions tensor-parallel decoding needs, behind an interface that model/ sees.
#pragma once

#include <ATen/ATen.h>

namespace gpujob::model {

// The model layer knows nothing of MPI or NCCL: a tensor-parallel decoder calls these, and
// cluster/ supplies the MPI (CPU tensors) or NCCL (CUDA tensors) implementation. Every shard of
// one model must call the same collectives in the same order.
class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;  // this shard's index in [0, size)
  virtual int size() const = 0;  // number of shards
  // Sums `tensor` over all shards, in place (row-parallel o_proj / down_proj outputs).
  virtual void all_reduce_sum(at::Tensor& tensor) = 0;
  // Concatenates every shard's `tensor` along `dim`, in rank order.
  virtual at::Tensor all_gather(const at::Tensor& tensor, int64_t dim) = 0;
  // True when the operations only queue work on the current CUDA stream (no host wait, no host
  // copy), so a CUDA graph can capture them along with the decoder's kernels.
  virtual bool graph_capturable() const = 0;
};

// One process, one shard: both operations are the identity.
class IdentityCollectives final : public Collectives {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(at::Tensor&) override {}
  at::Tensor all_gather(const at::Tensor& tensor, int64_t) override { return tensor; }
  bool graph_capturable() const override { return true; }
};

}  // namespace gpujob::model
