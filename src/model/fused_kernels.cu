// Fused element-wise kernels of the decoder (see fused_kernels.cuh). Each computes in float32 and
// rounds to the element type exactly where the unfused ATen expression does, so results match it.
#include "fused_kernels.cuh"

#include "kernel_types.cuh"

namespace gpujob::model::kernels {
namespace {

using detail::dispatch;
using detail::from_float;
using detail::rounded;
using detail::to_float;
using detail::warp_sum;

constexpr int kNormThreads = 256;

// Sum over the kNormThreads threads of a block, every thread receiving it.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float warp_sums[kNormThreads / 32];
  __shared__ float total;
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    const float t = warp_sum(threadIdx.x < kNormThreads / 32 ? warp_sums[threadIdx.x] : 0.f);
    if (threadIdx.x == 0) total = t;
  }
  __syncthreads();
  return total;
}

// One normalised element as the unfused RMSNorm writes it: Llama/Qwen scale the rounded value by
// w in the model dtype, Gemma scales by (w + offset) in float32 and rounds once.
template <typename T>
__device__ __forceinline__ T norm_value(float normed, float w, float offset) {
  return offset != 0.f ? from_float<T>(normed * (w + offset)) : from_float<T>(w * rounded<T>(normed));
}

template <typename T>
__global__ void rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ weight, T* __restrict__ out,
                                int64_t hidden, int64_t rows_per_group, int64_t group_stride, float eps, float offset) {
  const int64_t row = blockIdx.x;
  const T* in = x + (row / rows_per_group) * group_stride + (row % rows_per_group) * hidden;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float v = to_float(in[i]);
    sum += v * v;
  }
  const float inv_rms = rsqrtf(block_sum(sum) / static_cast<float>(hidden) + eps);
  T* o = out + row * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    o[i] = norm_value<T>(to_float(in[i]) * inv_rms, to_float(weight[i]), offset);
}

// sum is written and read back by the same thread, so it is not declared __restrict__.
template <typename T>
__global__ void add_rms_norm_kernel(const T* __restrict__ a, const T* __restrict__ b, const T* __restrict__ weight,
                                    T* sum, T* __restrict__ out, int64_t hidden, float eps, float offset) {
  const int64_t base = static_cast<int64_t>(blockIdx.x) * hidden;
  float squares = 0.f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float v = rounded<T>(to_float(a[base + i]) + to_float(b[base + i]));
    sum[base + i] = from_float<T>(v);
    squares += v * v;
  }
  const float inv_rms = rsqrtf(block_sum(squares) / static_cast<float>(hidden) + eps);
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    out[base + i] = norm_value<T>(to_float(sum[base + i]) * inv_rms, to_float(weight[i]), offset);
}

// One warp per (token, head). Lane l holds elements l, l + 32, ...: with dim a multiple of 64 the
// element RoPE pairs with (d +- dim / 2) is in the same lane, kPerLane / 2 slots away.
constexpr int kHeadWarps = 8;

template <typename T, int kPerLane>
__global__ void attention_inputs_kernel(AttentionInputs in) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * kHeadWarps + threadIdx.x / 32;
  const bool cached = in.cache_rows != nullptr;
  const int64_t per_token = in.heads + in.kv_heads * (cached ? 2 : 1);
  if (warp >= in.tokens * per_token) return;
  const int64_t token = warp / per_token, head = warp % per_token, dim = in.dim;
  const bool is_q = head < in.heads;
  const int64_t cache_row = cached ? in.cache_rows[token] : 0;
  // A padding token's k and v are not kept; its q is still written (as the unfused path does).
  if (!is_q && cache_row < 0) return;
  const T* src = static_cast<const T*>(in.qkv) + token * in.token_stride + head * dim;
  const int64_t cache_row_start = cache_row * in.kv_heads * dim;
  if (head >= in.heads + in.kv_heads) {  // v, into the cache as it is
    T* dst = static_cast<T*>(in.v_cache) + cache_row_start + (head - in.heads - in.kv_heads) * dim;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) dst[lane + 32 * j] = src[lane + 32 * j];
    return;
  }
  float v[kPerLane];
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) v[j] = to_float(src[lane + 32 * j]);
  const T* norm = static_cast<const T*>(is_q ? in.q_norm : in.k_norm);
  if (norm != nullptr) {
    float squares = 0.f;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) squares += v[j] * v[j];
    const float inv_rms = rsqrtf(warp_sum(squares) / static_cast<float>(dim) + in.eps);
#pragma unroll
    for (int j = 0; j < kPerLane; ++j)
      v[j] = to_float(norm_value<T>(v[j] * inv_rms, to_float(norm[lane + 32 * j]), in.offset));
  }
  const T* cos = static_cast<const T*>(in.cos) + token * dim;
  const T* sin = static_cast<const T*>(in.sin) + token * dim;
  T* dst;
  if (is_q) {
    dst = static_cast<T*>(in.q_out) + (token * in.heads + head) * dim;
  } else if (cached) {
    dst = static_cast<T*>(in.k_cache) + cache_row_start + (head - in.heads) * dim;
  } else {
    dst = static_cast<T*>(in.k_out) + (token * in.kv_heads + head - in.heads) * dim;
  }
  constexpr int kHalf = kPerLane / 2;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const int64_t d = lane + 32 * j;
    const float rotated = j < kHalf ? -v[j + kHalf] : v[j - kHalf];
    dst[d] = from_float<T>(rounded<T>(v[j] * to_float(cos[d])) + rounded<T>(rotated * to_float(sin[d])));
  }
}

template <typename T>
__global__ void gated_activation_kernel(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out,
                                        int64_t rows, int64_t width, int64_t row_stride, bool gelu_tanh) {
  const int64_t n = rows * width;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t at = (i / width) * row_stride + i % width;
    const float g = to_float(gate[at]);
    float a;
    if (gelu_tanh) {
      const float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
      const float kKappa = 0.044715f;
      a = 0.5f * g * (1.f + tanhf(kBeta * (g + kKappa * g * g * g)));
    } else {
      a = g / (1.f + expf(-g));
    }
    out[i] = from_float<T>(rounded<T>(a) * to_float(up[at]));
  }
}

template <typename T>
__global__ void rope_kernel(const T* __restrict__ x, const T* __restrict__ cos, const T* __restrict__ sin,
                            T* __restrict__ out, int64_t batch_tokens, int64_t heads, int64_t dim,
                            int64_t token_stride) {
  const int64_t half = dim / 2;
  const int64_t n = batch_tokens * heads * dim;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t d = i % dim;
    const int64_t token = i / (heads * dim);  // row of the tables
    const int64_t at = token * token_stride + i % (heads * dim);  // the same element in x
    const float c = to_float(cos[token * dim + d]), s = to_float(sin[token * dim + d]);
    const float v = to_float(x[at]);
    const float rotated = d < half ? -to_float(x[at + half]) : to_float(x[at - half]);
    out[i] = from_float<T>(rounded<T>(v * c) + rounded<T>(rotated * s));
  }
}

unsigned elementwise_blocks(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(blocks < 65535 * 8 ? blocks : 65535 * 8);
}

}  // namespace

void rms_norm(ElementType type, const void* x, const void* weight, void* out, int64_t rows, int64_t hidden,
              int64_t rows_per_group, int64_t group_stride, float eps, float offset, cudaStream_t stream) {
  if (rows == 0) return;
  dispatch(type, "fused rms_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    rms_norm_kernel<T><<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<T*>(out), hidden, rows_per_group,
        group_stride, eps, offset);
  });
}

void add_rms_norm(ElementType type, const void* a, const void* b, const void* weight, void* sum, void* out,
                  int64_t rows, int64_t hidden, float eps, float offset, cudaStream_t stream) {
  if (rows == 0) return;
  dispatch(type, "fused add + rms_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    add_rms_norm_kernel<T><<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(
        static_cast<const T*>(a), static_cast<const T*>(b), static_cast<const T*>(weight), static_cast<T*>(sum),
        static_cast<T*>(out), hidden, eps, offset);
  });
}

bool attention_inputs_support(int64_t dim) { return dim == 64 || dim == 128 || dim == 256; }

void attention_inputs(ElementType type, const AttentionInputs& in, cudaStream_t stream) {
  const int64_t warps = in.tokens * (in.heads + in.kv_heads * (in.cache_rows != nullptr ? 2 : 1));
  if (warps == 0) return;
  if (!attention_inputs_support(in.dim))
    throw std::runtime_error("fused attention inputs: head_dim " + std::to_string(in.dim) + " is not 64, 128 or 256");
  const auto blocks = static_cast<unsigned>((warps + kHeadWarps - 1) / kHeadWarps);
  dispatch(type, "fused attention inputs", [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (in.dim) {
      case 64: attention_inputs_kernel<T, 2><<<blocks, kHeadWarps * 32, 0, stream>>>(in); break;
      case 128: attention_inputs_kernel<T, 4><<<blocks, kHeadWarps * 32, 0, stream>>>(in); break;
      default: attention_inputs_kernel<T, 8><<<blocks, kHeadWarps * 32, 0, stream>>>(in); break;
    }
  });
}

void gated_activation(ElementType type, const void* gate, const void* up, void* out, int64_t rows, int64_t width,
                      int64_t row_stride, bool gelu_tanh, cudaStream_t stream) {
  const int64_t n = rows * width;
  if (n == 0) return;
  dispatch(type, "fused gated activation", [&](auto tag) {
    using T = typename decltype(tag)::type;
    gated_activation_kernel<T><<<elementwise_blocks(n), 256, 0, stream>>>(
        static_cast<const T*>(gate), static_cast<const T*>(up), static_cast<T*>(out), rows, width, row_stride,
        gelu_tanh);
  });
}

void rope(ElementType type, const void* x, const void* cos, const void* sin, void* out, int64_t batch_tokens,
          int64_t heads, int64_t dim, int64_t token_stride, cudaStream_t stream) {
  const int64_t n = batch_tokens * heads * dim;
  if (n == 0) return;
  dispatch(type, "fused rope", [&](auto tag) {
    using T = typename decltype(tag)::type;
    rope_kernel<T><<<elementwise_blocks(n), 256, 0, stream>>>(static_cast<const T*>(x), static_cast<const T*>(cos),
                                                              static_cast<const T*>(sin), static_cast<T*>(out),
                                                              batch_tokens, heads, dim, token_stride);
  });
}

}  // namespace gpujob::model::kernels
