#include "gpujob/model/device.hpp"

#include "gpujob/util/error.hpp"

#ifdef GPUJOB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace gpujob::model {

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
  return device;
#else
  (void)gpu;
  (void)memory_fraction;
  fail("this gpujob was built with a CPU-only libtorch; set model.device: cpu or rebuild against a CUDA libtorch");
#endif
}

void release_cached_device_memory() {
#ifdef GPUJOB_WITH_CUDA
  c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

}  // namespace gpujob::model
