#include "gpujob/model/device.hpp"

#include <algorithm>
#include <map>

#include "gpujob/util/error.hpp"

#ifdef GPUJOB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime_api.h>
#endif

namespace gpujob::model {
namespace {

// The memory fraction bind_device set per GPU (the caching allocator keeps it but has no getter).
std::map<int, double>& memory_fractions() {
  static std::map<int, double> fractions;
  return fractions;
}

}  // namespace

int visible_gpu_count() {
#ifdef GPUJOB_WITH_CUDA
  return static_cast<int>(c10::cuda::device_count());
#else
  return 0;
#endif
}

at::Device bind_device(bool use_cuda, int gpu, double memory_fraction) {
  if (!use_cuda) return at::Device(at::kCPU);
#ifdef GPUJOB_WITH_CUDA
  const int count = visible_gpu_count();
  GPUJOB_CHECK(gpu >= 0 && gpu < count, "GPU ", gpu, " does not exist (", count, " visible)");
  GPUJOB_CHECK(memory_fraction > 0 && memory_fraction <= 1, "memory fraction ", memory_fraction,
               " is outside (0, 1]");
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(gpu));
  const at::Device device(at::kCUDA, static_cast<c10::DeviceIndex>(gpu));
  // The caching allocator starts lazily; it must exist before it takes a memory fraction.
  (void)at::empty({1}, at::TensorOptions().device(device));
  c10::cuda::CUDACachingAllocator::setMemoryFraction(memory_fraction, gpu);
  memory_fractions()[gpu] = memory_fraction;
  return device;
#else
  (void)gpu;
  (void)memory_fraction;
  fail("this gpujob was built with a CPU-only libtorch; set model.device: cpu or rebuild against a CUDA libtorch");
#endif
}

int64_t available_device_memory(at::Device device) {
  if (!device.is_cuda()) return -1;
#ifdef GPUJOB_WITH_CUDA
  const int gpu = device.has_index() ? device.index() : 0;
  auto found = memory_fractions().find(gpu);
  const double fraction = found == memory_fractions().end() ? 1.0 : found->second;
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(gpu));
  size_t free_bytes = 0, total_bytes = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  // Index 0 of the allocator's stat arrays is the aggregate over pool types.
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(gpu));
  const int64_t allocated = stats.allocated_bytes[0].current;
  const int64_t reserved = stats.reserved_bytes[0].current;
  const int64_t under_cap = static_cast<int64_t>(fraction * static_cast<double>(total_bytes)) - allocated;
  // Reserved but unused blocks are this process's to reuse, on top of what the GPU has free.
  const int64_t on_gpu = static_cast<int64_t>(free_bytes) + (reserved - allocated);
  return std::max<int64_t>(0, std::min(under_cap, on_gpu));
#else
  fail("device ", device.str(), ": this gpujob was built with a CPU-only libtorch");
#endif
}

at::Tensor copy_to_host_async(const at::Tensor& t) {
  if (!t.is_cuda()) return t.to(at::kCPU).contiguous();
  at::Tensor host = at::empty(t.sizes(), t.options().device(at::kCPU).pinned_memory(true));
  host.copy_(t, /*non_blocking=*/true);
  return host;
}

void wait_for_device(at::Device device) {
  if (!device.is_cuda()) return;
#ifdef GPUJOB_WITH_CUDA
  c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
#endif
}

void release_cached_device_memory() {
#ifdef GPUJOB_WITH_CUDA
  c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

}  // namespace gpujob::model
