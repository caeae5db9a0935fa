// The few-row linear kernels (see few_rows_linear.cuh). At 2-32 rows a linear layer still only has
// to read its weights once, but a GEMM library's tiles are made for many rows, and at one row per
// warp (the matrix-vector kernels) the multiplications would be 32 times the work.
//
// Layout: a block takes 128 output features (8 warps of 16) over one slice of in_features. The
// block first copies its slice of x for all rows into shared memory (normed on the way when the
// layer folds an RMSNorm), then each warp streams its 16 weight rows and multiplies them with the
// x slice on tensor cores: m16n8k16 with A = 16 weight rows (features) and B = x^T, 8 rows of x per
// product. The k order inside a 32-column step is permuted so that every lane reads whole 16-byte
// chunks of its two weight rows and of its x row (the sum does not depend on the order, only A and
// B must share it): lane 4 g + t holds columns 8 t .. 8 t + 7 of weight rows g and g + 8 and of x
// row g; the first product of the step takes their columns 0-3, the second 4-7.
//
// The first steps of weights are requested before the wait for the previous kernel, as in the
// matrix-vector kernels (only weights are read there), and as many stay in flight after.
//
// Splits: with fewer feature blocks than the device takes at once, in_features is cut into
// slices, each summed by its own block into float32 partial sums; the last block of a feature
// block to arrive (an atomic counter) adds the partials in slice order and applies the output
// (bias, activation, residual, sums of squares), so the result does not depend on which block
// comes last and needs no second kernel.
#include "few_rows_linear.cuh"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "kernel_launch.cuh"
#include "kernel_types.cuh"
#include "tensor_core.cuh"

namespace gpujob::model::kernels {
namespace {

using detail::activation;
using detail::from_float;
using detail::load_vector;
using detail::mma;
using detail::norm_value;
using detail::rounded;
using detail::to_float;
using detail::Vector;
using detail::warp_sum;

constexpr int kWarps = 8;
constexpr int kWarpFeatures = 16;  // the m of a product
constexpr int kBlockFeatures = kWarps * kWarpFeatures;
static_assert(kBlockFeatures == kFewRowsBlockFeatures, "few_rows_blocks counts blocks of kBlockFeatures");
constexpr int kStepK = 32;  // columns per step: 4 lanes x 8 elements, two products
// Weight chunks in flight per lane: 8 (steps ahead x rows x 2 halves), as many as registers allow
// at two blocks per SM.
#ifndef FEW_ROWS_CHUNKS
#define FEW_ROWS_CHUNKS 8
#define FEW_ROWS_MIN_BLOCKS 2
#endif
#ifndef FEW_ROWS_PF
#define FEW_ROWS_PF 0
#endif
constexpr int kChunksInFlight = FEW_ROWS_CHUNKS;
// Elements after each x row in shared memory: rows 64 bytes apart in the bank pattern, so the 8
// lanes of a quarter warp (two rows, 64 bytes each) read 16-byte chunks without a bank conflict.
constexpr int kPad = 32;
constexpr int64_t kMaxSharedBytes = 96 * 1024;  // two blocks per SM on sm_80 and later

// What the output of a feature is.
enum class Output { kPlain, kGated, kResidual };

struct Args {
  const void* x;
  const void* h;  // normed input: RMSNorm(h) from in_squares [rows, n_squares] and norm_weight
  const float* in_squares;
  int64_t n_squares;
  const void* norm_weight;
  float eps, offset;
  const void* w;
  const void* bias;
  void* out;
  const void* residual;
  float* squares;
  float* partials;  // [splits][groups][rows][features]
  int* counters;    // [feature blocks]
  int64_t rows, features, in_features, slice, splits;
  bool gelu_tanh;
};

// 16 bytes of weights, read once: streamed past L1, and on an L2 miss the whole 256-byte line
// segment around it is fetched, which the lane's next steps read (a step reads 64 bytes of each
// row; fetched 64 bytes at a time, the rows' DRAM pages would open four times as often).
__device__ __forceinline__ uint4 load_weights(const uint4* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint4 v;
  asm("ld.global.cs.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
#else
  return __ldcs(p);
#endif
}

// Copies the block's slice of x (columns k_begin .. k_begin + len) for kRows rows into xs (rows
// `stride` elements apart; rows past a.rows are zero), normed as rms_norm norms when kNormed. The
// 1 / rms of a row comes from the sums of squares its producer left, added in the same order by
// every block.
template <typename T, int kRows, bool kNormed>
__device__ __forceinline__ void stage_x(const Args& a, T* xs, int64_t k_begin, int64_t len, int64_t stride) {
  constexpr int V = detail::kPerVector<T>;
  __shared__ float inv_rms[kRows];
  if constexpr (kNormed) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    for (int row = warp; row < kRows; row += kWarps) {
      float part = 0.f;
      if (row < a.rows) {
        for (int64_t i = lane; i < a.n_squares; i += 32) part += a.in_squares[row * a.n_squares + i];
      }
      part = warp_sum(part);
      if (lane == 0) inv_rms[row] = rsqrtf(part / static_cast<float>(a.in_features) + a.eps);
    }
    __syncthreads();
  }
  const int64_t vectors = len / V;
  // Unrolled so that several loads are in flight before their stores.
#pragma unroll 4
  for (int64_t i = threadIdx.x; i < kRows * vectors; i += blockDim.x) {
    const int row = static_cast<int>(i / vectors);
    const int64_t v = i - row * vectors;
    uint4 value = make_uint4(0u, 0u, 0u, 0u);
    if (row < a.rows) {
      const int64_t at = row * a.in_features + k_begin + v * V;
      if constexpr (kNormed) {
        const Vector<T> hv = load_vector(static_cast<const T*>(a.h) + at);
        const Vector<T> wv = load_vector(static_cast<const T*>(a.norm_weight) + k_begin + v * V);
        Vector<T> o;
#pragma unroll
        for (int j = 0; j < V; ++j) o.e[j] = norm_value<T>(to_float(hv.e[j]) * inv_rms[row], to_float(wv.e[j]), a.offset);
        value = *reinterpret_cast<const uint4*>(&o);
      } else {
        value = *reinterpret_cast<const uint4*>(static_cast<const T*>(a.x) + at);
      }
    }
    *reinterpret_cast<uint4*>(xs + row * stride + v * V) = value;
  }
}

// The outputs of the block's features from the partial sums of all splits, added in split order.
// Thread (warp w, lane) takes rows w, w + 8, ... and features lane, lane + 32, ... of the block;
// it requests its partials of kSplitsAtOnce splits together (one after the other, each L2 round
// trip would add up to microseconds at the kernel's tail).
template <typename T, int kRows, int kGroups, Output kOut>
__device__ __forceinline__ void finish(const Args& a) {
  constexpr int kFeaturesPerLane = kBlockFeatures / 32;
  constexpr int kRowsPerWarp = kRows / kWarps;
  constexpr int kSplitsAtOnce = kRows >= 32 ? 2 / kGroups : 4 / kGroups;  // as registers allow
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kBlockFeatures;
  const int64_t plane = a.rows * a.features;  // the partials of one group of one split
  int at[kRowsPerWarp][kFeaturesPerLane];  // element offsets (rows x features < 2^31); -1: outside the layer
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
#pragma unroll
    for (int j = 0; j < kFeaturesPerLane; ++j) {
      const int64_t row = warp + kWarps * i, f = first + lane + 32 * j;
      at[i][j] = row < a.rows && f < a.features ? static_cast<int>(row * a.features + f) : -1;
    }
  }
  float sum[kRowsPerWarp][kFeaturesPerLane][kGroups] = {};
  for (int64_t s0 = 0; s0 < a.splits; s0 += kSplitsAtOnce) {
    float part[kSplitsAtOnce][kRowsPerWarp][kFeaturesPerLane][kGroups];
#pragma unroll
    for (int u = 0; u < kSplitsAtOnce; ++u) {
#pragma unroll
      for (int i = 0; i < kRowsPerWarp; ++i) {
#pragma unroll
        for (int j = 0; j < kFeaturesPerLane; ++j) {
#pragma unroll
          for (int r = 0; r < kGroups; ++r) {
            const bool in = s0 + u < a.splits && at[i][j] >= 0;
            part[u][i][j][r] = in ? __ldcg(a.partials + ((s0 + u) * kGroups + r) * plane + at[i][j]) : 0.f;
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kSplitsAtOnce; ++u) {
#pragma unroll
      for (int i = 0; i < kRowsPerWarp; ++i) {
#pragma unroll
        for (int j = 0; j < kFeaturesPerLane; ++j) {
#pragma unroll
          for (int r = 0; r < kGroups; ++r) sum[i][j][r] += part[u][i][j][r];
        }
      }
    }
  }
  T* out = static_cast<T*>(a.out);
  const T* bias = static_cast<const T*>(a.bias);
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    float squares = 0.f;
#pragma unroll
    for (int j = 0; j < kFeaturesPerLane; ++j) {
      const int64_t o = at[i][j];
      if (o < 0) continue;
      const int64_t f = first + lane + 32 * j;
      if constexpr (kOut == Output::kGated) {
        const float gate = rounded<T>(sum[i][j][0]), up = rounded<T>(sum[i][j][1]);
        out[o] = from_float<T>(rounded<T>(activation(gate, a.gelu_tanh)) * up);
      } else {
        const float value = sum[i][j][0] + (bias != nullptr ? to_float(bias[f]) : 0.f);
        if constexpr (kOut == Output::kResidual) {
          const T s = from_float<T>(to_float(static_cast<const T*>(a.residual)[o]) + rounded<T>(value));
          out[o] = s;
          squares += to_float(s) * to_float(s);
        } else {
          out[o] = from_float<T>(value);
        }
      }
    }
    if constexpr (kOut == Output::kResidual) {
      squares = warp_sum(squares);
      const int64_t row = warp + kWarps * i;
      if (lane == 0 && row < a.rows) a.squares[row * gridDim.x + blockIdx.x] = squares;
    }
  }
}

// Block (feature block x, split y). kRowTiles products of 8 rows each; kGroups weight rows per
// feature (2: the gate and the up row of a stacked gate/up weight).
template <typename T, int kRowTiles, bool kNormed, Output kOut>
__global__ void __launch_bounds__(kWarps * 32, FEW_ROWS_MIN_BLOCKS) few_rows_kernel(Args a) {
  detail::allow_next_grid();
  constexpr int kGroups = kOut == Output::kGated ? 2 : 1;
  constexpr int kDepth = kChunksInFlight / (2 * kGroups);  // steps of weights in flight
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, g = lane / 4, t = lane % 4;
  const int64_t K = a.in_features;
  const int64_t k_begin = static_cast<int64_t>(blockIdx.y) * a.slice;
  const int steps = static_cast<int>((min(K, k_begin + a.slice) - k_begin) / kStepK);
  const int64_t stride = a.slice + kPad;

  // Weight rows g and g + 8 of the warp's 16 features (a feature past the layer reads the last
  // row; its sums are never written), from column k_begin + 8 t; step s is 4 chunks further.
  const int64_t warp_first = static_cast<int64_t>(blockIdx.x) * kBlockFeatures + warp * kWarpFeatures;
  const uint4* rows[kGroups][2];
#pragma unroll
  for (int r = 0; r < kGroups; ++r) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t feature = min(warp_first + g + 8 * half, a.features - 1);
      rows[r][half] = reinterpret_cast<const uint4*>(static_cast<const T*>(a.w) + (feature + r * a.features) * K +
                                                     k_begin + t * 8);
    }
  }
  uint4 ring[kDepth][kGroups][2];
#pragma unroll
  for (int d = 0; d < kDepth; ++d) {
    if (d < steps) {
#pragma unroll
      for (int r = 0; r < kGroups; ++r) {
#pragma unroll
        for (int half = 0; half < 2; ++half) ring[d][r][half] = load_weights(rows[r][half] + d * 4);
      }
    }
  }
  detail::wait_for_prior_grids();

  extern __shared__ uint4 shared_x[];
  T* xs = reinterpret_cast<T*>(shared_x);
  stage_x<T, kRowTiles * 8, kNormed>(a, xs, k_begin, static_cast<int64_t>(steps) * kStepK, stride);
  __syncthreads();

  float acc[kGroups][kRowTiles][4];
#pragma unroll
  for (int r = 0; r < kGroups; ++r) {
#pragma unroll
    for (int n = 0; n < kRowTiles; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[r][n][i] = 0.f;
    }
  }
  const T* x_lane = xs + g * stride + t * 8;
  for (int s0 = 0; s0 < steps; s0 += kDepth) {
#pragma unroll
    for (int d = 0; d < kDepth; ++d) {
      const int s = s0 + d;
      if (s >= steps) break;
      uint4 cur[kGroups][2];
#pragma unroll
      for (int r = 0; r < kGroups; ++r) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          cur[r][half] = ring[d][r][half];
          if (s + kDepth < steps) ring[d][r][half] = load_weights(rows[r][half] + (s + kDepth) * 4);
          if (FEW_ROWS_PF > 0 && (s & 3) == 0 && t < 2 && s + FEW_ROWS_PF < steps) {
            const uint4* line = rows[r][half] - t + (s + FEW_ROWS_PF) * 4 + t * 8;
            asm volatile("prefetch.global.L2 [%0];" ::"l"(line));
          }
        }
      }
#pragma unroll
      for (int n = 0; n < kRowTiles; ++n) {
        const uint4 xv = *reinterpret_cast<const uint4*>(x_lane + n * 8 * stride + s * kStepK);
#pragma unroll
        for (int r = 0; r < kGroups; ++r) {
          const uint32_t first[4] = {cur[r][0].x, cur[r][1].x, cur[r][0].y, cur[r][1].y};
          const uint32_t second[4] = {cur[r][0].z, cur[r][1].z, cur[r][0].w, cur[r][1].w};
          mma<T>(acc[r][n], first, xv.x, xv.y);
          mma<T>(acc[r][n], second, xv.z, xv.w);
        }
      }
    }
  }

  // The partial sums of this split: acc[r][n][i] is feature g (i < 2) or g + 8, row 8 n + 2 t + i % 2.
  const int64_t plane = a.rows * a.features;
#pragma unroll
  for (int r = 0; r < kGroups; ++r) {
    float* part = a.partials + (static_cast<int64_t>(blockIdx.y) * kGroups + r) * plane;
#pragma unroll
    for (int n = 0; n < kRowTiles; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int64_t feature = warp_first + g + (i >= 2 ? 8 : 0);
        const int64_t row = 8 * n + 2 * t + (i & 1);
        if (feature < a.features && row < a.rows) part[row * a.features + feature] = acc[r][n][i];
      }
    }
  }
  if (a.splits > 1) {
    __shared__ bool last;
    __threadfence();  // this block's partials before its arrival
    __syncthreads();
    if (threadIdx.x == 0) {
      last = atomicAdd(a.counters + blockIdx.x, 1) == a.splits - 1;
      if (last) a.counters[blockIdx.x] = 0;  // every split has arrived: ready for the next call
    }
    __syncthreads();
    if (!last) return;
    __threadfence();  // the other blocks' partials after their arrivals
  } else {
    __syncthreads();
  }
  finish<T, kRowTiles * 8, kGroups, kOut>(a);
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int row_tiles(int64_t rows) { return rows <= 8 ? 1 : rows <= 16 ? 2 : 4; }

int64_t shared_bytes(int64_t rows, int64_t slice) { return row_tiles(rows) * 8 * (slice + kPad) * 2; }

// The SMs of the current device (asked once per device).
int64_t device_sms() {
  static int counts[64] = {};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return 132;
  if (counts[device] == 0) {
    int n = 0;
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device);
    counts[device] = n > 0 ? n : 132;
  }
  return counts[device];
}

// A plan of `splits` slices of a call's in_features (fewer where slices of 32 columns cover it).
FewRowsPlan plan_with(const FewRowsLinear& c, int64_t splits) {
  const int64_t K = c.in_features, groups = c.gated ? 2 : 1;
  const int64_t max_slice = (kMaxSharedBytes / (row_tiles(c.rows) * 8 * 2) - kPad) / kStepK * kStepK;
  FewRowsPlan p;
  p.slice = std::min(max_slice, ceil_div(ceil_div(K, std::max<int64_t>(splits, 1)), kStepK) * kStepK);
  p.splits = ceil_div(K, p.slice);
  p.partial_floats = p.splits * groups * c.rows * c.out_features;
  p.counters = p.splits > 1 ? few_rows_blocks(c.out_features) : 0;
  return p;
}

}  // namespace

bool few_rows_support(int64_t rows, int64_t in_features, ElementType type, const void* x, const void* w) {
  return rows >= kFewRowsMin && rows <= kFewRowsMax && type != ElementType::kFloat32 && in_features > 0 &&
         in_features % kStepK == 0 && detail::aligned_16(x) && detail::aligned_16(w);
}

int64_t few_rows_blocks(int64_t out_features) { return ceil_div(out_features, kBlockFeatures); }

FewRowsPlan few_rows_plan(const FewRowsLinear& c) {
  if (c.splits > 0) return plan_with(c, c.splits);
  // Enough blocks to keep every SM reading: the time of a split count is taken as the larger of the
  // weight bytes at the device's rate and the busiest SM's bytes at 2.5 times its even share (an SM
  // can read faster than its share while others are idle), plus the partial sums written and read
  // back (through L2, taken at twice the rate).
  const int64_t sms = device_sms();
  const double groups = c.gated ? 2.0 : 1.0;
  const double weight_bytes = groups * c.out_features * c.in_features * 2.0;
  FewRowsPlan best = plan_with(c, 1);
  double best_time = 0;
  for (int64_t s = 1; s <= 64; ++s) {
    const FewRowsPlan p = plan_with(c, s);
    if (s > 1 && p.splits == best.splits) continue;
    const int64_t blocks = few_rows_blocks(c.out_features) * p.splits;
    const double block_bytes = weight_bytes / static_cast<double>(blocks);
    const double busiest = static_cast<double>(ceil_div(blocks, sms)) * block_bytes / 2.5 * static_cast<double>(sms);
    const double partial_bytes = 2.0 * 4.0 * static_cast<double>(p.partial_floats);
    const double time = std::max(weight_bytes, busiest) + partial_bytes / 2.0;
    if (s == 1 || time < best_time) {
      best = p;
      best_time = time;
    }
  }
  return best;
}

void few_rows_linear(const FewRowsLinear& c, const FewRowsPlan& plan, float* partials, int* counters,
                     cudaStream_t stream) {
  if (c.out_features == 0) return;
  Args a{};
  a.x = c.x;
  if (c.normed != nullptr) {
    a.h = c.normed->h;
    a.in_squares = c.normed->squares;
    a.n_squares = c.normed->n_squares;
    a.norm_weight = c.normed->weight;
    a.eps = c.normed->eps;
    a.offset = c.normed->offset;
  }
  a.w = c.w;
  a.bias = c.bias;
  a.out = c.out;
  a.residual = c.residual;
  a.squares = c.squares;
  a.partials = partials;
  a.counters = counters;
  a.rows = c.rows;
  a.features = c.out_features;
  a.in_features = c.in_features;
  a.slice = plan.slice;
  a.splits = plan.splits;
  a.gelu_tanh = c.gelu_tanh;
  const dim3 grid(static_cast<unsigned>(few_rows_blocks(c.out_features)), static_cast<unsigned>(plan.splits));
  const size_t shared = static_cast<size_t>(shared_bytes(c.rows, plan.slice));
  const auto run = [&](auto kernel) {
    if (shared > 48 * 1024) cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
    detail::launch(kernel, grid, kWarps * 32, shared, stream, a);
  };
  // The instantiations: element type x row tiles x output x (normed or not; no residual layer
  // starts with a norm).
  const auto with_tiles = [&](auto tag, auto normed, auto output) {
    using T = typename decltype(tag)::type;
    constexpr bool kNormed = decltype(normed)::value;
    constexpr Output kOut = decltype(output)::value;
    switch (row_tiles(c.rows)) {
      case 1: run(few_rows_kernel<T, 1, kNormed, kOut>); break;
      case 2: run(few_rows_kernel<T, 2, kNormed, kOut>); break;
      default: run(few_rows_kernel<T, 4, kNormed, kOut>); break;
    }
  };
  const auto with_output = [&](auto tag, auto normed) {
    if (c.gated) {
      with_tiles(tag, normed, std::integral_constant<Output, Output::kGated>{});
    } else {
      with_tiles(tag, normed, std::integral_constant<Output, Output::kPlain>{});
    }
  };
  const auto with_type = [&](auto f) {
    if (c.type == ElementType::kBFloat16) {
      f(detail::Type<__nv_bfloat16>{});
    } else if (c.type == ElementType::kFloat16) {
      f(detail::Type<__half>{});
    } else {
      throw std::runtime_error("few-row linear: float32 is not a tensor-core type");
    }
  };
  with_type([&](auto tag) {
    if (c.residual != nullptr) {
      with_tiles(tag, std::false_type{}, std::integral_constant<Output, Output::kResidual>{});
    } else if (c.normed != nullptr) {
      with_output(tag, std::true_type{});
    } else {
      with_output(tag, std::false_type{});
    }
  });
  detail::check_launch("few-row linear");
}

}  // namespace gpujob::model::kernels
