// Device-side helpers shared by the .cu files of the model layer: element-type conversions with
// the roundings ATen makes, warp and block sums, 16-byte vectors, the RMSNorm element, the
// gated-MLP activation, the dispatch from ElementType to a C++ type, and the launch check.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "fused_kernels.cuh"

namespace gpujob::model::kernels::detail {

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

// Sum over the 32 lanes of a warp, every lane receiving it.
__device__ __forceinline__ float warp_sum(float v) {
  for (int d = 16; d > 0; d /= 2) v += __shfl_xor_sync(0xffffffffu, v, d);
  return v;
}

// Sum over the threads of a block (a multiple of 32, at most 1024), every thread receiving it. The
// order of the additions depends only on the block size, so equal blocks get equal sums.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float warp_sums[32];
  __shared__ float total;
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    const float t = warp_sum(threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.f);
    if (threadIdx.x == 0) total = t;
  }
  __syncthreads();
  return total;
}

// 16 bytes of elements, read and written as one access.
template <typename T>
constexpr int kPerVector = static_cast<int>(16 / sizeof(T));

template <typename T>
struct alignas(16) Vector {
  T e[kPerVector<T>];
};

template <typename T>
__device__ __forceinline__ Vector<T> load_vector(const T* p) {
  Vector<T> v;
  *reinterpret_cast<uint4*>(&v) = *reinterpret_cast<const uint4*>(p);
  return v;
}

template <typename T>
__device__ __forceinline__ void store_vector(T* p, const Vector<T>& v) {
  *reinterpret_cast<uint4*>(p) = *reinterpret_cast<const uint4*>(&v);
}

// One normalised element as the unfused RMSNorm writes it: Llama/Qwen scale the rounded value by
// w in the model dtype, Gemma scales by (w + offset) in float32 and rounds once.
template <typename T>
__device__ __forceinline__ T norm_value(float normed, float w, float offset) {
  return offset != 0.f ? from_float<T>(normed * (w + offset)) : from_float<T>(w * rounded<T>(normed));
}

// act(g) of a gated MLP: SiLU, or GELU with the tanh approximation (HF's "gelu_pytorch_tanh").
__device__ __forceinline__ float activation(float g, bool gelu_tanh) {
  if (gelu_tanh) {
    const float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
    const float kKappa = 0.044715f;
    return 0.5f * g * (1.f + tanhf(kBeta * (g + kKappa * g * g * g)));
  }
  return g / (1.f + expf(-g));
}

// Whether a kernel can read or write p 16 bytes at a time.
inline bool aligned_16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

inline void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": CUDA launch failed: " + cudaGetErrorString(e));
}

template <typename T>
struct Type {
  using type = T;
};

// Calls f(Type<T>{}) with the C++ element type of `type`.
template <typename F>
void with_element_type(ElementType type, F&& f) {
  switch (type) {
    case ElementType::kFloat32: f(Type<float>{}); break;
    case ElementType::kBFloat16: f(Type<__nv_bfloat16>{}); break;
    case ElementType::kFloat16: f(Type<__half>{}); break;
  }
}

// Calls launch(Type<T>{}) with the C++ element type of `type`, then checks the launch.
template <typename Launch>
void dispatch(ElementType type, const char* what, Launch&& launch) {
  with_element_type(type, launch);
  check_launch(what);
}

}  // namespace gpujob::model::kernels::detail
