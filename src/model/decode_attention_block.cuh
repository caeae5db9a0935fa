// What every block of a decode attention partial pass shares (decode_attention.cu): its warps, the
// keys its query sees in its split, and the merge of its warps' online-softmax partials into the
// block's result. Included by decode_attention.cu and decode_attention_mma.cuh only.
#pragma once

#include <cmath>
#include <cstdint>

#include "decode_attention.cuh"
#include "kernel_types.cuh"

namespace gpujob::model::kernels::attention_detail {

constexpr int kWarps = 4;  // warps per block, each taking its own keys of every pass over the range
// Keys per split are a multiple of this: whole passes of a block of the CUDA-core partial kernel
// (16 keys a pass for heads of 64 and 128 elements, 8 for 256), one 16-key tile of a warp of the
// tensor-core one.
constexpr int kMinKeysPerSplit = 16;

// Keys per split: key_len over splits, rounded up to whole passes of a block's warps
// (kMinKeysPerSplit keys each), so no split ends in a partial pass. (One sequence at 2048 keys on
// an H200: 33 splits of 63 keys took 15.7 us, 32 of 64 13.7.)
inline __host__ __device__ int64_t keys_per_split(int64_t key_len, int64_t splits) {
  const int64_t keys = (key_len + splits - 1) / splits;
  return (keys + kMinKeysPerSplit - 1) / kMinKeysPerSplit * kMinKeysPerSplit;
}

// The block's (row, kv head, split) and the keys its query sees in that split: [begin, end).
struct BlockKeys {
  int64_t row, kv, split, slot, begin, end;
  int n_rep;  // query heads per kv head
};

__device__ __forceinline__ BlockKeys block_keys(const DecodeAttention& a, int64_t splits) {
  BlockKeys b;
  const int64_t group = blockIdx.x / splits;
  b.split = blockIdx.x % splits;
  b.row = group / a.kv_heads;
  b.kv = group % a.kv_heads;
  b.n_rep = static_cast<int>(a.heads / a.kv_heads);
  b.slot = a.slots != nullptr ? a.slots[b.row] : a.first_slot + b.row;
  const int64_t position = a.positions[b.row];
  b.begin = 0;
  b.end = position + 1;
  if (a.window > 0 && position + 1 - a.window > 0) b.begin = position + 1 - a.window;
  if (b.end > a.key_len) b.end = a.key_len;
  const int64_t per_split = keys_per_split(a.key_len, splits);
  const int64_t split_begin = b.split * per_split;
  if (b.begin < split_begin) b.begin = split_begin;
  if (b.end > split_begin + per_split) b.end = split_begin + per_split;
  return b;
}

// Each warp's running max, sum and weighted values per query head, for the block's merge.
template <int kDim, int kRep>
struct WarpPartials {
  float m[kWarps][kRep], l[kWarps][kRep];
  float acc[kWarps][kRep][kDim];
};

// Merges the warps' partials (after a __syncthreads) into the block's: with one split that is the
// result, normalised and rounded once; otherwise the partial result of the split, laid out
// [row, head, split] for m and l, then [row, head, split, dim] for acc, in the workspace.
template <typename T, int kDim, int kRep>
__device__ __forceinline__ void write_block_result(const DecodeAttention& a, int64_t splits, const BlockKeys& b,
                                                   const WarpPartials<kDim, kRep>& w) {
  const int64_t parts = a.batch * a.heads * splits;
  for (int i = threadIdx.x; i < b.n_rep * kDim; i += blockDim.x) {
    const int r = i / kDim, d = i % kDim;
    float block_m = -INFINITY;
    for (int k = 0; k < kWarps; ++k) block_m = fmaxf(block_m, w.m[k][r]);
    float block_l = 0.f, block_acc = 0.f;
    for (int k = 0; k < kWarps; ++k) {
      const float weight = w.m[k][r] == -INFINITY ? 0.f : __expf(w.m[k][r] - block_m);
      block_l += w.l[k][r] * weight;
      block_acc += w.acc[k][r][d] * weight;
    }
    const int64_t head_row = b.row * a.heads + b.kv * b.n_rep + r;
    if (splits == 1) {  // the whole range: the result itself, no merge pass
      static_cast<T*>(a.out)[head_row * kDim + d] = detail::from_float<T>(block_acc / block_l);
      continue;
    }
    const int64_t part = head_row * splits + b.split;
    a.workspace[parts * 2 + part * kDim + d] = block_acc;
    if (d == 0) {
      a.workspace[part] = block_m;
      a.workspace[parts + part] = block_l;
    }
  }
}

}  // namespace gpujob::model::kernels::attention_detail
