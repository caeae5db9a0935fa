// Fused element-wise kernels of the decoder (see fused_kernels.cuh). Each computes in float32 and
// rounds to the element type exactly where the unfused ATen expression does, so results match it.
#include "fused_kernels.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdexcept>
#include <string>

namespace gpujob::model::kernels {
namespace {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

// Rounds a float32 value to T and back: the value an intermediate tensor of type T holds.
template <typename T>
__device__ __forceinline__ float rounded(float v) { return to_float(from_float<T>(v)); }

constexpr int kNormThreads = 256;

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
  // Block reduction: warps by shuffle, then the warp totals.
  __shared__ float warp_sums[kNormThreads / 32];
  for (int d = 16; d > 0; d /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, d);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  __shared__ float inv_rms;
  if (threadIdx.x < 32) {
    float total = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.f;
    for (int d = 16; d > 0; d /= 2) total += __shfl_xor_sync(0xffffffffu, total, d);
    if (threadIdx.x == 0) inv_rms = rsqrtf(total / static_cast<float>(hidden) + eps);
  }
  __syncthreads();
  T* o = out + row * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float normed = to_float(in[i]) * inv_rms;
    const float w = to_float(weight[i]);
    o[i] = offset != 0.f ? from_float<T>(normed * (w + offset)) : from_float<T>(w * rounded<T>(normed));
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

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": CUDA launch failed: " + cudaGetErrorString(e));
}

unsigned elementwise_blocks(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(blocks < 65535 * 8 ? blocks : 65535 * 8);
}

template <typename T>
struct Type {
  using type = T;
};

// Calls launch(Type<T>{}) with the C++ element type of `type`, then checks the launch.
template <typename Launch>
void dispatch(ElementType type, const char* what, Launch&& launch) {
  switch (type) {
    case ElementType::kFloat32: launch(Type<float>{}); break;
    case ElementType::kBFloat16: launch(Type<__nv_bfloat16>{}); break;
    case ElementType::kFloat16: launch(Type<__half>{}); break;
  }
  check_launch(what);
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
