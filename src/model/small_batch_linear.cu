// The small-batch linear kernel (see small_batch_linear.cuh). At one to a few rows a linear layer
// is a matrix-vector product bounded by reading the weights once: one warp per output feature
// streams that weight row with 16-byte loads, several in flight per lane, and multiplies it with
// every row of x (small, served from the cache), so each weight byte is read exactly once.
#include "small_batch_linear.cuh"

#include "kernel_types.cuh"

#include <cstdint>
#include <string>

namespace gpujob::model::kernels {
namespace {

using detail::dispatch;
using detail::from_float;
using detail::to_float;
using detail::warp_sum;

constexpr int kWarps = 8;   // output features per block, one warp each
constexpr int kUnroll = 4;  // 16-byte weight loads in flight per lane

template <typename T>
constexpr int kPerVector = static_cast<int>(16 / sizeof(T));

template <typename T>
__device__ __forceinline__ void unpack(const uint4& packed, float (&out)[kPerVector<T>]) {
  const T* e = reinterpret_cast<const T*>(&packed);
#pragma unroll
  for (int j = 0; j < kPerVector<T>; ++j) out[j] = to_float(e[j]);
}

template <typename T, int kRows>
__device__ __forceinline__ void multiply_add(const float (&w)[kPerVector<T>], const uint4* x, int64_t x_row_vectors,
                                             int64_t at, float (&acc)[kRows]) {
#pragma unroll
  for (int m = 0; m < kRows; ++m) {
    float xv[kPerVector<T>];
    unpack<T>(__ldg(x + m * x_row_vectors + at), xv);
#pragma unroll
    for (int j = 0; j < kPerVector<T>; ++j) acc[m] = fmaf(w[j], xv[j], acc[m]);
  }
}

template <typename T, int kRows>
__global__ void __launch_bounds__(kWarps * 32)
    small_batch_linear_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                              T* __restrict__ out, int64_t out_features, int64_t in_features) {
  const int lane = threadIdx.x & 31;
  const int64_t feature = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (feature >= out_features) return;
  const int64_t vectors = in_features / kPerVector<T>;
  const uint4* w_row = reinterpret_cast<const uint4*>(w + feature * in_features);
  const uint4* xs = reinterpret_cast<const uint4*>(x);
  float acc[kRows];
#pragma unroll
  for (int m = 0; m < kRows; ++m) acc[m] = 0.f;
  int64_t i = lane;
  for (; i + 32 * (kUnroll - 1) < vectors; i += 32 * kUnroll) {
    uint4 loaded[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) loaded[u] = __ldcs(w_row + i + 32 * u);  // read once: stream it
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float wf[kPerVector<T>];
      unpack<T>(loaded[u], wf);
      multiply_add<T, kRows>(wf, xs, vectors, i + 32 * u, acc);
    }
  }
  for (; i < vectors; i += 32) {
    float wf[kPerVector<T>];
    unpack<T>(__ldcs(w_row + i), wf);
    multiply_add<T, kRows>(wf, xs, vectors, i, acc);
  }
#pragma unroll
  for (int m = 0; m < kRows; ++m) acc[m] = warp_sum(acc[m]);
  if (lane == 0) {
    const float b = bias != nullptr ? to_float(bias[feature]) : 0.f;
#pragma unroll
    for (int m = 0; m < kRows; ++m) out[m * out_features + feature] = from_float<T>(acc[m] + b);
  }
}

template <typename T, int kRows>
void launch(const void* x, const void* w, const void* bias, void* out, int64_t out_features, int64_t in_features,
            cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((out_features + kWarps - 1) / kWarps);
  small_batch_linear_kernel<T, kRows><<<blocks, kWarps * 32, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias), static_cast<T*>(out),
      out_features, in_features);
}

}  // namespace

bool small_batch_linear_support(int64_t rows, int64_t in_features, int64_t element_size, const void* x,
                                const void* w) {
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  return rows >= 1 && rows <= kSmallBatchMaxRows && element_size > 0 && in_features > 0 &&
         (in_features * element_size) % 16 == 0 && aligned(x) && aligned(w);
}

void small_batch_linear(ElementType type, const void* x, const void* w, const void* bias, void* out, int64_t rows,
                        int64_t out_features, int64_t in_features, cudaStream_t stream) {
  if (out_features == 0) return;
  dispatch(type, "small-batch linear", [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (rows) {
      case 1: launch<T, 1>(x, w, bias, out, out_features, in_features, stream); break;
      case 2: launch<T, 2>(x, w, bias, out, out_features, in_features, stream); break;
      case 3: launch<T, 3>(x, w, bias, out, out_features, in_features, stream); break;
      case 4: launch<T, 4>(x, w, bias, out, out_features, in_features, stream); break;
      case 5: launch<T, 5>(x, w, bias, out, out_features, in_features, stream); break;
      case 6: launch<T, 6>(x, w, bias, out, out_features, in_features, stream); break;
      case 7: launch<T, 7>(x, w, bias, out, out_features, in_features, stream); break;
      case 8: launch<T, 8>(x, w, bias, out, out_features, in_features, stream); break;
      default: throw std::runtime_error("small-batch linear: " + std::to_string(rows) + " rows (at most 8)");
    }
  });
}

}  // namespace gpujob::model::kernels
