// NcclCollectives: NCCL all-reduce / all-gather on a dedicated stream; a clear error in CPU builds.
#include "gpujob/cluster/nccl_collectives.hpp"

#include "gpujob/cluster/mpi_collectives.hpp"
#include "gpujob/cluster/mpi_check.hpp"
#include "gpujob/util/error.hpp"

#ifdef GPUJOB_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

#include <vector>

namespace gpujob::cluster {

#ifdef GPUJOB_WITH_CUDA

namespace {

void check_cuda(cudaError_t code, const char* what) {
  if (code != cudaSuccess) fail("CUDA call failed: ", what, ": ", cudaGetErrorString(code));
}

void check_nccl(ncclResult_t code, const char* what) {
  if (code != ncclSuccess) fail("NCCL call failed: ", what, ": ", ncclGetErrorString(code));
}

#define GPUJOB_CUDA_CHECK(expr) check_cuda((expr), #expr)
#define GPUJOB_NCCL_CHECK(expr) check_nccl((expr), #expr)

ncclDataType_t nccl_type(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return ncclFloat32;
    case at::kHalf: return ncclFloat16;
    case at::kDouble: return ncclFloat64;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
    case at::kBFloat16: return ncclBfloat16;
#endif
    default: fail("NcclCollectives: no NCCL reduction for dtype ", c10::toString(dtype));
  }
}

}  // namespace

struct NcclCollectives::State {
  int device = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;  // the collectives' own stream
  cudaEvent_t ready = nullptr;    // recorded on libtorch's stream before a collective
  cudaEvent_t done = nullptr;     // recorded on `stream` after it

  ~State() {
    // Errors are not thrown from a destructor; the handles are released best-effort.
    if (comm != nullptr) ncclCommDestroy(comm);
    if (done != nullptr) cudaEventDestroy(done);
    if (ready != nullptr) cudaEventDestroy(ready);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }

  // The collective sees everything libtorch queued before it, and libtorch's later work sees its
  // result: two events instead of synchronizing the host.
  void enter(cudaStream_t torch_stream) {
    GPUJOB_CUDA_CHECK(cudaEventRecord(ready, torch_stream));
    GPUJOB_CUDA_CHECK(cudaStreamWaitEvent(stream, ready, 0));
  }
  void leave(cudaStream_t torch_stream) {
    GPUJOB_CUDA_CHECK(cudaEventRecord(done, stream));
    GPUJOB_CUDA_CHECK(cudaStreamWaitEvent(torch_stream, done, 0));
  }
  void check_tensor(const at::Tensor& tensor, const char* op) const {
    GPUJOB_CHECK(tensor.is_cuda() && tensor.get_device() == device, "NcclCollectives::", op,
                 ": tensor is on ", tensor.device().str(), ", expected cuda:", device);
  }
};

NcclCollectives::NcclCollectives(MPI_Comm group, int device) : state_(std::make_unique<State>()) {
  check_mpi(MPI_Comm_rank(group, &rank_), "NcclCollectives: MPI_Comm_rank");
  check_mpi(MPI_Comm_size(group, &size_), "NcclCollectives: MPI_Comm_size");
  state_->device = device;
  ncclUniqueId id;
  if (rank_ == 0) GPUJOB_NCCL_CHECK(ncclGetUniqueId(&id));
  check_mpi(MPI_Bcast(&id, static_cast<int>(sizeof(id)), MPI_BYTE, 0, group),
            "NcclCollectives: MPI_Bcast of the NCCL unique id");
  // NCCL binds the communicator to the device current at init.
  GPUJOB_CUDA_CHECK(cudaSetDevice(device));
  GPUJOB_CUDA_CHECK(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking));
  GPUJOB_CUDA_CHECK(cudaEventCreateWithFlags(&state_->ready, cudaEventDisableTiming));
  GPUJOB_CUDA_CHECK(cudaEventCreateWithFlags(&state_->done, cudaEventDisableTiming));
  GPUJOB_NCCL_CHECK(ncclCommInitRank(&state_->comm, size_, id, rank_));
}

NcclCollectives::~NcclCollectives() = default;

bool NcclCollectives::available() { return true; }

// One rank calls NCCL too (where it copies, or does nothing): jobs make NCCL groups of two or
// more shards only, and a one-GPU test then runs the same calls, eagerly and in CUDA graphs.
void NcclCollectives::all_reduce_sum(at::Tensor& tensor) {
  state_->check_tensor(tensor, "all_reduce_sum");
  at::Tensor buffer = tensor.contiguous();
  const ncclDataType_t type = nccl_type(buffer.scalar_type());
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(state_->device));
  cudaStream_t torch_stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(state_->device)).stream();
  state_->enter(torch_stream);
  GPUJOB_NCCL_CHECK(ncclAllReduce(buffer.data_ptr(), buffer.data_ptr(), static_cast<size_t>(buffer.numel()), type,
                                  ncclSum, state_->comm, state_->stream));
  state_->leave(torch_stream);
  // A temporary contiguous copy is freed into libtorch's stream, which now waits for `done`.
  if (!buffer.is_same(tensor)) tensor.copy_(buffer);
}

at::Tensor NcclCollectives::all_gather(const at::Tensor& tensor, int64_t dim) {
  state_->check_tensor(tensor, "all_gather");
  const int64_t rank_dims = tensor.dim();
  GPUJOB_CHECK(dim >= -rank_dims && dim < rank_dims, "NcclCollectives::all_gather: dim ", dim,
               " is out of range for a tensor of ", rank_dims, " dims");
  at::Tensor local = tensor.contiguous();
  std::vector<int64_t> gathered_shape = {size_};
  for (int64_t s : local.sizes()) gathered_shape.push_back(s);
  at::Tensor gathered = at::empty(gathered_shape, local.options());
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(state_->device));
  cudaStream_t torch_stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(state_->device)).stream();
  state_->enter(torch_stream);
  // Gathering bytes works for every dtype (no arithmetic is involved).
  GPUJOB_NCCL_CHECK(ncclAllGather(local.data_ptr(), gathered.data_ptr(),
                                  static_cast<size_t>(local.numel() * local.element_size()), ncclInt8,
                                  state_->comm, state_->stream));
  state_->leave(torch_stream);
  return at::cat(gathered.unbind(0), dim);
}

#else  // CPU build

struct NcclCollectives::State {};

NcclCollectives::NcclCollectives(MPI_Comm, int) {
  fail("NcclCollectives: this build has no CUDA/NCCL support (configure against a CUDA libtorch "
       "with NCCL_HOME set); CPU shards communicate through MpiCollectives");
}

NcclCollectives::~NcclCollectives() = default;

bool NcclCollectives::available() { return false; }

void NcclCollectives::all_reduce_sum(at::Tensor&) { fail("NcclCollectives: not available in a CPU build"); }

at::Tensor NcclCollectives::all_gather(const at::Tensor&, int64_t) {
  fail("NcclCollectives: not available in a CPU build");
}

#endif

}  // namespace gpujob::cluster
