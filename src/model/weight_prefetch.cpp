#include "weight_prefetch.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gpujob/model/fused_ops.hpp"
#include "gpujob/util/error.hpp"

#if defined(GPUJOB_WITH_CUDA) && defined(GPUJOB_WITH_FUSED_KERNELS)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#define GPUJOB_PREFETCH 1
#else
#define GPUJOB_PREFETCH 0
#endif

namespace gpujob::model {

#if GPUJOB_PREFETCH
namespace {

bool wanted() {
  const char* v = std::getenv("GPUJOB_L2_PREFETCH");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

int64_t bytes_per_weight() {
  const char* v = std::getenv("GPUJOB_L2_PREFETCH_MB");
  const double mb = v != nullptr ? std::atof(v) : 16.0;
  return static_cast<int64_t>(mb * 1e6);
}

// GPUJOB_L2_PREFETCH_PARTS=1 spreads the bytes over the start of every row instead of taking the
// first rows whole.
int64_t parts_per_row() {
  const char* v = std::getenv("GPUJOB_L2_PREFETCH_PARTS");
  return v != nullptr ? std::atoi(v) : 0;
}

}  // namespace

struct WeightPrefetch::Impl {
  c10::DeviceIndex device;
  cudaStream_t stream = nullptr;
  cudaEvent_t fork = nullptr, done = nullptr;
  int64_t bytes = 0, parts = 0;
  bool pending = false;  // prefetches queued since the last join

  ~Impl() {
    if (done != nullptr) (void)cudaEventDestroy(done);
    if (fork != nullptr) (void)cudaEventDestroy(fork);
    if (stream != nullptr) (void)cudaStreamDestroy(stream);
  }
};

WeightPrefetch::WeightPrefetch(c10::Device device) {
  if (!device.is_cuda() || !wanted()) return;
  c10::cuda::CUDAGuard guard(device);
  int major = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device.index()));
  if (major < 9) return;  // no bulk L2 prefetch before Hopper
  auto impl = std::make_unique<Impl>();
  impl->device = device.index();
  impl->bytes = bytes_per_weight();
  impl->parts = parts_per_row();
  if (impl->bytes <= 0) return;
  C10_CUDA_CHECK(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
  C10_CUDA_CHECK(cudaEventCreateWithFlags(&impl->fork, cudaEventDisableTiming));
  C10_CUDA_CHECK(cudaEventCreateWithFlags(&impl->done, cudaEventDisableTiming));
  impl_ = std::move(impl);
}

WeightPrefetch::~WeightPrefetch() = default;

void WeightPrefetch::prefetch(const at::Tensor& w) {
  if (!impl_ || !w.defined()) return;
  const cudaStream_t work = at::cuda::getCurrentCUDAStream(impl_->device).stream();
  C10_CUDA_CHECK(cudaEventRecord(impl_->fork, work));
  C10_CUDA_CHECK(cudaStreamWaitEvent(impl_->stream, impl_->fork, 0));
  {
    c10::cuda::CUDAStreamGuard guard(c10::cuda::getStreamFromExternal(impl_->stream, impl_->device));
    const int64_t row_bytes = w.size(1) * w.element_size();
    if (impl_->parts > 0) {  // a slice at the start of every row
      fused_prefetch_l2(w, w.size(0), std::min(row_bytes, impl_->bytes / w.size(0)));
    } else {  // the first rows, whole
      fused_prefetch_l2(w, (impl_->bytes + row_bytes - 1) / row_bytes, row_bytes);
    }
  }
  C10_CUDA_CHECK(cudaEventRecord(impl_->done, impl_->stream));
  impl_->pending = true;
}

void WeightPrefetch::join() {
  if (!impl_ || !impl_->pending) return;
  C10_CUDA_CHECK(cudaStreamWaitEvent(at::cuda::getCurrentCUDAStream(impl_->device).stream(), impl_->done, 0));
  impl_->pending = false;
}

#else

struct WeightPrefetch::Impl {};
WeightPrefetch::WeightPrefetch(c10::Device) {}
WeightPrefetch::~WeightPrefetch() = default;
void WeightPrefetch::prefetch(const at::Tensor&) {}
void WeightPrefetch::join() {}

#endif

}  // namespace gpujob::model
