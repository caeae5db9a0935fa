// One head of the attention inputs (the q/k norm and RoPE) by one warp, shared by the kernel that
// does them for every head of a call (fused_kernels.cu: attention_inputs) and by the decode
// attention that takes its q and new key unprocessed (decode_attention_mma.cuh), so that both
// round exactly alike. Lane l holds elements l, l + 32, ... of the head: with dim a multiple of 64
// the element RoPE pairs with (d +- dim / 2) is in the same lane, kPerLane / 2 slots away.
// Included by .cu files only.
#pragma once

#include "kernel_types.cuh"

namespace gpujob::model::kernels::detail {

// The lane's elements of a per-head norm weight (norm null: none, nothing read).
template <typename T, int kPerLane>
__device__ __forceinline__ void load_head_norm(const T* norm, int lane, float (&weight)[kPerLane]) {
  if (norm == nullptr) return;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) weight[j] = to_float(norm[lane + 32 * j]);
}

// dst = RoPE(RMSNorm(src)) for one head of 32 * kPerLane elements (normed: with the weights of
// load_head_norm, eps and offset as rms_norm; else RoPE alone), cos and sin the token's tables:
// round(round(x * cos) + round(rotate_half(x) * sin)) after the norm's rounding, as rms_norm
// followed by rope. The inputs, cos and sin are read together, one latency instead of three.
template <typename T, int kPerLane>
__device__ __forceinline__ void normed_rotated_head(const T* src, bool normed, const float (&norm_weight)[kPerLane],
                                                    float eps, float offset, const T* cos, const T* sin, int lane,
                                                    T* dst) {
  float v[kPerLane], c[kPerLane], s[kPerLane];
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    v[j] = to_float(src[lane + 32 * j]);
    c[j] = to_float(cos[lane + 32 * j]);
    s[j] = to_float(sin[lane + 32 * j]);
  }
  if (normed) {
    float squares = 0.f;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) squares += v[j] * v[j];
    const float inv_rms = rsqrtf(warp_sum(squares) / static_cast<float>(32 * kPerLane) + eps);
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) v[j] = to_float(norm_value<T>(v[j] * inv_rms, norm_weight[j], offset));
  }
  constexpr int kHalf = kPerLane / 2;
#pragma unroll
  for (int j = 0; j < kPerLane; ++j) {
    const float rotated = j < kHalf ? -v[j + kHalf] : v[j - kHalf];
    dst[lane + 32 * j] = from_float<T>(rounded<T>(v[j] * c[j]) + rounded<T>(rotated * s[j]));
  }
}

}  // namespace gpujob::model::kernels::detail
