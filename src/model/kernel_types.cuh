// Device-side helpers shared by the .cu files of the model layer: element-type conversions with
// the roundings ATen makes, the gated-MLP activation, the dispatch from ElementType to a C++ type,
// and the launch check.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

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

// act(g) of a gated MLP: SiLU, or GELU with the tanh approximation (HF's "gelu_pytorch_tanh").
__device__ __forceinline__ float activation(float g, bool gelu_tanh) {
  if (gelu_tanh) {
    const float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
    const float kKappa = 0.044715f;
    return 0.5f * g * (1.f + tanhf(kBeta * (g + kKappa * g * g * g)));
  }
  return g / (1.f + expf(-g));
}

inline void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": CUDA launch failed: " + cudaGetErrorString(e));
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

}  // namespace gpujob::model::kernels::detail
