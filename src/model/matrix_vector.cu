// The matrix-vector kernels (see matrix_vector.cuh). At one row a linear layer is bounded by
// reading its weights once: one warp per output feature streams that weight row with 16-byte
// loads, several in flight per lane, and multiplies it with x (small, served from the cache).
// Measured against cuBLAS by bench/linear_bench.cpp: beyond one row a GEMM library does better.
// Folded norms: a layer that ends in a residual addition (o, down) adds the residual in the
// kernel and leaves each block's sum of squares of the new residual stream; the next layer that
// starts with an RMSNorm (q/k/v, gate/up) norms that stream itself from those sums, each block
// into its shared memory, so the norm kernel between the two layers is not needed.
#include "matrix_vector.cuh"

#include "kernel_launch.cuh"
#include "kernel_types.cuh"

#include <cstdint>

namespace gpujob::model::kernels {
namespace {

using detail::activation;
using detail::allow_next_grid;
using detail::block_sum;
using detail::dispatch;
using detail::from_float;
using detail::kPerVector;
using detail::load_vector;
using detail::norm_value;
using detail::rounded;
using detail::store_vector;
using detail::to_float;
using detail::Vector;
using detail::wait_for_prior_grids;
using detail::warp_sum;

constexpr int kWarps = 8;   // output features per block, one warp each
// 16-byte weight loads in flight per lane and row: 4 did as well as 8 or 16 on an H200 over the
// Qwen3-8B layers (within 3% either way per layer, 4 the best sum). The gated kernel keeps 4 per
// row too (8 in flight): 2 per row, with or without a register cap, was up to 4% slower there.
constexpr int kUnroll = 4;

// Where a kernel's x comes from. Each is called once by every thread of the block after the wait
// for the previous kernel, and returns x as 16-byte vectors.
// x as it is, in global memory (read through the read-only cache).
template <typename T>
struct GlobalX {
  static constexpr bool kShared = false;
  const T* x;
  __device__ __forceinline__ const uint4* operator()() const { return reinterpret_cast<const uint4*>(x); }
};

// RMSNorm(h) as rms_norm computes it, written by the block into its shared memory (in_features
// elements, the launch's dynamic shared memory), with 1 / rms from the sums of squares of h that
// matrix_vector_add left, one per block of it: every block adds them in the same order, so all
// blocks norm with the same factor.
template <typename T>
struct NormedX {
  static constexpr bool kShared = true;
  const T* h;
  const float* squares;
  int64_t n_squares;
  const T* weight;
  float eps, offset;
  int64_t in_features;
  __device__ __forceinline__ const uint4* operator()() const {
    extern __shared__ uint4 shared_x[];
    float part = 0.f;
    for (int64_t i = threadIdx.x; i < n_squares; i += blockDim.x) part += squares[i];
    const float inv_rms = rsqrtf(block_sum(part) / static_cast<float>(in_features) + eps);
    constexpr int V = kPerVector<T>;
    T* normed = reinterpret_cast<T*>(shared_x);
    for (int64_t v = threadIdx.x; v < in_features / V; v += blockDim.x) {
      const Vector<T> hv = load_vector(h + v * V), wv = load_vector(weight + v * V);
      Vector<T> o;
#pragma unroll
      for (int j = 0; j < V; ++j) o.e[j] = norm_value<T>(to_float(hv.e[j]) * inv_rms, to_float(wv.e[j]), offset);
      store_vector(normed + v * V, o);
    }
    __syncthreads();
    return shared_x;
  }
};

template <bool kShared>
__device__ __forceinline__ uint4 load_x(const uint4* p) {
  if constexpr (kShared) {
    return *p;
  } else {
    return __ldg(p);
  }
}

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
// L2 to prefetch the lines instead, which holds no registers, made every layer slower). Every
// thread calls it, active or not (source_x may synchronise the block).
template <typename T, int kRows, typename X>
__device__ __forceinline__ void dot_rows(const X& source_x, const T* __restrict__ w, int64_t feature,
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
  const uint4* xs = source_x();
  if (!active) return;
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.f;
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    if (lane + 32 * u < vectors) {
      const uint4 xv = load_x<X::kShared>(xs + lane + 32 * u);
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
      const uint4 xv = load_x<X::kShared>(xs + i + 32 * u);
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] = multiply_add<T>(loaded[r][u], xv, acc[r]);
    }
  }
  for (; i < vectors; i += 32) {
    const uint4 xv = load_x<X::kShared>(xs + i);
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = multiply_add<T>(__ldcs(rows[r] + i), xv, acc[r]);
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) sums[r] = warp_sum(acc[r]);
}

// A linear layer's output feature before its rounding to T: the dot product plus the bias.
template <typename T>
__device__ __forceinline__ float with_bias(float dot, const T* bias, int64_t feature) {
  return dot + (bias != nullptr ? to_float(bias[feature]) : 0.f);
}

template <typename T, typename X>
__global__ void __launch_bounds__(kWarps * 32)
    matrix_vector_kernel(X source_x, const T* __restrict__ w, const T* __restrict__ bias, T* __restrict__ out,
                         int64_t out_features, int64_t in_features) {
  allow_next_grid();
  const int64_t feature = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const bool active = feature < out_features;
  float sum[1];
  dot_rows<T, 1>(source_x, w, feature, 0, in_features, active, sum);
  if (active && (threadIdx.x & 31) == 0)
    out[feature] = from_float<T>(with_bias(sum[0], bias, feature));
}

// Output feature f: gate row f and up row width + f, each sum rounded to T as the stacked GEMM's
// output is, then round(act(gate)) * up rounded, as gated_activation computes it from that output.
template <typename T, typename X>
__global__ void __launch_bounds__(kWarps * 32)
    gated_matrix_vector_kernel(X source_x, const T* __restrict__ w, T* __restrict__ out, int64_t width,
                               int64_t in_features, bool gelu_tanh) {
  allow_next_grid();
  const int64_t feature = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const bool active = feature < width;
  float sums[2];
  dot_rows<T, 2>(source_x, w, feature, width, in_features, active, sums);
  if (active && (threadIdx.x & 31) == 0) {
    const float gate = rounded<T>(sums[0]), up = rounded<T>(sums[1]);
    out[feature] = from_float<T>(rounded<T>(activation(gate, gelu_tanh)) * up);
  }
}

// Output feature f: sum[f] = round(residual[f] + round(w row f times x + bias[f])), the linear
// layer and the residual addition after it; squares[block] = the sum of sum[f]^2 over the block's
// features, in feature order.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    matrix_vector_add_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                             const T* __restrict__ residual, T* __restrict__ sum, float* __restrict__ squares,
                             int64_t out_features, int64_t in_features) {
  allow_next_grid();
  __shared__ float warp_squares[kWarps];
  const int warp = threadIdx.x / 32;
  const int64_t feature = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  const bool active = feature < out_features;
  float dot[1];
  dot_rows<T, 1>(GlobalX<T>{x}, w, feature, 0, in_features, active, dot);
  if ((threadIdx.x & 31) == 0) {
    float square = 0.f;
    if (active) {
      const float delta = rounded<T>(with_bias(dot[0], bias, feature));
      const T s = from_float<T>(to_float(residual[feature]) + delta);
      sum[feature] = s;
      square = to_float(s) * to_float(s);
    }
    warp_squares[warp] = square;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.f;
#pragma unroll
    for (int k = 0; k < kWarps; ++k) total += warp_squares[k];
    squares[blockIdx.x] = total;
  }
}

unsigned blocks_for(int64_t features) { return static_cast<unsigned>((features + kWarps - 1) / kWarps); }

template <typename T>
NormedX<T> normed_x(const NormedInput& in, int64_t in_features) {
  return NormedX<T>{static_cast<const T*>(in.h), in.squares, in.n_squares, static_cast<const T*>(in.weight),
                    in.eps, in.offset, in_features};
}

}  // namespace

bool matrix_vector_support(int64_t in_features, int64_t element_size, const void* x, const void* w) {
  return element_size > 0 && in_features > 0 && (in_features * element_size) % 16 == 0 && detail::aligned_16(x) &&
         detail::aligned_16(w);
}

int64_t matrix_vector_blocks(int64_t out_features) { return blocks_for(out_features); }

bool normed_matrix_vector_support(int64_t in_features, int64_t element_size, const void* h, const void* norm_weight,
                                  const void* w) {
  return matrix_vector_support(in_features, element_size, h, w) && detail::aligned_16(norm_weight) &&
         in_features * element_size <= kNormedXMaxBytes;
}

namespace {

// A kernel's x: a plain row, or (normed not null) one to norm first, with its row in the block's
// dynamic shared memory. Calls launch(source, shared_bytes) with the kernel's X.
struct XSource {
  const void* x = nullptr;
  const NormedInput* normed = nullptr;
};

template <typename T, typename Launch>
void with_source(const XSource& source, int64_t in_features, Launch&& launch) {
  if (source.normed != nullptr) {
    launch(normed_x<T>(*source.normed, in_features), static_cast<size_t>(in_features) * sizeof(T));
  } else {
    launch(GlobalX<T>{static_cast<const T*>(source.x)}, size_t{0});
  }
}

void launch_linear(ElementType type, const XSource& x, const void* w, const void* bias, void* out,
                   int64_t out_features, int64_t in_features, cudaStream_t stream, const char* what) {
  if (out_features == 0) return;
  dispatch(type, what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_source<T>(x, in_features, [&](auto source, size_t shared_bytes) {
      detail::launch(matrix_vector_kernel<T, decltype(source)>, blocks_for(out_features), kWarps * 32, shared_bytes,
                     stream, source, static_cast<const T*>(w), static_cast<const T*>(bias), static_cast<T*>(out),
                     out_features, in_features);
    });
  });
}

void launch_gated(ElementType type, const XSource& x, const void* w, void* out, int64_t width, int64_t in_features,
                  bool gelu_tanh, cudaStream_t stream, const char* what) {
  if (width == 0) return;
  dispatch(type, what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_source<T>(x, in_features, [&](auto source, size_t shared_bytes) {
      detail::launch(gated_matrix_vector_kernel<T, decltype(source)>, blocks_for(width), kWarps * 32, shared_bytes,
                     stream, source, static_cast<const T*>(w), static_cast<T*>(out), width, in_features, gelu_tanh);
    });
  });
}

}  // namespace

void matrix_vector(ElementType type, const void* x, const void* w, const void* bias, void* out, int64_t out_features,
                   int64_t in_features, cudaStream_t stream) {
  launch_linear(type, {x, nullptr}, w, bias, out, out_features, in_features, stream, "matrix-vector");
}

void normed_matrix_vector(ElementType type, const NormedInput& x, const void* w, const void* bias, void* out,
                          int64_t out_features, int64_t in_features, cudaStream_t stream) {
  launch_linear(type, {nullptr, &x}, w, bias, out, out_features, in_features, stream, "normed matrix-vector");
}

void gated_matrix_vector(ElementType type, const void* x, const void* w, void* out, int64_t width,
                         int64_t in_features, bool gelu_tanh, cudaStream_t stream) {
  launch_gated(type, {x, nullptr}, w, out, width, in_features, gelu_tanh, stream, "gated matrix-vector");
}

void normed_gated_matrix_vector(ElementType type, const NormedInput& x, const void* w, void* out, int64_t width,
                                int64_t in_features, bool gelu_tanh, cudaStream_t stream) {
  launch_gated(type, {nullptr, &x}, w, out, width, in_features, gelu_tanh, stream, "normed gated matrix-vector");
}

void matrix_vector_add(ElementType type, const void* x, const void* w, const void* bias, const void* residual,
                       void* sum, float* squares, int64_t out_features, int64_t in_features, cudaStream_t stream) {
  if (out_features == 0) return;
  dispatch(type, "matrix-vector + residual", [&](auto tag) {
    using T = typename decltype(tag)::type;
    detail::launch(matrix_vector_add_kernel<T>, blocks_for(out_features), kWarps * 32, 0, stream,
                   static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias),
                   static_cast<const T*>(residual), static_cast<T*>(sum), squares, out_features, in_features);
  });
}

}  // namespace gpujob::model::kernels
