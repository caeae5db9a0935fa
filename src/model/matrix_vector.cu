// The matrix-vector kernels (see matrix_vector.cuh). At one row a linear layer is bounded by
// reading its weights once: one warp per output feature streams that weight row with 16-byte
// loads, several in flight per lane, and multiplies it with x (small, served from the cache).
// Measured against cuBLAS by bench/linear_bench.cpp: beyond one row a GEMM library does better.
#include "matrix_vector.cuh"

#include "kernel_launch.cuh"
#include "kernel_types.cuh"

#include <cstdint>

namespace gpujob::model::kernels {
namespace {

using detail::activation;
using detail::allow_next_grid;
using detail::dispatch;
using detail::from_float;
using detail::rounded;
using detail::to_float;
using detail::wait_for_prior_grids;
using detail::warp_sum;

constexpr int kWarps = 8;   // output features per block, one warp each
// 16-byte weight loads in flight per lane and row: 4 did as well as 8 or 16 on an H200 over the
// Qwen3-8B layers (within 3% either way per layer, 4 the best sum). The gated kernel keeps 4 per
// row too (8 in flight): 2 per row, with or without a register cap, was up to 4% slower there.
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

// kRows dot products with x per warp: weight rows feature + r * row_step for r < kRows (one row
// for a linear layer; the gate row and the up row of a stacked gate/up weight for the gated MLP),
// kUnroll 16-byte loads in flight per lane and row. Returns each full sum in every lane. The lane's
// first kUnroll weight vectors of each row are loaded before waiting for the previous kernel: no
// kernel writes weights, so under programmatic launch (kernel_launch.cuh) they are on their way
// while that kernel finishes (an H200 decoding Qwen3-8B: 2-3% more tokens/s than without; asking
// L2 to prefetch the lines instead, which holds no registers, made every layer slower).
template <typename T, int kRows>
__device__ __forceinline__ void dot_rows(const T* __restrict__ x, const T* __restrict__ w, int64_t feature,
                                         int64_t row_step, int64_t in_features, bool active, float (&sums)[kRows]) {
  const int lane = threadIdx.x & 31;
  const int64_t vectors = in_features / kPerVector<T>;
  const uint4* rows[kRows];
  uint4 first[kRows][kUnroll];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    rows[r] = reinterpret_cast<const uint4*>(w + (feature + r * row_step) * in_features);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (active && lane + 32 * u < vectors) first[r][u] = __ldcs(rows[r] + lane + 32 * u);  // read once: stream
  }
  wait_for_prior_grids();
  if (!active) return;
  const uint4* xs = reinterpret_cast<const uint4*>(x);
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.f;
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    if (lane + 32 * u < vectors) {
      const uint4 xv = __ldg(xs + lane + 32 * u);
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] = multiply_add<T>(first[r][u], xv, acc[r]);
    }
  }
  int64_t i = lane + 32 * kUnroll;
  for (; i + 32 * (kUnroll - 1) < vectors; i += 32 * kUnroll) {
    uint4 loaded[kRows][kUnroll];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) loaded[r][u] = __ldcs(rows[r] + i + 32 * u);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const uint4 xv = __ldg(xs + i + 32 * u);
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] = multiply_add<T>(loaded[r][u], xv, acc[r]);
    }
  }
  for (; i < vectors; i += 32) {
    const uint4 xv = __ldg(xs + i);
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = multiply_add<T>(__ldcs(rows[r] + i), xv, acc[r]);
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) sums[r] = warp_sum(acc[r]);
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    matrix_vector_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                         T* __restrict__ out, int64_t out_features, int64_t in_features) {
  allow_next_grid();
  const int64_t feature = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const bool active = feature < out_features;
  float sum[1];
  dot_rows<T, 1>(x, w, feature, 0, in_features, active, sum);
  if (active && (threadIdx.x & 31) == 0)
    out[feature] = from_float<T>(sum[0] + (bias != nullptr ? to_float(bias[feature]) : 0.f));
}

// Output feature f: gate row f and up row width + f, each sum rounded to T as the stacked GEMM's
// output is, then round(act(gate)) * up rounded, as gated_activation computes it from that output.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    gated_matrix_vector_kernel(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ out, int64_t width,
                               int64_t in_features, bool gelu_tanh) {
  allow_next_grid();
  const int64_t feature = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const bool active = feature < width;
  float sums[2];
  dot_rows<T, 2>(x, w, feature, width, in_features, active, sums);
  if (active && (threadIdx.x & 31) == 0) {
    const float gate = rounded<T>(sums[0]), up = rounded<T>(sums[1]);
    out[feature] = from_float<T>(rounded<T>(activation(gate, gelu_tanh)) * up);
  }
}

unsigned blocks_for(int64_t features) { return static_cast<unsigned>((features + kWarps - 1) / kWarps); }

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
    detail::launch(matrix_vector_kernel<T>, blocks_for(out_features), kWarps * 32, 0, stream,
                   static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias),
                   static_cast<T*>(out), out_features, in_features);
  });
}

void gated_matrix_vector(ElementType type, const void* x, const void* w, void* out, int64_t width,
                         int64_t in_features, bool gelu_tanh, cudaStream_t stream) {
  if (width == 0) return;
  dispatch(type, "gated matrix-vector", [&](auto tag) {
    using T = typename decltype(tag)::type;
    detail::launch(gated_matrix_vector_kernel<T>, blocks_for(width), kWarps * 32, 0, stream,
                   static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(out), width, in_features,
                   gelu_tanh);
  });
}

}  // namespace gpujob::model::kernels
