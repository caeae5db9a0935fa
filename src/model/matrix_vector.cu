// The matrix-vector kernel (see matrix_vector.cuh). At one row a linear layer is bounded by
// reading its weights once: one warp per output feature streams that weight row with 16-byte
// loads, several in flight per lane, and multiplies it with x (small, served from the cache).
// Measured against cuBLAS by bench/linear_bench.cpp: beyond one row a GEMM library does better.
#include "matrix_vector.cuh"

#include "kernel_types.cuh"

#include <cstdint>

namespace gpujob::model::kernels {
namespace {

using detail::dispatch;
using detail::from_float;
using detail::to_float;
using detail::warp_sum;

constexpr int kWarps = 8;   // output features per block, one warp each
// 16-byte weight loads in flight per lane: 4 did as well as 8 or 16 on an H200 over the Qwen3-8B
// layers (within 3% either way per layer, 4 the best sum).
constexpr int kUnroll = 4;

template <typename T>
constexpr int kPerVector = static_cast<int>(16 / sizeof(T));

// The elements of 16 bytes of weights times the same elements of x, summed into acc.
template <typename T>
__device__ __forceinline__ float multiply_add(const uint4& w, const uint4& x, float acc) {
  const T* we = reinterpret_cast<const T*>(&w);
  const T* xe = reinterpret_cast<const T*>(&x);
#pragma unroll
  for (int j = 0; j < kPerVector<T>; ++j) acc = fmaf(to_float(we[j]), to_float(xe[j]), acc);
  return acc;
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    matrix_vector_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                         T* __restrict__ out, int64_t out_features, int64_t in_features) {
  const int lane = threadIdx.x & 31;
  const int64_t feature = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (feature >= out_features) return;
  const int64_t vectors = in_features / kPerVector<T>;
  const uint4* w_row = reinterpret_cast<const uint4*>(w + feature * in_features);
  const uint4* xs = reinterpret_cast<const uint4*>(x);
  float acc = 0.f;
  int64_t i = lane;
  for (; i + 32 * (kUnroll - 1) < vectors; i += 32 * kUnroll) {
    uint4 loaded[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) loaded[u] = __ldcs(w_row + i + 32 * u);  // read once: stream it
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc = multiply_add<T>(loaded[u], __ldg(xs + i + 32 * u), acc);
  }
  for (; i < vectors; i += 32) acc = multiply_add<T>(__ldcs(w_row + i), __ldg(xs + i), acc);
  acc = warp_sum(acc);
  if (lane == 0) out[feature] = from_float<T>(acc + (bias != nullptr ? to_float(bias[feature]) : 0.f));
}

template <typename T>
void launch(const void* x, const void* w, const void* bias, void* out, int64_t out_features, int64_t in_features,
            cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((out_features + kWarps - 1) / kWarps);
  matrix_vector_kernel<T><<<blocks, kWarps * 32, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias), static_cast<T*>(out),
      out_features, in_features);
}

}  // namespace

bool matrix_vector_support(int64_t in_features, int64_t element_size, const void* x, const void* w) {
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  return element_size > 0 && in_features > 0 && (in_features * element_size) % 16 == 0 && aligned(x) && aligned(w);
}

void matrix_vector(ElementType type, const void* x, const void* w, const void* bias, void* out, int64_t out_features,
                   int64_t in_features, cudaStream_t stream) {
  if (out_features == 0) return;
  dispatch(type, "matrix-vector", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch<T>(x, w, bias, out, out_features, in_features, stream);
  });
}

}  // namespace gpujob::model::kernels
