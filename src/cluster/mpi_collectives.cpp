// MpiCollectives: MPI_Allreduce / MPI_Allgather of CPU tensors for tensor-parallel shards.
#include "gpujob/cluster/mpi_collectives.hpp"

#include "gpujob/cluster/mpi_check.hpp"
#include "gpujob/util/error.hpp"

#include <cstdint>
#include <vector>

namespace gpujob::cluster {

namespace {

// MPI datatype of a tensor summed natively; nullopt-like MPI_DATATYPE_NULL when it must be widened.
MPI_Datatype reduce_type(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kLong: return MPI_INT64_T;
    case at::kInt: return MPI_INT32_T;
    default: return MPI_DATATYPE_NULL;
  }
}

// MPI counts are int: a single call moves at most INT_MAX elements.
int checked_count(int64_t n, const char* what) {
  GPUJOB_CHECK(n <= INT32_MAX, what, ": ", n, " elements exceed one MPI call's limit of ", INT32_MAX);
  return static_cast<int>(n);
}

}  // namespace

MpiCollectives::MpiCollectives(Communicator comm) : comm_(std::move(comm)) {
  GPUJOB_CHECK(comm_.valid(), "MpiCollectives: null communicator");
  rank_ = comm_.rank();
  size_ = comm_.size();
}

void MpiCollectives::all_reduce_sum(at::Tensor& tensor) {
  if (size_ == 1) return;
  GPUJOB_CHECK(tensor.device().is_cpu(), "MpiCollectives::all_reduce_sum: tensor is on ",
               tensor.device().str(), ", expected CPU (CUDA tensors use NcclCollectives)");
  MPI_Datatype type = reduce_type(tensor.scalar_type());
  at::Tensor buffer = type == MPI_DATATYPE_NULL ? tensor.to(at::kFloat).contiguous() : tensor.contiguous();
  if (type == MPI_DATATYPE_NULL) type = MPI_FLOAT;
  const int count = checked_count(buffer.numel(), "MpiCollectives::all_reduce_sum");
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, buffer.data_ptr(), count, type, MPI_SUM, comm_.get()),
            "MpiCollectives::all_reduce_sum: MPI_Allreduce");
  // Contiguous tensors of a summable type were reduced in place; anything else is copied back.
  if (!buffer.is_same(tensor)) tensor.copy_(buffer);
}

at::Tensor MpiCollectives::all_gather(const at::Tensor& tensor, int64_t dim) {
  if (size_ == 1) return tensor;
  GPUJOB_CHECK(tensor.device().is_cpu(), "MpiCollectives::all_gather: tensor is on ",
               tensor.device().str(), ", expected CPU (CUDA tensors use NcclCollectives)");
  const int64_t rank_dims = tensor.dim();
  GPUJOB_CHECK(dim >= -rank_dims && dim < rank_dims, "MpiCollectives::all_gather: dim ", dim,
               " is out of range for a tensor of ", rank_dims, " dims");
  at::Tensor local = tensor.contiguous();

  // Shards disagreeing on the shape would make MPI write past the buffer: check it first.
  std::vector<int64_t> shape = local.sizes().vec();
  std::vector<int64_t> numels(static_cast<size_t>(size_));
  int64_t numel = local.numel();
  check_mpi(MPI_Allgather(&numel, 1, MPI_INT64_T, numels.data(), 1, MPI_INT64_T, comm_.get()),
            "MpiCollectives::all_gather: MPI_Allgather of sizes");
  for (int r = 0; r < size_; ++r) {
    GPUJOB_CHECK(numels[static_cast<size_t>(r)] == numel, "MpiCollectives::all_gather: shard ", r,
                 " has ", numels[static_cast<size_t>(r)], " elements, shard ", rank_, " has ", numel);
  }

  std::vector<int64_t> gathered_shape = {size_};
  gathered_shape.insert(gathered_shape.end(), shape.begin(), shape.end());
  at::Tensor gathered = at::empty(gathered_shape, local.options());
  const int bytes = checked_count(local.numel() * local.element_size(), "MpiCollectives::all_gather");
  check_mpi(MPI_Allgather(local.data_ptr(), bytes, MPI_BYTE, gathered.data_ptr(), bytes, MPI_BYTE, comm_.get()),
            "MpiCollectives::all_gather: MPI_Allgather");
  return at::cat(gathered.unbind(0), dim);
}

}  // namespace gpujob::cluster
