// Decode attention (see decode_attention.cuh). A decode step has one query per sequence, so the
// work per (sequence, kv head) is a pass over its keys: with few sequences that is too few blocks
// for the GPU, so the keys are split into ranges, each block computes a partial softmax over one
// range for the query heads sharing the kv head (online softmax: running max, sum and weighted
// values), and a second kernel merges the ranges (none when there is one range). Scores, softmax
// and sums are float32. For 16-bit types the partial pass runs on tensor cores (mma.sync): the
// per-key work of the query heads of a kv head, which kept the CUDA-core version busy with
// multiplies and shuffles rather than reads, is then a few matrix instructions per 16 keys. float32
// keeps the CUDA-core version. (Merging in the partial kernel's last block per sequence and kv
// head, with arrival counters, measured no faster on an H200: BENCHMARKS.md.)
#include "decode_attention.cuh"

#include "decode_attention_block.cuh"
#include "decode_attention_mma.cuh"

#include "kernel_launch.cuh"
#include "kernel_types.cuh"

#include <cmath>
#include <string>
#include <type_traits>

namespace gpujob::model::kernels {
namespace {

using detail::from_float;
using detail::start_after_prior_grids;
using detail::to_float;
using detail::warp_sum;

using attention_detail::block_keys;
using attention_detail::BlockKeys;
using attention_detail::decode_attention_mma_kernel;
using attention_detail::keys_per_split;
using attention_detail::kMinKeysPerSplit;
using attention_detail::kWarps;
using attention_detail::WarpPartials;
using attention_detail::write_block_result;

// Blocks of the CUDA-core partial pass to aim for, per SM. More splits mean more partial results
// to write and merge; on an H200 (bench/decode_attention_bench.cpp, Qwen3-8B heads) about two
// blocks per SM were the fastest or within 5% of it from 1 to 32 sequences and 384 to 2048 keys,
// where sixteen per SM had been up to 60% slower (one sequence at 2048 keys: 24.4 us against 15.4).
// The tensor-core pass aims at one wave of resident blocks instead (split_count_for).
constexpr int kTargetBlocksPerSm = 2;

int sm_count() {
  int device = 0, count = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || count <= 0)
    return 132;
  return count;
}

// kE consecutive elements of a head, read as one aligned vector and widened to float32.
template <typename T, int kE>
struct alignas(kE * sizeof(T) >= 16 ? 16 : kE * sizeof(T)) Lane {
  T e[kE];
};

template <typename T, int kE>
__device__ __forceinline__ void load_lane(const T* p, float (&out)[kE]) {
  const Lane<T, kE> v = *reinterpret_cast<const Lane<T, kE>*>(p);
#pragma unroll
  for (int j = 0; j < kE; ++j) out[j] = to_float(v.e[j]);
}

// Key ranges per (row, kv head): a.splits if set, else about target_blocks blocks in all (at most
// that many with `at_most`, else at least), with at least min_keys keys per range.
int64_t split_count(const DecodeAttention& a, int64_t target_blocks, bool at_most, int64_t min_keys) {
  const int64_t groups = a.batch * a.kv_heads;
  if (groups <= 0) return 1;  // an empty batch: nothing to split (and no division by zero)
  int64_t splits = a.splits;
  if (splits <= 0) {
    splits = at_most ? target_blocks / groups : (target_blocks + groups - 1) / groups;
    const int64_t most = (a.key_len + min_keys - 1) / min_keys;
    if (splits > most) splits = most;
  }
  if (splits < 1) splits = 1;
  // The fewest splits that cover the keys in ranges of that many (the kernel's keys_per_split of
  // the result is at most as many, so they still cover the keys).
  const int64_t per_split = keys_per_split(a.key_len, splits);
  return (a.key_len + per_split - 1) / per_split;
}

// The partial pass on CUDA cores, which float32 keeps (16-bit types use the tensor-core pass of
// decode_attention_mma.cuh): for each (row, head, split) the running max m, the sum l of
// exp(score - m) and acc[dim] = sum of exp(score - m) v. A key is read by a group of kLanes lanes,
// kE elements of its head each: a warp holds 32 / kLanes keys at a time, and a score needs
// log2(kLanes) shuffles per query head for all of them. Up to kRep query heads share the kv head.
// (In bfloat16, Qwen3-8B heads on an H200 took 26.4 us at 32 sequences of 384 keys and 105.1 at
// 2048, where the tensor-core pass takes 17.3 and 64.5; bench/decode_attention_bench.cpp.)
template <typename T, int kDim, int kRep>
__global__ void __launch_bounds__(kWarps * 32) decode_attention_partial_kernel(DecodeAttention a, int64_t splits) {
  start_after_prior_grids();
  constexpr int kE = 8;                   // elements of a head per lane
  constexpr int kLanes = kDim / kE;       // lanes per key: 8, 16 or 32
  constexpr int kGroups = 32 / kLanes;    // keys a warp holds at a time
  constexpr int kKeys = kDim == 256 ? 2 : kMinKeysPerSplit / (kWarps * kGroups);  // keys per group and pass
  constexpr int kPass = kWarps * kGroups * kKeys;  // keys per pass of the block
  static_assert(kMinKeysPerSplit % kPass == 0, "a split is whole passes");
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  const int key_group = lane / kLanes, sub = lane % kLanes;
  const BlockKeys b = block_keys(a, splits);
  const int64_t row = b.row, kv = b.kv, slot = b.slot, begin = b.begin, end = b.end;
  const int n_rep = b.n_rep;

  float q[kRep][kE];
#pragma unroll
  for (int r = 0; r < kRep; ++r) {
    if (r < n_rep) {
      load_lane<T, kE>(static_cast<const T*>(a.q) + ((row * a.heads) + kv * n_rep + r) * kDim + sub * kE, q[r]);
    } else {
#pragma unroll
      for (int j = 0; j < kE; ++j) q[r][j] = 0.f;  // an unused head slot: computed, never kept
    }
  }
  float m[kRep], l[kRep], acc[kRep][kE];
#pragma unroll
  for (int r = 0; r < kRep; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int j = 0; j < kE; ++j) acc[r][j] = 0.f;
  }
  const int64_t key_stride = a.kv_heads * kDim;
  const T* keys = static_cast<const T*>(a.k_cache) + (slot * a.max_len) * key_stride + kv * kDim + sub * kE;
  const T* values = static_cast<const T*>(a.v_cache) + (slot * a.max_len) * key_stride + kv * kDim + sub * kE;
  // Each lane group takes kKeys consecutive keys a pass: their loads and their score reductions are
  // independent, so they overlap instead of waiting on each other key by key. The whole warp runs
  // every pass (the shuffles need all lanes); a group past the end computes on a valid key and
  // keeps nothing of it.
  for (int64_t pass = begin; pass < end; pass += kPass) {
    const int64_t base = pass + (warp * kGroups + key_group) * kKeys;
    float k[kKeys][kE], v[kKeys][kE];
    bool valid[kKeys];
#pragma unroll
    for (int u = 0; u < kKeys; ++u) {
      valid[u] = base + u < end;
      const int64_t key = valid[u] ? base + u : begin;
      load_lane<T, kE>(keys + key * key_stride, k[u]);
      load_lane<T, kE>(values + key * key_stride, v[u]);
    }
    float score[kRep][kKeys];
#pragma unroll
    for (int r = 0; r < kRep; ++r) {
#pragma unroll
      for (int u = 0; u < kKeys; ++u) {
        float dot = 0.f;
#pragma unroll
        for (int j = 0; j < kE; ++j) dot = fmaf(q[r][j], k[u][j], dot);
        score[r][u] = dot;
      }
    }
#pragma unroll
    for (int d = kLanes / 2; d > 0; d /= 2) {
#pragma unroll
      for (int r = 0; r < kRep; ++r) {
#pragma unroll
        for (int u = 0; u < kKeys; ++u) score[r][u] += __shfl_xor_sync(0xffffffffu, score[r][u], d);
      }
    }
#pragma unroll
    for (int r = 0; r < kRep; ++r) {
      float m_new = m[r];
#pragma unroll
      for (int u = 0; u < kKeys; ++u) {
        score[r][u] *= a.scale;
        if (a.softcap > 0.f) score[r][u] = a.softcap * tanhf(score[r][u] / a.softcap);
        if (valid[u]) m_new = fmaxf(m_new, score[r][u]);
      }
      if (m_new == -INFINITY) continue;  // no key of this group yet
      const float correction = __expf(m[r] - m_new);  // 0 while m[r] is still -inf
      float p[kKeys], p_sum = 0.f;
#pragma unroll
      for (int u = 0; u < kKeys; ++u) {
        p[u] = valid[u] ? __expf(score[r][u] - m_new) : 0.f;
        p_sum += p[u];
      }
      l[r] = l[r] * correction + p_sum;
#pragma unroll
      for (int j = 0; j < kE; ++j) {
        float sum = acc[r][j] * correction;
#pragma unroll
        for (int u = 0; u < kKeys; ++u) sum = fmaf(p[u], v[u][j], sum);
        acc[r][j] = sum;
      }
      m[r] = m_new;
    }
  }
  // Merge the lane groups of the warp (the same elements of different keys): every group ends with
  // the warp's result.
#pragma unroll
  for (int d = kLanes; d < 32; d *= 2) {
#pragma unroll
    for (int r = 0; r < kRep; ++r) {
      const float m_other = __shfl_xor_sync(0xffffffffu, m[r], d);
      const float l_other = __shfl_xor_sync(0xffffffffu, l[r], d);
      const float m_new = fmaxf(m[r], m_other);
      const float self = m[r] == -INFINITY ? 0.f : __expf(m[r] - m_new);
      const float other = m_other == -INFINITY ? 0.f : __expf(m_other - m_new);
      l[r] = l[r] * self + l_other * other;
#pragma unroll
      for (int j = 0; j < kE; ++j) acc[r][j] = acc[r][j] * self + __shfl_xor_sync(0xffffffffu, acc[r][j], d) * other;
      m[r] = m_new;
    }
  }

  // Merge the warps of the block, then write the block's result.
  __shared__ WarpPartials<kDim, kRep> partials;
#pragma unroll
  for (int r = 0; r < kRep; ++r) {
    if (lane == 0) {
      partials.m[warp][r] = m[r];
      partials.l[warp][r] = l[r];
    }
    if (key_group == 0) {
#pragma unroll
      for (int j = 0; j < kE; ++j) partials.acc[warp][r][sub * kE + j] = acc[r][j];
    }
  }
  __syncthreads();
  write_block_result<T, kDim, kRep>(a, splits, b, partials);
}

// One warp per block, for query head blockIdx.x (row * heads + head), lane l holding elements l,
// l + 32, ... (kDim / 32 of them): the splits' partial results merged, normalised and rounded
// once, the weight exp(m - max m) of each split computed once into shared memory (splits floats).
template <typename T, int kDim>
__global__ void __launch_bounds__(32) decode_attention_merge_kernel(DecodeAttention a, int64_t splits) {
  start_after_prior_grids();
  constexpr int kE = kDim / 32;
  extern __shared__ float weights[];
  const int lane = threadIdx.x;
  const int64_t head_row = blockIdx.x;
  const int64_t parts = a.batch * a.heads * splits;
  const float* m = a.workspace + head_row * splits;
  const float* l = a.workspace + parts + head_row * splits;
  const float* acc = a.workspace + parts * 2 + head_row * splits * kDim + lane;
  float most = -INFINITY;
  for (int64_t s = lane; s < splits; s += 32) most = fmaxf(most, m[s]);
  for (int d = 16; d > 0; d /= 2) most = fmaxf(most, __shfl_xor_sync(0xffffffffu, most, d));
  float total_l = 0.f;
  for (int64_t s = lane; s < splits; s += 32) {
    weights[s] = m[s] == -INFINITY ? 0.f : __expf(m[s] - most);
    total_l += l[s] * weights[s];
  }
  total_l = warp_sum(total_l);
  __syncwarp();
  float sum[kE] = {};
  for (int64_t s = 0; s < splits; ++s) {
    const float weight = weights[s];
#pragma unroll
    for (int j = 0; j < kE; ++j) sum[j] = fmaf(acc[s * kDim + j * 32], weight, sum[j]);
  }
  T* out = static_cast<T*>(a.out) + head_row * kDim + lane;
#pragma unroll
  for (int j = 0; j < kE; ++j) out[j * 32] = from_float<T>(sum[j] / total_l);
}

// The partial kernel for the fewest query-head slots (1, 2, 4, 8) that hold the heads per kv head.
template <typename T, int kDim, int kRep = 1>
void launch_partial(const DecodeAttention& a, int64_t splits, cudaStream_t stream) {
  if constexpr (kRep < 8) {
    if (a.heads / a.kv_heads > kRep) return launch_partial<T, kDim, kRep * 2>(a, splits, stream);
  }
  detail::launch(decode_attention_partial_kernel<T, kDim, kRep>, static_cast<unsigned>(a.batch * a.kv_heads * splits),
                 kWarps * 32, 0, stream, a, splits);
}

// Blocks of `kernel` (kWarps warps each) the GPU holds at once.
template <typename Kernel>
int64_t resident_blocks(Kernel kernel) {
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kWarps * 32, 0) != cudaSuccess || per_sm < 1) {
    (void)cudaGetLastError();
    per_sm = kTargetBlocksPerSm;
  }
  return static_cast<int64_t>(per_sm) * sm_count();
}

// The split count of the kernel that runs for T and kDim. The tensor-core pass is short per key:
// one wave of resident blocks, each warp at least one 16-key tile (on an H200, Qwen3-8B heads: 32
// sequences of 384 keys in one split 17.3 us, in two 23.6; of 2048 keys 64.6 and 71.6; one
// sequence of 2048 keys in 32 splits 10.5 us, 8-32 splits within 0.6 us of it, 64 splits 15.7).
template <typename T, int kDim>
int64_t split_count_for(const DecodeAttention& a) {
  if constexpr (std::is_same_v<T, float>) {
    static const int64_t target = kTargetBlocksPerSm * static_cast<int64_t>(sm_count());
    return split_count(a, target, false, kMinKeysPerSplit);
  } else {
    static const int64_t resident = resident_blocks(decode_attention_mma_kernel<T, kDim>);
    return split_count(a, resident, true, kWarps * 16);
  }
}

template <typename T, int kDim>
void launch(const DecodeAttention& a, int64_t splits, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, float>) {
    launch_partial<T, kDim>(a, splits, stream);
  } else {
    detail::launch(decode_attention_mma_kernel<T, kDim>, static_cast<unsigned>(a.batch * a.kv_heads * splits),
                   kWarps * 32, 0, stream, a, splits);
  }
  if (splits == 1) return;  // the partial pass wrote the result
  detail::launch(decode_attention_merge_kernel<T, kDim>, static_cast<unsigned>(a.batch * a.heads), 32,
                 splits * sizeof(float), stream, a, splits);
}

template <int kDim>
using Dim = std::integral_constant<int, kDim>;

// Calls f(Type<T>{}, Dim<kDim>{}) with the C++ element type and the head size of the call.
template <typename F>
void with_types(ElementType type, int64_t dim, F&& f) {
  detail::with_element_type(type, [&](auto tag) {
    switch (dim) {
      case 64: f(tag, Dim<64>{}); break;
      case 128: f(tag, Dim<128>{}); break;
      default: f(tag, Dim<256>{}); break;
    }
  });
}

}  // namespace

bool decode_attention_support(int64_t dim, int64_t heads, int64_t kv_heads) {
  return (dim == 64 || dim == 128 || dim == 256) && kv_heads > 0 && heads % kv_heads == 0 && heads / kv_heads <= 8;
}

int64_t decode_attention_workspace(ElementType type, const DecodeAttention& a) {
  int64_t splits = 1;
  with_types(type, a.dim, [&](auto tag, auto dim) {
    splits = split_count_for<typename decltype(tag)::type, decltype(dim)::value>(a);
  });
  return splits == 1 ? 0 : a.batch * a.heads * splits * (a.dim + 2);
}

void decode_attention(ElementType type, const DecodeAttention& a, cudaStream_t stream) {
  if (a.batch == 0) return;
  if (!decode_attention_support(a.dim, a.heads, a.kv_heads))
    throw std::runtime_error("decode attention: head_dim " + std::to_string(a.dim) + " with " +
                             std::to_string(a.heads) + " heads over " + std::to_string(a.kv_heads) +
                             " kv heads is not supported");
  with_types(type, a.dim, [&](auto tag, auto dim) {
    using T = typename decltype(tag)::type;
    constexpr int kDim = decltype(dim)::value;
    launch<T, kDim>(a, split_count_for<T, kDim>(a), stream);
  });
  detail::check_launch("decode attention");
}

}  // namespace gpujob::model::kernels
