// Bulk prefetches of weights into the L2 cache (see l2_prefetch.cuh). A decode step alternates
// layers that stream their weights from memory with short kernels (norms, activations, attention)
// during which memory is nearly idle; loading the next layer's first weights into L2 then lets that
// layer start on cache hits. The prefetch is a hint: a line evicted before its use is read again.
#include "l2_prefetch.cuh"

#include "kernel_launch.cuh"
#include "kernel_types.cuh"

#include <cstdlib>

namespace gpujob::model::kernels {
namespace {

int64_t chunk_bytes() {
  const char* v = std::getenv("GPUJOB_L2_CHUNK");
  return v != nullptr ? std::atoll(v) : 16 << 10;
}

// The weights are constant (kernel_launch.cuh's rule): the prefetches go out before the wait.
__global__ void l2_prefetch_kernel(const char* p, int64_t rows, int64_t row_stride, int64_t bytes_per_row,
                                   int64_t chunk) {
  detail::allow_next_grid();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const int64_t per_row = (bytes_per_row + chunk - 1) / chunk, chunks = rows * per_row;
  // Consecutive chunks go to different blocks, so that every SM issues some.
  for (int64_t c = threadIdx.x * static_cast<int64_t>(gridDim.x) + blockIdx.x; c < chunks;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = c / per_row, offset = (c % per_row) * chunk;
    const int64_t n = bytes_per_row - offset < chunk ? bytes_per_row - offset : chunk;
    const char* at = p + row * row_stride + offset;
    if (chunk <= 128) {
      asm volatile("prefetch.global.L2 [%0];" ::"l"(at) : "memory");
    } else {
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(at), "r"(static_cast<unsigned>(n)) : "memory");
    }
  }
#endif
  detail::wait_for_prior_grids();
}

}  // namespace

bool l2_prefetch_support() {
  int device = 0, major = 0;
  return cudaGetDevice(&device) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major >= 9;
}

void l2_prefetch(const void* p, int64_t rows, int64_t row_stride, int64_t bytes_per_row, cudaStream_t stream) {
  bytes_per_row -= bytes_per_row % 16;
  if (rows <= 0 || bytes_per_row <= 0 || !l2_prefetch_support()) return;
  if (!detail::aligned_16(p) || row_stride % 16 != 0)
    throw std::runtime_error("l2 prefetch: the weight and its rows must start on 16-byte boundaries");
  const int64_t chunk = chunk_bytes();
  const int64_t chunks = rows * ((bytes_per_row + chunk - 1) / chunk);
  const int threads = chunk <= 128 ? 256 : 32;
  const int64_t blocks = chunk <= 128 ? (chunks + threads - 1) / threads : chunks;
  detail::launch(l2_prefetch_kernel, static_cast<unsigned>(blocks < 264 ? blocks : 264), threads, 0, stream,
                 static_cast<const char*>(p), rows, row_stride, bytes_per_row, chunk);
  detail::check_launch("l2 prefetch");
}

}  // namespace gpujob::model::kernels
