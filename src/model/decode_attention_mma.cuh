// The partial pass of decode attention on tensor cores, for 16-bit types (decode_attention.cu):
// the query heads of a kv head against 16 keys at a time with mma.sync. Included by
// decode_attention.cu only.
#pragma once

#include <cmath>
#include <cstdint>

#include "decode_attention_block.cuh"
#include "kernel_launch.cuh"
#include "tensor_core.cuh"

namespace gpujob::model::kernels::attention_detail {

using detail::mma;
using detail::pack;

// `kChunks` 16-byte chunks of a head row as 4 words each: chunk i from byte (i * kStride + lane) * 16,
// so that for each i the lanes that share a row read consecutive 16 bytes.
template <int kChunks, int kStride>
__device__ __forceinline__ void load_chunks(const void* row, int lane, uint32_t (&words)[kChunks * 4]) {
#pragma unroll
  for (int i = 0; i < kChunks; ++i) {
    const uint4 v = reinterpret_cast<const uint4*>(row)[i * kStride + lane];
    words[i * 4] = v.x;
    words[i * 4 + 1] = v.y;
    words[i * 4 + 2] = v.z;
    words[i * 4 + 3] = v.w;
  }
}

// The partial pass on tensor cores, for 16-bit types: each warp takes 16 keys at a time (tiles
// kWarps apart), lane = 4 g + t.
//  - Scores S[head, key] = Q K^T: two m16n8k16 products per 16 dims, A = the query heads (rows g;
//    rows 8-15 and heads past the kv head's are zero), B = K^T of keys 0-7 and 8-15 of the tile.
//    The dims are taken in an order that lets each lane load whole 16-byte chunks (the dot product
//    does not depend on the order, only Q and K must share it): lane t holds the chunks t, t + 4,
//    ... of the query head g and of keys g and g + 8, and product step c takes words 2c and 2c + 1.
//  - The lane then holds the scores of head g for keys 2t, 2t + 1, 8 + 2t, 9 + 2t: the online
//    softmax of head g needs the max over the 4 lanes of g (2 shuffles) and keeps a per-lane sum.
//  - Values O^T[dim, head] += V^T P^T: one product per 16 dims, A = V^T, B = P^T, whose fragment is
//    exactly the probabilities the lane holds. Lane g holds the value chunks g, g + 8, ... of keys
//    2t, 2t + 1, 8 + 2t, 9 + 2t; dim tile d takes word d of them, its low halves as row g and its
//    high halves as row g + 8. The lane's accumulators are heads 2t and 2t + 1 at those dims.
// Probabilities are rounded to T for the product (as flash attention does); sums stay float32.
template <typename T, int kDim>
__global__ void __launch_bounds__(kWarps * 32) decode_attention_mma_kernel(DecodeAttention a, int64_t splits) {
  detail::start_after_prior_grids();
  constexpr int kHeads = 8;               // query heads per kv head a product takes (its n)
  constexpr int kKeyChunks = kDim / 32;   // 16-byte chunks of a key (or query) row per lane
  constexpr int kValueChunks = kDim / 64; // 16-byte chunks of a value row per lane
  constexpr int kSteps = kDim / 16;       // score product steps, and value dim tiles
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  const int g = lane / 4, t = lane % 4;
  const BlockKeys b = block_keys(a, splits);
  const int64_t key_stride = a.kv_heads * kDim;
  const T* keys = static_cast<const T*>(a.k_cache) + (b.slot * a.max_len) * key_stride + b.kv * kDim;
  const T* values = static_cast<const T*>(a.v_cache) + (b.slot * a.max_len) * key_stride + b.kv * kDim;

  uint32_t q[kKeyChunks * 4];
  if (g < b.n_rep) {
    load_chunks<kKeyChunks, 4>(static_cast<const T*>(a.q) + (b.row * a.heads + b.kv * b.n_rep + g) * kDim, t, q);
  } else {
#pragma unroll
    for (int i = 0; i < kKeyChunks * 4; ++i) q[i] = 0u;
  }
  float m = -INFINITY, l = 0.f;  // head g: running max; this lane's share of the sum
  float acc[kSteps][4];          // heads 2t, 2t + 1 (c0, c1 and c2, c3) at the dims of tile d
#pragma unroll
  for (int d = 0; d < kSteps; ++d) acc[d][0] = acc[d][1] = acc[d][2] = acc[d][3] = 0.f;

  // A tile's keys and values as loaded. A key past the end is read as `begin` (in bounds, finite)
  // and gets probability 0.
  struct Tile {
    uint32_t k0[kKeyChunks * 4], k1[kKeyChunks * 4];  // keys g and 8 + g
    uint32_t v[4][kValueChunks * 4];                  // values of keys 2t, 2t + 1, 8 + 2t, 9 + 2t
  };
  const auto load_tile = [&](int64_t base, Tile& tile) {
    const auto clamp = [&](int64_t key) { return key < b.end ? key : b.begin; };
    load_chunks<kKeyChunks, 4>(keys + clamp(base + g) * key_stride, t, tile.k0);
    load_chunks<kKeyChunks, 4>(keys + clamp(base + 8 + g) * key_stride, t, tile.k1);
    const int64_t value_keys[4] = {base + 2 * t, base + 2 * t + 1, base + 8 + 2 * t, base + 9 + 2 * t};
#pragma unroll
    for (int u = 0; u < 4; ++u)
      load_chunks<kValueChunks, 8>(values + clamp(value_keys[u]) * key_stride, g, tile.v[u]);
  };
  // Up to heads of 128, the next tile is loaded before this one's products, so that a warp's reads
  // stay in flight while it computes (Qwen3-8B heads on an H200, 32 sequences of 2048 keys: 85.1
  // -> 64.5 us, 4.2 TB/s). Heads of 256 would need twice the registers for it and spill (56.0 us
  // against 29.1 at 32 sequences of 384 keys), so they load each tile when they reach it.
  constexpr bool kPrefetch = kDim <= 128;
  constexpr int kStride = kWarps * 16;  // keys between a warp's tiles
  Tile next;
  if (kPrefetch && b.begin + warp * 16 < b.end) load_tile(b.begin + warp * 16, next);
  for (int64_t base = b.begin + warp * 16; base < b.end; base += kStride) {
    Tile tile;
    if constexpr (kPrefetch) {
      tile = next;
      if (base + kStride < b.end) load_tile(base + kStride, next);
    } else {
      load_tile(base, tile);
    }
    const uint32_t(&k0)[kKeyChunks * 4] = tile.k0;
    const uint32_t(&k1)[kKeyChunks * 4] = tile.k1;
    const uint32_t(&v)[4][kValueChunks * 4] = tile.v;
    const int64_t lane_keys[4] = {base + 2 * t, base + 2 * t + 1, base + 8 + 2 * t, base + 9 + 2 * t};
    float s0[4] = {0.f, 0.f, 0.f, 0.f}, s1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int c = 0; c < kSteps; ++c) {
      const uint32_t qa[4] = {q[2 * c], 0u, q[2 * c + 1], 0u};
      mma<T>(s0, qa, k0[2 * c], k0[2 * c + 1]);
      mma<T>(s1, qa, k1[2 * c], k1[2 * c + 1]);
    }
    float score[4] = {s0[0], s0[1], s1[0], s1[1]};  // head g, keys lane_keys
    float tile_max = -INFINITY;
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      score[u] *= a.scale;
      if (a.softcap > 0.f) score[u] = a.softcap * tanhf(score[u] / a.softcap);
      if (lane_keys[u] < b.end) tile_max = fmaxf(tile_max, score[u]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    // Key `base` is in the tile and seen by lane t = 0 of every g, so tile_max is finite.
    const float m_new = fmaxf(m, tile_max);
    const float correction = __expf(m - m_new);  // 0 while m is still -inf
    float p[4], p_sum = 0.f;
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      p[u] = lane_keys[u] < b.end ? __expf(score[u] - m_new) : 0.f;
      p_sum += p[u];
    }
    l = l * correction + p_sum;
    m = m_new;
    const float correction_a = __shfl_sync(0xffffffffu, correction, 8 * t);      // head 2t
    const float correction_b = __shfl_sync(0xffffffffu, correction, 8 * t + 4);  // head 2t + 1
    const uint32_t p0 = pack<T>(p[0], p[1]), p1 = pack<T>(p[2], p[3]);
#pragma unroll
    for (int d = 0; d < kSteps; ++d) {
      acc[d][0] *= correction_a;
      acc[d][1] *= correction_b;
      acc[d][2] *= correction_a;
      acc[d][3] *= correction_b;
      const uint32_t va[4] = {__byte_perm(v[0][d], v[1][d], 0x5410), __byte_perm(v[0][d], v[1][d], 0x7632),
                              __byte_perm(v[2][d], v[3][d], 0x5410), __byte_perm(v[2][d], v[3][d], 0x7632)};
      mma<T>(acc[d], va, p0, p1);
    }
  }
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);

  __shared__ WarpPartials<kDim, kHeads> partials;
  if (t == 0) {
    partials.m[warp][g] = m;
    partials.l[warp][g] = l;
  }
#pragma unroll
  for (int d = 0; d < kSteps; ++d) {
    // Word d of the lane's value chunks: chunk d / 4 (at 16-byte offset (d / 4) * 8 + g), elements
    // 2 (d % 4) (row g) and 2 (d % 4) + 1 (row g + 8).
    const int dim = ((d / 4) * 8 + g) * 8 + 2 * (d % 4);
    partials.acc[warp][2 * t][dim] = acc[d][0];
    partials.acc[warp][2 * t + 1][dim] = acc[d][1];
    partials.acc[warp][2 * t][dim + 1] = acc[d][2];
    partials.acc[warp][2 * t + 1][dim + 1] = acc[d][3];
  }
  __syncthreads();
  write_block_result<T, kDim, kHeads>(a, splits, b, partials);
}

}  // namespace gpujob::model::kernels::attention_detail
